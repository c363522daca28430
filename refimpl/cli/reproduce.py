"""`refimpl reproduce` (`make reproduce`): the paper's grid, Tables 5-9, Figures 2-3 and the
comparison with the paper, on EmoDB, FAU-AIBO or any corpus."""
import contextlib
import os
import sys
from pathlib import Path

from refimpl.cli.corpus import add_noise_options
from refimpl.cli.options import whole_number
from refimpl.experiments.grid import BOAW_SELECT
from refimpl.experiments.reproduce import (CONDITION_SETS, FEATURE_FACTORIES, NA_GRIDS,
                                           parse_seeds, reproduce)


def register(subparsers):
    p = subparsers.add_parser("reproduce", help="the paper's grid: tables 5-9, figures 2-3, "
                                                "the comparison with the paper",
                              description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="emodb",
                   help="emodb, aibo, or a manifest CSV (default emodb); a manifest needs "
                        "clean audio only: the noisy and denoised conditions are made")
    p.add_argument("--root", default=None, help="corpus folder (e.g. FAU-AIBO's)")
    p.add_argument("--noisy-dir", default=None,
                   help="FAU-AIBO's room-microphone audio (else the noisy condition is "
                        "simulated)")
    p.add_argument("--features", default=",".join(FEATURE_FACTORIES),
                   help="comma-separated feature sets (default: all)")
    p.add_argument("--out", default="results", help="output folder (default results)")
    p.add_argument("--seed", type=whole_number(0), default=0,
                   help="seed of the conditions, the control network and the reference "
                        "run (default 0)")
    p.add_argument("--seeds", default=None,
                   help="more classifier seeds, e.g. 0-9: the models are rerun for each on "
                        "the same features; cells then show mean +- sd")
    p.add_argument("--conditions", choices=list(CONDITION_SETS), default="all",
                   help="all three conditions (default), or the clean column only")
    p.add_argument("--na-grid", choices=list(NA_GRIDS), default="union",
                   help="BoAW's Na values: union of the paper's tables and text (default) or "
                        "the grid stated in its section 3.4")
    p.add_argument("--boaw-select", choices=list(BOAW_SELECT), default="cv",
                   help="BoAW's Cs and Na: by inner CV on the training data (default), or "
                        "per test condition as the paper's Tables 7-8 report them "
                        "(selects on the test set)")
    add_noise_options(p)
    p.add_argument("--jobs", type=whole_number(1), default=os.cpu_count() or 1)
    p.add_argument("--dask", metavar="ADDRESS",
                   help="compute the deep spectrum features on dask.distributed workers: a "
                        "scheduler's address or local:N (as `refimpl extract --dask`)")
    p.set_defaults(func=run)


def run(args):
    names = [n.strip() for n in args.features.split(",") if n.strip()]
    seeds = parse_seeds(args.seeds) if args.seeds else None
    with contextlib.ExitStack() as stack:
        client = None
        if args.dask is not None:
            # here: refimpl.features.distributed needs dask, an optional dependency
            from refimpl.features.distributed import dask_client
            client = stack.enter_context(dask_client(args.dask))
        rows, failures = reproduce(args.corpus, args.root, out_dir=args.out, seed=args.seed,
                                   seeds=seeds, features=names, jobs=args.jobs,
                                   conditions=args.conditions, na_grid=args.na_grid,
                                   boaw_select=args.boaw_select, noise_dir=args.noise_dir,
                                   download_noise=args.download_noise,
                                   noisy_dir=args.noisy_dir, client=client)
    comparison = Path(args.out) / "paper_comparison.md"
    if comparison.exists():
        print(comparison.read_text().split("### Every published cell")[0].rstrip())
    print(f"results written to {args.out}/ (report.md, table5..table9, figure2/3.png, "
          "paper_comparison.md, trust.md)")
    if failures:
        print(f"{len(failures)} file(s) failed and were left out:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
    return 1 if failures else 0
