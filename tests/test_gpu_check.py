"""`make gpu-check` at tiny size on the CPU: every precision trains, inference and projections print."""

from __future__ import annotations

from bench.gpu_check import main, projection
from oof.recipes import get_recipe


def test_gpu_check_runs_at_tiny_size(capsys):
    main(["--tiny", "--device", "cpu", "--args", "batch_size=4"])
    out = capsys.readouterr().out
    for name in ("mit_b0_spec_cpu", "effb0_kspec_eegspec_cpu"):
        rows = [line for line in out.splitlines() if line.startswith(name)]
        assert {line.split()[1] for line in rows[:3]} == {"bf16", "fp16", "fp32"}, out
        assert "(auto)" in rows[2] and "recordings/s" in rows[3] and "projected" in rows[3], out
    assert "gpu check done" in out


def test_projection_scales_with_the_recipe():
    recipe = get_recipe("mit_b1_spec")  # 12 + 4 epochs, swap TTA
    hours, test_min = projection(recipe, train_rate=100.0, infer_rate=400.0)
    per_epoch_s = 17_089 * 0.8 / 100 + 17_089 * 0.2 / 400
    assert abs(hours - 5 * 16 * per_epoch_s / 3600) < 1e-9
    assert abs(test_min - 10_000 * 5 * 2 / 400 / 60) < 1e-9
