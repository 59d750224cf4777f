"""Stacking: OOF sets in, one chosen stacker's OOF/test predictions and WORK/submission.csv out.

config.py        StackConfig: every setting, `key=value` overridable
members.py       load and align OOF sets (refuse misaligned ones)
policy.py        which OOF rows a stacker fits on (min voters, vote weighting, auto, per-recording balance)
stackers.py      the stacker table: fit, save, load of each method
blend.py         weighted blend (Optuna search + L-BFGS polish), variants ± temperature ± class bias
selection.py     ensemble selection (Caruana), optionally bagged
logit_linear.py  logit-space linear layer with class bias (3rd place)
mlp.py           small MLP on member logits, torch on CPU (5th place)
patient_features.py the patient's other recordings' predictions, as extra channels (5th place)
lgbm.py          LightGBM on soft targets, tuned in a persistent Optuna study
meta_features.py the LightGBM stacker's features
crossfit.py      honest out-of-fold fitting; each configuration's complexity rank
honest.py        robust choice (simplest within 1 paired SE of the best CV), with a nested estimate
prior_shift.py   test-time class-prior correction (Saerens et al. EM), prior_correction=em
saved_stacker.py the chosen stacker on disk (WORK/stack/stacker.json)
report.py        KL tables and report.json
importer.py      `hms-stack import`: outside OOF files into the OOF contract
run.py           `hms-stack stack`: the whole pipeline
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
