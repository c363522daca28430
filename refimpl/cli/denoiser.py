"""`refimpl denoiser train`: retrain the enhancer of the denoised condition with Caffe."""
import json
from pathlib import Path

from refimpl.cli.options import whole_number
from refimpl.conditions import denoise
from refimpl.corpus import DEFAULT_SEED, load_corpus


def register(subparsers):
    p = subparsers.add_parser("denoiser", help="the LSTM mask enhancer of the denoised condition")
    sub = p.add_subparsers(dest="denoiser_command", required=True)
    t = sub.add_parser("train", help="train it with Caffe on the training partition's "
                                     "clean/noisy pairs (needs the noisy condition)")
    t.add_argument("corpus", choices=["emodb"])
    t.add_argument("--root")
    t.add_argument("--seed", type=whole_number(0), default=DEFAULT_SEED, help="seed of the noisy condition")
    t.add_argument("--iters", type=whole_number(1), default=1500)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--out", default=str(denoise.WEIGHTS))
    t.set_defaults(func=train)


def train(args):
    corpus = load_corpus(args.corpus, root=args.root, seed=args.seed)
    info = denoise.train(corpus, args.seed, iters=args.iters, out=Path(args.out), lr=args.lr)
    print(json.dumps(info, indent=2))
    return 0
