"""Precision that fits the device: the amp choice per (mocked) GPU capability, the fp16 GradScaler
path on the CPU, its state through a kill and resume, the log line, and the compile switch."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from core.device import amp_dtype, native_bf16
from oof.train_loop import FoldData, SimulatedKill, TrainConfig, fit_fold
from tests.test_train_loop import VALID_LOADER, TinyNet, config, make_train_loader

CUDA = torch.device("cuda", 0)


def fake_gpu(monkeypatch, capability: tuple[int, int], bf16_supported: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)


@pytest.mark.parametrize("capability, bf16_supported, expected", [
    ((9, 0), True, torch.bfloat16),   # H100
    ((8, 0), True, torch.bfloat16),   # A100
    ((8, 6), True, torch.bfloat16),   # A10 / RTX 30xx
    ((7, 5), True, torch.float16),    # T4: bf16 "supported" by emulation only
    ((7, 5), False, torch.float16),
    ((6, 0), False, torch.float16),   # P100
])
def test_auto_is_bf16_where_native_else_fp16(monkeypatch, capability, bf16_supported, expected):
    fake_gpu(monkeypatch, capability, bf16_supported)
    assert native_bf16(CUDA) == (expected == torch.bfloat16)
    assert amp_dtype("auto", CUDA) == expected


def test_forced_choices_and_cpu(monkeypatch):
    fake_gpu(monkeypatch, (7, 5), False)
    assert amp_dtype("bf16", CUDA) == torch.bfloat16 and amp_dtype("fp16", CUDA) == torch.float16
    assert amp_dtype("off", CUDA) is None
    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) is None and not native_bf16(cpu)
    assert amp_dtype("fp16", cpu) == torch.float16
    with pytest.raises(ValueError):
        TrainConfig(amp="fp8")


def fit(run_dir, stop_after_epoch=None, **overrides):
    model = TinyNet()
    cfg = config(epochs=2, stage2_epochs=1, ema_decay=0.0, amp="fp16", **overrides)
    data = FoldData(make_train_loader, VALID_LOADER)
    return model, fit_fold(model, data, cfg, run_dir, "cpu", stop_after_epoch=stop_after_epoch)


def test_fp16_scaler_on_cpu_is_logged_checkpointed_and_resumed(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="oof.train_loop"):
        full_model, full = fit(tmp_path / "full")
    assert sum("fp16 autocast with a GradScaler" in r.message for r in caplog.records) == 1  # once per fold
    assert np.isfinite(full.valid_probs).all()
    with pytest.raises(SimulatedKill):
        fit(tmp_path / "resumed", stop_after_epoch=0)
    killed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert killed["scaler"]["scale"] > 0 and killed["scaler"]["_growth_tracker"] > 0
    resumed_model, resumed = fit(tmp_path / "resumed")
    final_full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["scaler"]
    final_resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["scaler"]
    assert final_full == final_resumed  # a fresh scaler would restart its growth tracker at 0
    assert all(torch.equal(v, resumed_model.state_dict()[k]) for k, v in full_model.state_dict().items())
    assert np.array_equal(full.valid_probs, resumed.valid_probs)


def test_resume_uses_the_stored_scale(tmp_path):
    with pytest.raises(SimulatedKill):
        fit(tmp_path, stop_after_epoch=0)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    ckpt["scaler"] = {**ckpt["scaler"], "scale": 1024.0, "_growth_tracker": 0}
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(SimulatedKill):
        fit(tmp_path, stop_after_epoch=1)
    scaler = torch.load(tmp_path / "last.pt", weights_only=True)["scaler"]
    assert scaler["scale"] == 1024.0 and scaler["_growth_tracker"] == 5  # 5 steps of epoch 1, no overflow


def test_compile_wraps_the_training_module(tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(module) or module)
    fit_fold(TinyNet(), FoldData(make_train_loader, VALID_LOADER), config(epochs=1, stage2_epochs=0, compile=True),
             tmp_path, "cpu")
    assert len(compiled) == 1 and isinstance(compiled[0], TinyNet)
