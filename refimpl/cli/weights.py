"""`refimpl weights fetch|synth|verify`: the AlexNet weights."""
from pathlib import Path

from refimpl._util.digest import file_digest
from refimpl.cli.options import whole_number
from refimpl.errors import WeightsError
from refimpl.network import caffemodel, weights


def register(subparsers):
    p = subparsers.add_parser("weights", help="AlexNet weights: fetch, synthesize, verify")
    sub = p.add_subparsers(dest="weights_command", required=True)
    f = sub.add_parser("fetch", help="download the official bvlc_alexnet.caffemodel")
    f.add_argument("-o", "--output", type=Path, default=None,
                   help=f"destination (default {weights.alexnet_weights_path()})")
    f.set_defaults(func=fetch)
    s = sub.add_parser("synth", help="write a synthetic AlexNet caffemodel (bit-identical "
                                     "per seed)")
    s.add_argument("--seed", type=whole_number(0), default=0)
    s.add_argument("-o", "--output", type=Path, required=True)
    s.add_argument("--v1", action="store_true", help="2014 V1 layout, like the real file")
    s.set_defaults(func=synth)
    v = sub.add_parser("verify", help="check a caffemodel's SHA1 and AlexNet shapes")
    v.add_argument("path", type=Path)
    v.add_argument("--sha1", default=None, help="expected SHA1 (hex)")
    v.set_defaults(func=verify)


def fetch(args):
    print(weights.fetch_alexnet(args.output))


def synth(args):
    path = weights.synth_alexnet(args.seed, args.output, v1=args.v1)
    print(f"{path} sha256={file_digest(path)}")


def verify(args):
    try:
        if args.sha1:
            weights.verify_sha1(args.path, args.sha1)
        caffemodel.load_alexnet_params(args.path)
    except FileNotFoundError as e:  # a CaffeModelError or ChecksumError says it already
        raise WeightsError(str(e)) from None
    print(f"{args.path}: OK" + (f" (SHA1 {args.sha1.lower()})" if args.sha1 else
                                " (AlexNet layers and shapes)"))
