"""The training loop on a tiny conv net and a learnable toy problem: loss = metric, LR schedule,
learning, best-epoch choice, kill-and-resume equality, config guard, done.json, TTA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import UserFacingError
from core.metric import class_prior_predictions, kl_divergence
from oof.augment import AugmentConfig, BatchAugmenter
from oof.losses import kl_loss
from oof.lr_schedule import warmup_cosine
from oof.train_loop import FoldData, SimulatedKill, TrainConfig, fit_fold, predict, train_pass

SWAP = [1, 0, 3, 2]


class TinyNet(nn.Module):
    """Conv + BatchNorm (buffers for EMA) + Dropout (global RNG for resume)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(8, 6)

    def forward(self, x):
        return self.head(self.drop(torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))))


def toy_data(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Each class shifts the mean of the 4 channels by its own pattern; soft targets peaked on it."""
    g = torch.Generator().manual_seed(seed)
    patterns = 1.5 * torch.randn(6, 4, generator=torch.Generator().manual_seed(99))
    label = torch.randint(0, 6, (n,), generator=g)
    x = torch.randn(n, 4, 6, 12, generator=g) + patterns[label][:, :, None, None]
    target = torch.full((n, 6), 0.05).scatter_(1, label[:, None], 0.75)
    n_votes = torch.randint(1, 20, (n,), generator=g)
    return {"x": x, "target": target, "weight": torch.ones(n), "n_votes": n_votes}


def batches(data: dict, order: torch.Tensor, size: int) -> list[dict]:
    return [{k: v[order[i:i + size]] for k, v in data.items()} for i in range(0, len(order), size)]


TRAIN, VALID = toy_data(160, seed=1), toy_data(64, seed=2)
VALID_LOADER = batches(VALID, torch.arange(64), 16)


def make_train_loader(epoch: int, stage: int) -> list[dict]:
    """Shuffled with the global torch RNG (restored on resume); stage 2 keeps high-vote rows only."""
    rows = torch.arange(len(TRAIN["x"])) if stage == 1 else torch.nonzero(TRAIN["n_votes"] >= 10).flatten()
    return batches(TRAIN, rows[torch.randperm(len(rows))], 32)


def config(**overrides) -> TrainConfig:
    base = dict(epochs=3, stage2_epochs=1, lr=1e-2, weight_decay=1e-2, warmup_frac=0.1, batch_size=32,
                grad_clip=1.0, ema_decay=0.9, num_workers=0, seed=0)
    return TrainConfig(**{**base, **overrides})


AUGMENTER = BatchAugmenter(AugmentConfig(swap_p=0.5, time_shift_frac=0.1, time_mask_p=0.5, freq_mask_p=0.5,
                                         mixup_p=0.5), SWAP, is_image=True)


def fit(run_dir, cfg=None, model=None, augmenter=None, stop_after_epoch=None):
    model = model or TinyNet()
    data = FoldData(make_train_loader, VALID_LOADER, augmenter)
    return model, fit_fold(model, data, cfg or config(), run_dir, "cpu", stop_after_epoch=stop_after_epoch)


# --- loss and schedule ---------------------------------------------------------------------------

def test_kl_loss_equals_the_metric():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(50, 6, generator=g, dtype=torch.float64)
    target = torch.rand(50, 6, generator=g, dtype=torch.float64) * (torch.rand(50, 6, generator=g) > 0.4)
    target[:, 0] += 0.1
    target = target / target.sum(dim=1, keepdim=True)
    weight = torch.rand(50, generator=g, dtype=torch.float64)
    probs = logits.softmax(dim=1).numpy()
    assert kl_loss(logits, target).item() == pytest.approx(kl_divergence(target.numpy(), probs), rel=1e-10)
    assert kl_loss(logits, target, weight).item() == pytest.approx(
        kl_divergence(target.numpy(), probs, weight.numpy()), rel=1e-10)
    bf16 = kl_loss(logits.bfloat16(), target.float())
    assert bf16.dtype == torch.float32


def test_kl_loss_gradient_is_finite_with_zero_targets():
    logits = torch.tensor([[30.0, -30.0, 0, 0, 0, 0]], requires_grad=True)
    kl_loss(logits, torch.tensor([[0.0, 1.0, 0, 0, 0, 0]])).backward()
    assert torch.isfinite(logits.grad).all()


def test_warmup_cosine_shape():
    f = warmup_cosine(100, 0.1, final_factor=0.05)
    values = [f(s) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(values[:10], values[1:10], strict=False))
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))
    assert f(55) == pytest.approx(0.05 + 0.95 * 0.5)
    assert values[100] == pytest.approx(0.05)
    assert warmup_cosine(10, 0.0)(0) == 1.0


# --- training ------------------------------------------------------------------------------------

def test_training_beats_the_prior(tmp_path):
    _, result = fit(tmp_path, config(epochs=5, stage2_epochs=0, ema_decay=0.0, lr=3e-2))
    prior = kl_divergence(VALID["target"].numpy(), class_prior_predictions(TRAIN["target"].numpy(), 64))
    assert result.best_kl_all < 0.5 * prior
    assert result.valid_probs.shape == (64, 6)
    assert np.allclose(result.valid_probs.sum(axis=1), 1.0)
    assert [row["stage"] for row in result.history] == [1] * 5
    assert all(row["train_samples_per_s"] > 0 and row["peak_gpu_gib"] is None for row in result.history)


@pytest.mark.parametrize("select_on", ["high", "all"])
def test_best_epoch_is_argmin_of_the_chosen_kl(tmp_path, select_on):
    model, result = fit(tmp_path, config(select_on=select_on), augmenter=AUGMENTER)
    key = "kl_high" if select_on == "high" else "kl_all"
    assert result.best_epoch == int(np.argmin([row[key] for row in result.history]))
    best_row = result.history[result.best_epoch]
    assert result.best_kl_all == pytest.approx(best_row["kl_all"], rel=1e-9)
    assert result.best_kl_high == pytest.approx(best_row["kl_high"], rel=1e-9)
    assert [row["stage"] for row in result.history] == [1, 1, 1, 2]
    # the model now holds best.pt; both checkpoints load with weights_only
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in best.items())
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 3


def test_select_last_predicts_from_the_final_epoch_whatever_its_kl(tmp_path):
    model, result = fit(tmp_path, config(select_on="last", ema_decay=0.0), augmenter=AUGMENTER)
    assert result.best_epoch == len(result.history) - 1 == 3
    last = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in last.items())
    assert result.best_kl_high == pytest.approx(result.history[-1]["kl_high"], rel=1e-9)

def test_select_high_falls_back_to_all_rows_without_high_votes(tmp_path):
    low = [{**b, "n_votes": torch.ones_like(b["n_votes"])} for b in VALID_LOADER]
    result = fit_fold(TinyNet(), FoldData(make_train_loader, low), config(stage2_epochs=0), tmp_path, "cpu")
    assert all(math.isnan(row["kl_high"]) for row in result.history)
    assert result.best_epoch == int(np.argmin([row["kl_all"] for row in result.history]))


@pytest.mark.parametrize("kill_after", [0, 2])  # mid-stage (optimizer restored), and at the stage boundary
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, kill_after):
    full_model, full = fit(tmp_path / "full", augmenter=AUGMENTER)
    with pytest.raises(SimulatedKill):
        fit(tmp_path / "resumed", augmenter=AUGMENTER, stop_after_epoch=kill_after)
    assert not (tmp_path / "resumed" / "done.json").exists()
    resumed_model, resumed = fit(tmp_path / "resumed", model=TinyNet(seed=5), augmenter=AUGMENTER)
    for key, value in full_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key
    last_full = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    last_resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        flat_full, flat_resumed = last_full[part], last_resumed[part]
        if part == "ema":
            flat_full, flat_resumed = flat_full["module"], flat_resumed["module"]
        assert all(torch.equal(v, flat_resumed[k]) for k, v in flat_full.items()), part
    assert np.array_equal(full.valid_probs, resumed.valid_probs)
    assert full.best_epoch == resumed.best_epoch
    timings = ("seconds", "train_samples_per_s")
    drop_timings = lambda history: [{k: v for k, v in row.items() if k not in timings} for row in history]
    assert drop_timings(full.history) == drop_timings(resumed.history)


def test_gpu_branches_and_waveforms_run_on_cpu(tmp_path):
    """bf16 autocast, channels_last and an on-device input transform (no GPU here: forced on the CPU)."""
    upsample = lambda x: nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
    cfg = config(epochs=1, stage2_epochs=0, amp="bf16", channels_last="on")
    data = FoldData(make_train_loader, VALID_LOADER, to_input=upsample)
    result = fit_fold(TinyNet(), data, cfg, tmp_path / "image", "cpu")
    assert np.isfinite(result.valid_probs).all()

    wave_net = nn.Sequential(nn.Conv1d(4, 8, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 6))
    to_wave = lambda x: x.flatten(2)  # (B, 4, 6, 12) -> (B, 4, 72)
    wave_aug = BatchAugmenter(AugmentConfig(swap_p=0.5, time_shift_frac=0.1, time_mask_p=0.5, freq_mask_p=0.5,
                                            mixup_p=0.5), SWAP, is_image=False)
    waves = lambda epoch, stage: [{**b, "x": to_wave(b["x"])} for b in make_train_loader(epoch, stage)]
    valid = [{**b, "x": to_wave(b["x"])} for b in VALID_LOADER]
    result = fit_fold(wave_net, FoldData(waves, valid, wave_aug), config(epochs=2), tmp_path / "wave", "cpu")
    assert result.valid_probs.shape == (64, 6)


def test_changed_config_refuses_to_resume(tmp_path):
    with pytest.raises(SimulatedKill):
        fit(tmp_path, stop_after_epoch=0)
    with pytest.raises(UserFacingError) as err:
        fit(tmp_path, config(lr=5e-3))
    message = str(err.value)
    assert str(tmp_path) in message and "lr" in message and "delete" in message and "\n" not in message
    fit(tmp_path, config(log_every=1))  # cosmetic fields do not block a resume


def test_done_json_short_circuits(tmp_path):
    _, first = fit(tmp_path, config(stage2_epochs=0))

    def no_training(epoch, stage):
        raise AssertionError("a finished fold must not train again")

    model = TinyNet(seed=3)
    again = fit_fold(model, FoldData(no_training, VALID_LOADER), config(stage2_epochs=0), tmp_path, "cpu")
    assert again.best_epoch == first.best_epoch and again.best_kl_all == first.best_kl_all
    assert np.array_equal(again.valid_probs, first.valid_probs)
    assert again.history == first.history
    assert np.array_equal(predict(model, VALID_LOADER, "cpu"), first.valid_probs)  # best weights loaded


def test_predict_with_tta_is_the_mean_of_plain_and_swapped(tmp_path):
    model = TinyNet().eval()
    plain = predict(model, VALID_LOADER, "cpu")
    swapped = predict(model, [{**b, "x": b["x"][:, SWAP]} for b in VALID_LOADER], "cpu")
    tta = predict(model, VALID_LOADER, "cpu", swap_index=SWAP)
    assert np.allclose(tta, (plain + swapped) / 2, atol=1e-12)
    assert not np.allclose(plain, swapped)
    tiled = predict(model, VALID_LOADER, "cpu", to_input=lambda x: x * 2)
    assert not np.allclose(tiled, plain)


def test_stage2_starts_from_the_mean_of_the_best_stage1_weights(tmp_path, monkeypatch):
    """stage2_from_top_k=2 (2nd place): the k best stage-1 epochs' weights are kept on disk and averaged
    into the model when stage 2 begins; a run killed at the stage boundary resumes to the same weights."""
    from oof import train_loop

    cfg = config(epochs=4, stage2_epochs=1, ema_decay=0.0, stage2_from_top_k=2)
    seen = {}
    real = train_loop._load_top_k_mean

    def spy(model, ema, state, run_dir, device):
        real(model, ema, state, run_dir, device)
        seen["start"] = {k: v.clone() for k, v in model.state_dict().items()}
        seen["top"] = [int(e) for _, e in state.best["top"]]

    monkeypatch.setattr(train_loop, "_load_top_k_mean", spy)
    _, result = fit(tmp_path / "full", cfg)
    stage1 = [r for r in result.history if r["stage"] == 1]
    best_two = sorted(stage1, key=lambda r: r["kl_high"])[:2]
    assert sorted(seen["top"]) == sorted(r["epoch"] for r in best_two)
    kept = sorted(p.name for p in (tmp_path / "full").glob("stage1_epoch*.pt"))
    assert kept == sorted(f"stage1_epoch{e}.pt" for e in seen["top"])
    files = [torch.load(tmp_path / "full" / f"stage1_epoch{e}.pt", weights_only=True) for e in seen["top"]]
    for key, value in seen["start"].items():
        expected = (files[0][key] + files[1][key]) / 2 if value.dtype.is_floating_point else files[0][key]
        torch.testing.assert_close(value, expected)

    with pytest.raises(SimulatedKill):
        fit(tmp_path / "resumed", cfg, stop_after_epoch=3)
    resumed_model, _ = fit(tmp_path / "resumed", cfg, model=TinyNet(seed=5))
    full_best = torch.load(tmp_path / "full" / "best.pt", weights_only=True)
    for key, value in resumed_model.state_dict().items():
        assert torch.equal(value, full_best[key]), key


def test_train_pass_steps_over_a_plain_list_of_more_than_log_every_batches():
    """The benches hand train_pass a list (no progress bar): the periodic postfix must not need one."""
    data = toy_data(8 * 25, seed=3)
    batches = [{k: v[i * 8:(i + 1) * 8] for k, v in data.items()} for i in range(25)]
    cfg = TrainConfig(epochs=1, batch_size=8, log_every=20, num_workers=0)
    loss, seen = train_pass(TinyNet(), batches, cfg, "cpu")
    assert seen == 8 * 25 and math.isfinite(loss)
