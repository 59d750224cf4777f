"""hms-stack: the data layer, views (spectrogram images, waveforms) and their cache, synthetic data."""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
