"""`refimpl corpus check|download|conditions`: corpora and their acoustic conditions."""
from refimpl.conditions import generate_conditions
from refimpl.corpus import DEFAULT_SEED, check, download_emodb, load_corpus


def register(subparsers):
    p = subparsers.add_parser("corpus", help="corpora: check counts, download, make conditions")
    sub = p.add_subparsers(dest="corpus_command", required=True)

    c = sub.add_parser("check", help="print partition and per-class counts and compare them "
                                     "with the published ones")
    c.add_argument("corpus", help="emodb, aibo, or a manifest CSV")
    c.add_argument("--root", help="the corpus folder (EmoDB: default ../shared/data/emodb)")
    c.add_argument("--clean-dir", help="FAU-AIBO close-talk audio (default ROOT/wav)")
    c.add_argument("--noisy-dir", help="FAU-AIBO room-microphone audio; restricts to matched "
                                       "chunks")
    c.set_defaults(func=run_check)

    d = sub.add_parser("download", help="download and unpack the official EmoDB archive")
    d.add_argument("corpus", choices=["emodb"])
    d.add_argument("--dest", required=True, help="folder to unpack into (gets wav/)")
    d.add_argument("--url", help="archive URL (default: the official one)")
    d.add_argument("--sha256", help="expected SHA-256 of the archive")
    d.set_defaults(func=run_download)

    g = sub.add_parser("conditions", help="generate the noisy and denoised conditions of "
                                          "every file that lacks them, at any sample rate",
                       description="Simulate the room microphone and run the enhancer for "
                                   "every file of the corpus that lacks them, then write "
                                   "the corpus manifest with all three conditions.")
    g.add_argument("corpus", help="emodb, aibo, or a manifest CSV (path_clean is enough)")
    g.add_argument("--root", help="the corpus folder (EmoDB: default ../shared/data/emodb)")
    g.add_argument("--noisy-dir", help="FAU-AIBO room-microphone audio (then only the "
                                       "denoised condition is made)")
    g.add_argument("--seed", type=int, default=DEFAULT_SEED)
    g.add_argument("--only", choices=["noisy", "denoised"], help="generate one condition only")
    g.add_argument("--limit", type=int, help="only the first N files (a quick look)")
    add_noise_options(g)
    g.add_argument("--out", help="folder for the generated audio and the completed "
                                 "manifest (default: the cache's conditions/ folder)")
    g.add_argument("--jobs", type=int, help="worker processes (default: every core)")
    g.set_defaults(func=run_conditions)


def add_noise_options(parser):
    """--noise-dir and --download-noise (here and in `refimpl reproduce`)."""
    parser.add_argument("--noise-dir", "--noise-root", dest="noise_dir",
                        help="background-noise recordings (default ../shared/data/noise, "
                             "else the downloaded copy); may hold its own noise_split.csv")
    parser.add_argument("--download-noise", action="store_true",
                        help="when no noise recordings are found, download Speech "
                             "Commands' background noise (2.4 GB archive, checksummed)")


def run_check(args):
    kwargs = {}
    if args.corpus == "aibo":
        kwargs = {"clean_dir": args.clean_dir, "noisy_dir": args.noisy_dir}
    corpus = load_corpus(args.corpus, root=args.root, **kwargs)
    return 0 if check(corpus) else 1


def run_download(args):
    dest = download_emodb(args.dest, url=args.url, sha256=args.sha256)
    print(f"EmoDB unpacked to {dest}; use it with --root {dest}")
    return 0


def run_conditions(args):
    kwargs = {"noisy_dir": args.noisy_dir} if args.corpus == "aibo" else {}
    corpus = load_corpus(args.corpus, root=args.root, seed=args.seed, **kwargs)
    generate_conditions(corpus, args.seed, only=args.only, noise_root=args.noise_dir,
                        limit=args.limit, out_dir=args.out,
                        download_noise=args.download_noise, jobs=args.jobs)
    return 0
