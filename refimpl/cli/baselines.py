"""`refimpl functionals|lld|boaw`: the paper's openSMILE and openXBOW baselines."""
from refimpl.baselines import boaw, opensmile
from refimpl.cli.messages import report_skipped
from refimpl.cli.options import whole_number


def register(sub):
    p = sub.add_parser("functionals",
                       help="eGeMAPS (88) or ComParE 2013 (6373) functionals (openSMILE)")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("-o", "--output", required=True, help="OUT.csv (';'-separated, header line)")
    p.add_argument("--set", choices=sorted(opensmile.FEATURE_SETS), default="egemaps")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=run_functionals)

    p = sub.add_parser("lld", help="MFCC 1-12 + log energy (openSMILE) as openXBOW input CSV")
    p.add_argument("files", nargs="+", help="audio files")
    p.add_argument("-o", "--output", required=True, help="OUT.csv")
    p.add_argument("--times", action="store_true",
                   help="write the frame start time after the name")
    p.add_argument("--no-cache", action="store_true", help="recompute instead of using the cache")
    p.set_defaults(func=run_lld)

    p = sub.add_parser("boaw", help="bags of audio words from LLDs (openXBOW 1.3.1 compatible)",
                       description="Bag-of-audio-words as openXBOW 1.3.1 computes them, "
                                   "written as openXBOW -writeName writes them.")
    p.add_argument("lld", help="LLD CSV ('name';v1;...;vM per frame), e.g. from `refimpl lld`")
    p.add_argument("-o", "--output", required=True, help="OUT.csv | OUT.arff | OUT.libsvm")
    p.add_argument("--codebook", choices=boaw.METHODS, default="random++", help="openXBOW -c")
    p.add_argument("--size", type=whole_number(1), default=500, help="codebook size (openXBOW -size)")
    p.add_argument("--assignments", type=whole_number(1), default=1, help="Na, words per frame (-a)")
    p.add_argument("--gaussian", type=float, default=0.0, help="Gaussian weighting sigma")
    p.add_argument("--log", action="store_true", help="log10(TF+1)")
    p.add_argument("--idf", action="store_true", help="inverse document frequency")
    p.add_argument("--norm", type=int, default=0, choices=(0, 1, 2, 3), help="openXBOW -norm")
    p.add_argument("--standardize-input", action="store_true")
    p.add_argument("--standardize-output", action="store_true")
    p.add_argument("--remove-low-energy", nargs=2, metavar=("INDEX", "THRESHOLD"),
                   help="openXBOW -e: drop frames whose attribute INDEX (1 = name) < THRESHOLD")
    p.add_argument("--seed", type=whole_number(0), default=10, help="random seed (openXBOW default 10)")
    p.add_argument("--save-codebook", metavar="F", help="openXBOW -B")
    p.add_argument("--load-codebook", metavar="F", help="openXBOW -b")
    p.add_argument("--fast", action="store_true",
                   help="BLAS distances (differs from openXBOW only at near-ties)")
    p.set_defaults(func=run_boaw)


def run_functionals(args):
    X, failed = opensmile.write_functionals_csv(args.output, args.files, args.set,
                                                use_cache=not args.no_cache)
    print(f"{X.shape[0]} x {X.shape[1]} {args.set} functionals -> {args.output}")
    return report_skipped(failed)


def run_lld(args):
    n, failed = opensmile.write_lld_csv_files(args.files, args.output, times=args.times,
                                              use_cache=not args.no_cache)
    print(f"{n} frames from {len(args.files) - len(failed)} files -> {args.output}")
    return report_skipped(failed)


def run_boaw(args):
    lld = boaw.read_lld_csv(args.lld)
    cb = boaw.load_codebook(args.load_codebook) if args.load_codebook else None
    low = tuple(args.remove_low_energy) if args.remove_low_energy else None
    res = boaw.boaw(lld, cb, size=args.size, method=args.codebook, seed=args.seed,
                    assignments=args.assignments, gaussian=args.gaussian, log=args.log,
                    idf=args.idf, norm=args.norm, standardize_input=args.standardize_input,
                    standardize_output=args.standardize_output,
                    low_energy=(int(low[0]), float(low[1])) if low else None, fast=args.fast)
    if args.save_codebook:
        boaw.save_codebook(args.save_codebook, res.codebook)
    boaw.write_bags(args.output, res.names, res.bags, source=args.lld)
    return 0
