"""hms-stack: training loop, CV driver (OOF contract files), metric, folds, test-time inference."""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
