"""Batch augmentations: shapes, invariants, the bands they zero, and reproducibility from the generator."""

from __future__ import annotations

import pytest
import torch

from oof.augment import (
    AugmentConfig,
    BatchAugmenter,
    freq_mask,
    hemisphere_swap,
    mixup,
    time_mask,
    time_shift,
)

SWAP = [1, 0, 3, 2]  # LL <-> RL, LP <-> RP


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(batch: int = 8) -> torch.Tensor:
    return torch.randn(batch, 4, 10, 32, generator=gen(123))


def soft_targets(batch: int = 8) -> torch.Tensor:
    return torch.rand(batch, 6, generator=gen(7)).softmax(dim=1)


def test_swap_twice_is_identity_and_each_sample_is_plain_or_swapped():
    x = image()
    assert torch.equal(hemisphere_swap(hemisphere_swap(x, SWAP, 1.0, gen()), SWAP, 1.0, gen()), x)
    assert torch.equal(hemisphere_swap(x, SWAP, 0.0, gen()), x)
    out = hemisphere_swap(x, SWAP, 0.5, gen(3))
    kinds = [torch.equal(o, xi) or torch.equal(o, xi[SWAP]) for o, xi in zip(out, x, strict=True)]
    assert all(kinds)
    assert out.shape == x.shape


def test_time_shift_rolls_each_sample_within_the_limit():
    for x in (image(), torch.randn(8, 3, 50, generator=gen(1))):
        out = time_shift(x, 0.25, gen(5))
        assert out.shape == x.shape
        limit = int(0.25 * x.shape[-1])
        for o, xi in zip(out, x, strict=True):
            assert any(torch.equal(o, xi.roll(s, dims=-1)) for s in range(-limit, limit + 1))


def _zeroed(out: torch.Tensor) -> torch.Tensor:
    return out == 0


def test_time_mask_zeroes_one_band_of_the_last_axis():
    for x in (image() + 10, torch.randn(8, 3, 50, generator=gen(1)) + 10):  # +10: no natural zeros
        out = time_mask(x, 0.3, gen(2))
        assert out.shape == x.shape
        zero = _zeroed(out)
        cols = zero.flatten(1, -2)  # (B, rows, T): a band spans every channel and frequency
        assert torch.equal(cols.all(dim=1), cols.any(dim=1))
        for band in cols.all(dim=1):
            idx = band.nonzero().flatten()
            assert len(idx) <= int(0.3 * x.shape[-1])
            if len(idx):
                assert torch.equal(idx, torch.arange(idx[0], idx[0] + len(idx)))
        assert torch.equal(out[~zero], x[~zero])
        assert zero.any()


def test_freq_mask_zeroes_whole_frequency_rows():
    x = image() + 10
    out = freq_mask(x, 0.3, gen(4))
    zero = _zeroed(out).permute(0, 2, 1, 3).flatten(2)  # (B, F, C*T)
    assert torch.equal(zero.all(dim=2), zero.any(dim=2))
    widths = zero.all(dim=2).sum(dim=1)
    assert widths.max() <= int(0.3 * x.shape[-2]) and widths.max() > 0


def test_masks_with_p_zero_change_nothing():
    x = image()
    assert torch.equal(time_mask(x, 0.5, gen(), p=0.0), x)
    assert torch.equal(freq_mask(x, 0.5, gen(), p=0.0), x)


def test_mixup_keeps_distributions_and_convex_weights():
    x, t, w = image(), soft_targets(), torch.arange(1.0, 9.0)
    mx, mt, mw = mixup(x, t, w, 0.4, gen(9))
    assert mx.shape == x.shape and mt.shape == t.shape and mw.shape == w.shape
    assert torch.allclose(mt.sum(dim=1), torch.ones(8))
    assert (mw >= w.min()).all() and (mw <= w.max()).all()
    assert not torch.equal(mx, x)
    assert mixup(x, t, None, 0.4, gen(9))[2] is None


def test_batch_augmenter_is_reproducible_and_keeps_keys():
    cfg = AugmentConfig(swap_p=0.5, time_shift_frac=0.1, time_mask_p=0.5, freq_mask_p=0.5, mixup_p=1.0)
    batch = {"x": image(), "target": soft_targets(), "weight": torch.ones(8), "n_votes": torch.arange(8)}
    aug = BatchAugmenter(cfg, SWAP, is_image=True)
    a, b = aug(batch, gen(11)), aug(batch, gen(11))
    assert a.keys() == batch.keys()
    for key in batch:
        assert torch.equal(a[key], b[key])
        assert a[key].shape == batch[key].shape
    assert torch.allclose(a["target"].sum(dim=1), torch.ones(8))
    assert not torch.equal(a["x"], aug(batch, gen(12))["x"])


@pytest.mark.parametrize("shape", [(4, 3, 40), (4, 4, 10, 40)])
def test_batch_augmenter_waveform_and_image_shapes(shape):
    x = torch.randn(*shape, generator=gen(0))
    cfg = AugmentConfig(swap_p=1.0, time_shift_frac=0.2, time_mask_p=1.0, freq_mask_p=1.0)
    swap = [2, 1, 0] if len(shape) == 3 else SWAP
    out = BatchAugmenter(cfg, swap, is_image=len(shape) == 4)({"x": x, "target": soft_targets(4)}, gen())
    assert out["x"].shape == x.shape
