"""Names fixed by the Kaggle competition layout (ARCHITECTURE.md "Data")."""

from __future__ import annotations

CLASSES = ("seizure", "lpd", "gpd", "lrda", "grda", "other")
N_CLASSES = len(CLASSES)
VOTE_COLUMNS = tuple(f"{c}_vote" for c in CLASSES)
TARGET_COLUMNS = tuple(f"target_{c}" for c in VOTE_COLUMNS)
CONSENSUS_NAMES = ("Seizure", "LPD", "GPD", "LRDA", "GRDA", "Other")

EEG_COLUMNS = (
    "Fp1", "F3", "C3", "P3", "F7", "T3", "T5", "O1", "Fz", "Cz",
    "Pz", "Fp2", "F4", "C4", "P4", "F8", "T4", "T6", "O2", "EKG",
)
EEG_RATE_HZ = 200
EEG_WINDOW_S = 50
EEG_WINDOW_SAMPLES = EEG_RATE_HZ * EEG_WINDOW_S
TEST_EEG_SAMPLES = 10_000

CHAINS = ("LL", "RL", "LP", "RP")
SPEC_STEP_S = 2
SPEC_WINDOW_S = 600
SPEC_WINDOW_ROWS = SPEC_WINDOW_S // SPEC_STEP_S
SPEC_NFFT = 1024
SPEC_BINS = tuple(range(3, 103))


def _round_half_up(x: float) -> str:
    """Format as the real files do: two decimals rounded half-up, trailing zeros dropped."""
    text = f"{int(x * 100 + 0.5 + 1e-9) / 100:.2f}".rstrip("0").rstrip(".")
    return text


SPEC_FREQUENCIES_HZ = tuple(k * EEG_RATE_HZ / SPEC_NFFT for k in SPEC_BINS)
SPEC_COLUMNS = tuple(f"{chain}_{_round_half_up(f)}" for chain in CHAINS for f in SPEC_FREQUENCIES_HZ)

TRAIN_COLUMNS = (
    "eeg_id", "eeg_sub_id", "eeg_label_offset_seconds", "spectrogram_id",
    "spectrogram_sub_id", "spectrogram_label_offset_seconds", "label_id",
    "patient_id", "expert_consensus", *VOTE_COLUMNS,
)
TEST_COLUMNS = ("spectrogram_id", "eeg_id", "patient_id")
SUBMISSION_COLUMNS = ("eeg_id", *VOTE_COLUMNS)

HIGH_VOTE_MIN = 10
