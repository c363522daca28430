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

    g = sub.add_parser("conditions", help="generate the noisy and denoised conditions")
    g.add_argument("corpus", choices=["emodb"])
    g.add_argument("--root", help="EmoDB folder (default ../shared/data/emodb)")
    g.add_argument("--seed", type=int, default=DEFAULT_SEED)
    g.add_argument("--only", choices=["noisy", "denoised"], help="generate one condition only")
    g.add_argument("--limit", type=int, help="only the first N files (a quick look)")
    g.add_argument("--noise-root", help="background-noise folder (default ../shared/data/noise)")
    g.set_defaults(func=run_conditions)


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
    corpus = load_corpus(args.corpus, root=args.root, seed=args.seed)
    generate_conditions(corpus, args.seed, only=args.only, noise_root=args.noise_root,
                        limit=args.limit)
    return 0
