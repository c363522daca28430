"""`refimpl reproduce` (`make reproduce`): the paper's grid, Tables 5-9 and Figures 2-3."""
import os
import sys
from pathlib import Path

from refimpl.experiments.reproduce import FEATURE_FACTORIES, reproduce


def register(subparsers):
    p = subparsers.add_parser("reproduce", help="the paper's grid: tables 5-9, figures 2-3",
                              description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="emodb",
                   help="emodb, aibo, or a manifest CSV (default emodb)")
    p.add_argument("--root", default=None, help="corpus folder (e.g. FAU-AIBO's)")
    p.add_argument("--features", default=",".join(FEATURE_FACTORIES),
                   help="comma-separated feature sets (default: all)")
    p.add_argument("--out", default="results", help="output folder (default results)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.set_defaults(func=run)


def run(args):
    names = [n.strip() for n in args.features.split(",") if n.strip()]
    rows, failures = reproduce(args.corpus, args.root, out_dir=args.out, seed=args.seed,
                               features=names, jobs=args.jobs)
    if args.corpus == "aibo":
        comparison = Path(args.out) / "paper_comparison.md"
        if comparison.exists():
            print(comparison.read_text())
    print(f"results written to {args.out}/ (report.md, table5..table9, figure2/3.png)")
    if failures:
        print(f"{len(failures)} file(s) failed and were left out:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
    return 1 if failures else 0
