"""Stacking: OOF sets in, one chosen stacker's OOF/test predictions and a Kaggle submission out.

members.py       load and align OOF sets (refuse misaligned ones)
policy.py        which OOF rows a stacker fits on (min voters, vote weighting, auto)
blend.py         weighted blend (Optuna search + L-BFGS polish)
selection.py     ensemble selection (Caruana), optionally bagged
lgbm.py          LightGBM on soft targets, tuned in a persistent Optuna study
meta_features.py the LightGBM stacker's features
crossfit.py      honest out-of-fold fitting
honest.py        choice by CV on high-vote rows, with a nested estimate
report.py        KL tables and report.json
submission.py    write and validate submission.csv
importer.py      `python -m stacking import`: outside OOF files into the OOF contract
run.py           `python -m stacking`: the whole pipeline
synthetic.py     synthetic OOF sets for tests and the benchmark
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
