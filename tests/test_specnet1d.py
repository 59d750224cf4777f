"""The per-pair spectral 1D net: its log-STFT front end against numpy, amplitude and rate, shapes,
gradients, the errors it gives, and that it can learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import UserFacingError
from models.config import ModelConfig
from models.heads import Classifier, ClassifierHead
from models.specnet1d import EPS_POWER, build_specnet1d, create_specnet1d, window_and_centre_pool

RATE = 50
T = 50 * RATE


def numpy_log_spectrogram(x: np.ndarray, frame_s: float, hop_s: float, lo: float, hi: float) -> np.ndarray:
    """Reference: mean removed, reflect-padded by half a frame, periodic Hann, rfft, bins lo..hi."""
    n_fft, hop = int(frame_s * RATE), int(hop_s * RATE)
    x = np.pad(x - x.mean(), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([x[i: i + n_fft] * window for i in range(0, len(x) - n_fft + 1, hop)], axis=1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / RATE)
    keep = (freqs >= lo - 1e-9) & (freqs <= hi + 1e-9)
    return np.log(np.abs(np.fft.rfft(frames, axis=0)[keep]) ** 2 + EPS_POWER)


def test_front_end_matches_numpy():
    net = create_specnet1d("specnet1d_tiny", in_chans=16)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, T)).astype(np.float32) * 3
    got = net.log_spectrogram(torch.from_numpy(x)).numpy()
    v = net.v
    want = numpy_log_spectrogram(x[1, 5].astype(np.float64), v.frame_s, v.hop_s, v.fmin_hz, v.fmax_hz)
    assert got.shape == (2, 16, net.n_bins, want.shape[1])
    np.testing.assert_allclose(got[1, 5], want, atol=2e-3)


def test_front_end_puts_a_rhythm_in_its_bin():
    net = create_specnet1d("specnet1d_tiny", in_chans=16)
    t = torch.arange(T) / RATE
    x = torch.zeros(1, 16, T)
    x[0, 3] = 40 * torch.sin(2 * torch.pi * 6.0 * t)  # 6 Hz: bin (6 - 0.5) / 0.5 = 11
    spec = net.log_spectrogram(x)[0]
    assert spec[3].mean(dim=1).argmax().item() == 11
    assert spec[4].max() < spec[3].max() - 10  # the other pairs stay at the floor


def test_louder_eeg_is_a_constant_in_log_power():
    """3x the amplitude adds log 9 everywhere (BatchNorm then learns it away): no fixed scale assumed."""
    net = create_specnet1d("specnet1d_tiny", in_chans=16)
    x = torch.randn(2, 16, T) * 20
    shift = net.log_spectrogram(3 * x) - net.log_spectrogram(x)
    assert torch.allclose(shift, torch.full_like(shift, float(np.log(9.0))), atol=1e-3)


def test_same_bins_at_any_rate_and_a_clear_error_below_40_hz():
    net = create_specnet1d("specnet1d_tiny", in_chans=17).eval()
    with torch.no_grad():
        for rate in (50, 100, 200):
            assert net(torch.randn(2, 17, 50 * rate)).shape == (2, net.out_features)
        with pytest.raises(UserFacingError, match="50 Hz"):
            net(torch.randn(2, 17, 50 * 20))


@pytest.mark.parametrize("name", ["specnet1d", "specnet1d_tiny"])
def test_features_shape_with_and_without_the_nan_mask(name):
    for chans in (16, 17):
        net = create_specnet1d(name, in_chans=chans).eval()
        with torch.no_grad():
            out = net(torch.randn(2, chans, T))
        assert out.shape == (2, net.out_features) and torch.isfinite(out).all()


def test_nan_mask_reaches_the_features():
    torch.manual_seed(0)
    net = create_specnet1d("specnet1d_tiny", in_chans=17).eval()
    x = torch.randn(1, 17, T)
    masked = x.clone()
    masked[0, 16] = 1.0
    with torch.no_grad():
        assert not torch.allclose(net(x), net(masked))


def test_the_centre_is_pooled_on_its_own():
    """A response in the centre fifth shows in the centre pool; the same response near an edge only in
    the window's: the 40 s around the voted 10 s cannot outvote it."""
    inside, outside = torch.zeros(1, 2, 25), torch.zeros(1, 2, 25)
    inside[0, 0, 12] = outside[0, 0, 3] = 5.0
    a, b = window_and_centre_pool(inside, 0.2), window_and_centre_pool(outside, 0.2)
    mean, peak, centre_mean, centre_peak = a.reshape(4, 2)[:, 0]
    assert peak == 5.0 and centre_peak == 5.0 and centre_mean > mean
    assert b.reshape(4, 2)[1, 0] == 5.0 and b.reshape(4, 2)[3, 0] == 0.0
    assert window_and_centre_pool(torch.ones(3, 4, 2), 0.2).shape == (3, 16)


def test_gradient_reaches_the_first_stage_and_tiny_learns():
    torch.manual_seed(0)
    backbone = create_specnet1d("specnet1d_tiny", in_chans=16)
    model = Classifier(backbone, ClassifierHead.for_backbone(backbone))
    x, y = torch.randn(6, 16, T) * 10, torch.arange(6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert backbone.stages[0].entry[0].weight.grad.abs().sum() > 0
    assert losses[-1] < 0.3 * losses[0], losses


def test_errors_name_the_fix():
    with pytest.raises(UserFacingError, match="specnet1d_tiny"):
        create_specnet1d("specnet1d_huge", in_chans=16)
    with pytest.raises(UserFacingError, match="wave view"):
        create_specnet1d("specnet1d_tiny", in_chans=4)
    with pytest.raises(UserFacingError, match="pretrained"):
        build_specnet1d("specnet1d_tiny", 17, ModelConfig(backbone="specnet1d_tiny", pretrained="w.pth"))


def test_front_end_stays_float32_under_bf16_autocast():
    """As on a GPU with bf16: the STFT and log run in float32 (bf16 would round the log power to 3
    digits), the convolutions after it in bf16."""
    net = create_specnet1d("specnet1d_tiny", in_chans=17).eval()
    x = torch.randn(2, 17, T) * 20
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        spec = net.log_spectrogram(x[:, :16])
        out = net(x)
    assert spec.dtype == torch.float32 and torch.isfinite(out).all()
    with torch.no_grad():
        torch.testing.assert_close(spec, net.log_spectrogram(x[:, :16]))
