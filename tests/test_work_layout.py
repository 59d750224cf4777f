"""One module owns the WORK layout (core.work): the README's outputs table lists exactly its patterns,
and each pattern is what its Work method builds."""

from __future__ import annotations

import re
from pathlib import Path

from core.work import LAYOUT, Work

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_outputs() -> set[str]:
    text = README.read_text()
    section = text.split("## Outputs", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def test_readme_outputs_table_matches_the_layout():
    assert readme_outputs() == set(LAYOUT)


def test_each_pattern_is_what_its_method_builds(tmp_path):
    work = Work(tmp_path)
    args = {"NAME": "m", "K": 3, "<view>": "wave", "<hash>": "abc"}
    for pattern, method in LAYOUT.items():
        fn = getattr(work, method)
        names = [a for a in ("<view>", "NAME") if a in pattern]
        call = [args[a] for a in names] + ([args["K"]] if "foldK" in pattern else [])
        if "<hash>" in pattern:
            call.append(args["<hash>"])
        expected = pattern.replace("<view>", "wave").replace("<hash>", "abc").replace("NAME", "m").replace("K", "3")
        assert fn(*call) == tmp_path / expected.rstrip("/"), pattern


def test_stage_code_builds_no_work_paths_by_hand():
    """The stages ask Work for paths: no '"oof" /' style joins outside core/work.py."""
    root = README.parent
    pattern = re.compile(r"""/ "(oof|test|models|stack|cache|folds\.parquet|submission\.csv)"(?! *#)""")
    offenders = [f"{p.relative_to(root)}:{i}" for pkg in ("core", "features", "models", "oof", "stacking",
                                                             "submission", "synthetic")
                 # bundle_entry.py runs before the wheel is installed: it cannot import core.work
                 for p in (root / pkg).rglob("*.py") if p.name not in ("work.py", "bundle_entry.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
