"""hms-stack data layer: the Kaggle folder (validated), labels and votes, montage, filters, spectrograms,
views (features.views) and their cache, the submission file."""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
