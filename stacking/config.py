"""The stack's settings: one typed config, overridable by `key=value` and `config=FILE` (core.config).

`make stack ARGS="trials=200 blend.space=log min_votes=auto"`: a bare key sets every section that
has it (`trials` sets blend.trials and lgbm.trials; `seed` every seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.config import apply_settings, expand_config_files, split_items
from core.schema import HIGH_VOTE_MIN
from stacking.blend import BlendConfig
from stacking.lgbm import LgbmConfig
from stacking.logit_linear import LogitConfig
from stacking.mlp import MlpConfig
from stacking.policy import AUTO_THRESHOLDS
from stacking.selection import SelectionConfig

METHODS = ("blend", "selection", "logit", "mlp", "lgbm")


@dataclass(frozen=True)
class StackConfig:
    work: Path = Path("artifacts")
    data: Path = Path("data")
    models: tuple[str, ...] | None = None      # OOF set names (default: every one in WORK/oof/)
    methods: tuple[str, ...] = METHODS         # stackers to fit (stacking.stackers)
    min_votes: str = str(HIGH_VOTE_MIN)        # fit on rows with at least this many voters, or "auto"
    vote_weighting: str = "none"               # none | sqrt | linear (core.vote_weights)
    auto_thresholds: tuple[int, ...] = AUTO_THRESHOLDS
    high_votes: int = HIGH_VOTE_MIN            # rows with at least this many voters are scored on
    recording_weights: bool = True             # each recording weighs the same in fitting and in CV figures
    choice: str = "robust"                     # robust (simplest within choice_se SE of the best) | best (argmin)
    choice_se: float = 1.0                     # the robust rule's band, in SEs of the paired difference
    prior_correction: str = "none"             # none | em: re-estimate the test class mix (stacking.prior_shift)
    prior_steps: int = 1                       # EM steps of the correction (0: until it converges)
    submission: bool = True                    # write WORK/submission.csv
    blend: BlendConfig = field(default_factory=BlendConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    logit: LogitConfig = field(default_factory=LogitConfig)
    mlp: MlpConfig = field(default_factory=MlpConfig)
    lgbm: LgbmConfig = field(default_factory=LgbmConfig)


def stack_config(work: Path, data: Path, overrides: list[str] | str = ()) -> StackConfig:
    config = StackConfig(work=Path(work), data=Path(data))
    return apply_settings(config, expand_config_files(split_items(overrides)), bare_sets_all=True, what="the stack")
