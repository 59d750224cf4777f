"""hms-stack: named recipes, MiT b0-b5, the 1D waveform nets, classification heads."""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
