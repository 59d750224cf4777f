"""After stacking: the submission from the test files alone, the offline Kaggle bundle, the HTML report.

infer.py         test-time inference of every member from its fold checkpoints (no train data, no cache)
submit.py        `hms-stack submit`: members -> saved stacker -> submission.csv
bundle.py        `hms-stack bundle`: wheel, checkpoints, recipes, stacker, infer.py / infer.ipynb
bundle_entry.py  the bundle's infer.py (runs on Kaggle with the internet off)
report_page.py   `hms-stack report`: the HTML report; report_plots.py draws its figures
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
