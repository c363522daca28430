"""`refimpl corpus check|download|conditions|standin`: corpora and their acoustic
conditions, and a generated stand-in for FAU-AIBO."""
from refimpl.cli.options import whole_number
from refimpl.conditions import generate_conditions, standin
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
    g.add_argument("--seed", type=whole_number(0), default=DEFAULT_SEED)
    g.add_argument("--only", choices=["noisy", "denoised"], help="generate one condition only")
    g.add_argument("--limit", type=whole_number(1), help="only the first N files (a quick look)")
    add_noise_options(g)
    g.add_argument("--out", help="folder for the generated audio and the completed "
                                 "manifest (default: the cache's conditions/ folder)")
    g.add_argument("--jobs", type=whole_number(1), help="worker processes (default: every core)")
    g.set_defaults(func=run_conditions)

    s = sub.add_parser("standin", help="generate a stand-in corpus in FAU-AIBO's layout "
                                       "(EmoDB audio, the paper's counts) for cost and the "
                                       "AIBO code path, not for UARs")
    s.add_argument("corpus", choices=["aibo"], help="the corpus to stand in for")
    s.add_argument("-o", "--out", required=True, help="folder to write (resumed if there)")
    s.add_argument("--scale", type=float, default=1.0,
                   help="fraction of the paper's counts, in (0, 1] (default 1: 17 076 chunks)")
    s.add_argument("--seed", type=whole_number(0), default=0, help="seed of the audio (default 0)")
    s.add_argument("--jobs", type=whole_number(1), help="worker processes (default: every core)")
    s.add_argument("--source", help="16 kHz mono .wav files to cut chunks from "
                                    "(default ../shared/data/emodb/wav)")
    s.add_argument("--noise-root", help="background-noise folder (default ../shared/data/noise)")
    s.add_argument("--no-noisy", action="store_true",
                   help="close talk only: no room-microphone files")
    s.add_argument("--limit", type=whole_number(1), help="audio for the first N chunks of each partition "
                                             "only (a quick look)")
    s.set_defaults(func=run_standin)


def add_noise_options(parser):
    """--noise-dir and --download-noise (here and in `refimpl reproduce`)."""
    parser.add_argument("--noise-dir", "--noise-root", dest="noise_dir",
                        help="background-noise recordings (default ../shared/data/noise, "
                             "else the downloaded copy); may hold its own noise_split.csv")
    parser.add_argument("--download-noise", action="store_true",
                        help="when no noise recordings are found, download Speech "
                             "Commands' background noise (2.4 GB archive, checksummed)")


def run_check(args):
    kwargs, expected = {}, None
    if args.corpus == "aibo":
        kwargs = {"clean_dir": args.clean_dir, "noisy_dir": args.noisy_dir}
    corpus = load_corpus(args.corpus, root=args.root, **kwargs)
    if args.corpus == "aibo":
        # a generated stand-in holds the paper's counts scaled, not the paper's own
        expected = standin.counts_to_check(args.root)
    agree, lines = check(corpus, expected=expected)
    print("\n".join(lines))
    return 0 if agree else 1


def run_download(args):
    dest = download_emodb(args.dest, url=args.url, sha256=args.sha256, log=print)
    print(f"EmoDB unpacked to {dest}; use it with --root {dest}")
    return 0


def run_conditions(args):
    kwargs = {"noisy_dir": args.noisy_dir} if args.corpus == "aibo" else {}
    corpus = load_corpus(args.corpus, root=args.root, seed=args.seed, **kwargs)
    generate_conditions(corpus, args.seed, only=args.only, noise_root=args.noise_dir,
                        limit=args.limit, out_dir=args.out,
                        download_noise=args.download_noise, jobs=args.jobs)
    return 0


def run_standin(args):
    summary = standin.generate(args.out, scale=args.scale, seed=args.seed, source=args.source,
                               noisy=not args.no_noisy, noise_root=args.noise_root,
                               jobs=args.jobs, limit=args.limit)
    chunks = summary["chunks"]
    train = sum(c.partition == "train" for c in chunks)
    print(f"stand-in FAU-AIBO in {summary['out']}: {len(chunks)} chunks at scale "
          f"{args.scale} (train {train}, test {len(chunks) - train})")
    for line in standin.count_lines(chunks):
        print(line)
    skipped = summary["audio"] - summary["made_clean"]
    print(f"  audio for {summary['audio']} chunk(s): {summary['made_clean']} close-talk file(s) "
          f"made, {skipped} already there"
          + ("" if args.no_noisy else f"; {summary['made_room']} room-microphone file(s) made"))
    for line in standin.timing_lines(summary):
        print(line)
    if summary["audio"] == len(chunks):
        print(f"check it: {standin.check_command(summary['out'], not args.no_noisy)}")
    else:
        print("check it once every chunk has audio: run the same command without --limit")
    return 0
