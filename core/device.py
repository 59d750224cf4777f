"""Which torch device a stage runs on."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    """"auto": the first CUDA device when there is one, else the CPU; anything else as torch names it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
