"""Stacking: OOF sets in, one chosen stacker's OOF/test predictions and WORK/submission.csv out.

config.py        StackConfig: every setting, `key=value` overridable
members.py       load and align OOF sets (refuse misaligned ones)
policy.py        which OOF rows a stacker fits on (min voters, vote weighting, auto)
stackers.py      the stacker table: fit, save, load of each method
blend.py         weighted blend (Optuna search + L-BFGS polish)
selection.py     ensemble selection (Caruana), optionally bagged
lgbm.py          LightGBM on soft targets, tuned in a persistent Optuna study
meta_features.py the LightGBM stacker's features
crossfit.py      honest out-of-fold fitting
honest.py        choice by CV on high-vote rows, with a nested estimate
saved_stacker.py the chosen stacker on disk (WORK/stack/stacker.json)
report.py        KL tables and report.json
importer.py      `hms-stack import`: outside OOF files into the OOF contract
run.py           `hms-stack stack`: the whole pipeline
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
