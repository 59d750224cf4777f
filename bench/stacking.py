"""Stacking benchmark: wall time, peak memory and KL of `python -m stacking` on synthetic OOF sets.

    .venv/bin/python -m bench.stacking                          # 20,000 rows x 10 members, 100 trials
    .venv/bin/python -m bench.stacking --members 50 --rows 25000

(As a module from the repository root: run as a script, its own name would hide the stacking package.)

The synthetic members are tempered, biased, noisy views of a hidden truth (synthetic/oof_sets.py),
half the rows low-vote with a different class mix, as on the real data. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
from pathlib import Path

from stacking.blend import BlendConfig
from stacking.config import StackConfig
from stacking.lgbm import LgbmConfig
from stacking.mlp import MlpConfig
from stacking.run import run_stack
from synthetic.oof_sets import default_specs, write_synthetic_work


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--min-votes", default="10")
    parser.add_argument("--threads", type=int, default=LgbmConfig.threads)
    parser.add_argument("--methods", default="blend,selection,logit,mlp,lgbm")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp) / "work"
        t0 = time.perf_counter()
        write_synthetic_work(work, n_rows=args.rows, specs=default_specs(args.members), seed=args.seed,
                             n_test=1000)
        generate_s = time.perf_counter() - t0
        config = StackConfig(
            work=work, data=Path(tmp) / "no-data", methods=tuple(args.methods.split(",")),
            min_votes=args.min_votes, submission=False,
            blend=BlendConfig(trials=args.trials, seed=args.seed),
            lgbm=LgbmConfig(trials=args.trials, threads=args.threads, seed=args.seed),
            mlp=MlpConfig(threads=args.threads, seed=args.seed),
        )
        t0 = time.perf_counter()
        report = run_stack(config)
        wall_s = time.perf_counter() - t0
    print_figures(args, report, wall_s, generate_s)


def print_figures(args: argparse.Namespace, report: dict, wall_s: float, generate_s: float) -> None:
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    members = report["member_kl"]
    best = min(members, key=lambda n: members[n]["kl_high"])
    print(f"\nstacking bench: {args.rows} rows x {args.members} members, {args.trials} trials, "
          f"min_votes={args.min_votes}, {args.threads} LightGBM threads, {os.cpu_count()} CPUs")
    print(f"wall {wall_s:.1f} s (synthetic data {generate_s:.1f} s not included), peak RSS {peak_mib:.0f} MiB")
    print("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["timings_s"].items()))
    rows = [(f"best member ({best})", members[best]), ("mean", report["baselines"]["mean"]),
            ("class prior", report["baselines"]["class prior"])]
    rows += [(f"{m}{':' + s['variant'] if s.get('variant') else ''} ({s['policy']})", s)
             for m, s in report["stackers"].items()]
    times = report["timings_s"]
    print(f"{'':<36}{'KL all':>8}{'KL >=10':>9}{'CV ± SE':>17}{'nested':>9}{'time s':>8}")
    for label, s in rows:
        nested, cv = s.get("nested_kl_high"), s.get("cv_kl_high")
        method = label.split(" ")[0].split(":")[0]
        print(f"{label:<36}{s['kl_all']:8.4f}{s['kl_high']:9.4f}"
              + (f"{cv:9.4f} ± {s['cv_se']:.4f}{nested:9.4f}{times.get(method, float('nan')):8.1f}" if cv else ""))
    print("configurations (CV ± SE by recording; paired difference to the best ± SE):")
    for c in report["configurations"]:
        print(f"  {c['label']:<40} cplx {c['complexity']:<4g} {c['cv_kl_high']:.4f} ± {c['se']:.4f}  "
              f"{c['diff_vs_best']:+.4f} ± {c['diff_se']:.4f}  {'within' if c['within'] else ''}"
              + ("  <- chosen" if c.get("chosen") else ""))
    final = report["final"]
    print(f"final: {final['label']}: CV {final['cv_kl_high']:.4f} ± {final['cv_se']:.4f}, "
          f"nested {final['nested_kl_high']:.4f}")
    print(f"rule {final['rule']}: {final['reason']}")

if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
