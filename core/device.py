"""Which torch device a stage runs on, and which autocast precision fits it."""

from __future__ import annotations

import torch

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
_FORCED = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def resolve_device(device: str) -> torch.device:
    """"auto": the first CUDA device when there is one, else the CPU; anything else as torch names it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def native_bf16(device: torch.device) -> bool:
    """bf16 in hardware: Ampere (compute capability 8.0) and later. Older GPUs (T4 7.5, P100 6.0) may
    report bf16 as supported through emulation, which is slower than fp16, hence both checks."""
    if device.type != "cuda":
        return False
    return torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(device) >= (8, 0)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `amp` on `device` (None: fp32). "auto": bf16 where native, fp16 on older
    GPUs (trained with a GradScaler), off on the CPU (autocast there is slower than fp32)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    if amp != "auto":
        return _FORCED[amp]
    if device.type != "cuda":
        return None
    return torch.bfloat16 if native_bf16(device) else torch.float16
