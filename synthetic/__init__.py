"""Synthetic stand-ins for the competition data, apart from the pipeline they test.

eeg.py       a Kaggle-layout folder of synthetic EEG + spectrograms + truth/ (`hms-stack synth`)
oof_sets.py  synthetic OOF sets of a hidden truth, for stacking tests and benchmarks
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
