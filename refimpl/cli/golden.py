"""`refimpl golden make|verify`: regenerate golden/, or check an implementation of a stage
against it."""
from refimpl import golden
from refimpl.errors import UsageError
from refimpl.golden import efficientnet as golden_efficientnet


def register(sub):
    p = sub.add_parser("golden", help="make or verify golden files")
    gsub = p.add_subparsers(dest="golden_command", required=True)
    m = gsub.add_parser("make", help="regenerate golden/ with matplotlib and real Caffe")
    m.add_argument("--root", default=None, help="golden folder (default: the repository's)")
    m.add_argument("--weights", default=None, help="caffemodel (default: seed-0 synthetic)")
    m.set_defaults(func=make)
    v = gsub.add_parser("verify", help="check an implementation of a stage against golden/")
    v.add_argument("--stage", choices=("image", "blob", "fc7"), default=None,
                   help="required for --net alexnet")
    v.add_argument("--net", choices=("alexnet", "efficientnet-lite0"), default="alexnet",
                   help="efficientnet-lite0: its features and logits against PyTorch's "
                        "(golden/efficientnet-lite0/)")
    v.add_argument("--impl", default=None,
                   help="MODULE:CALLABLE (default: our reference for the stage); see "
                        "refimpl.golden for each stage's signature")
    v.add_argument("--root", default=None)
    v.add_argument("--weights", default=None)
    v.set_defaults(func=verify)


def make(args):
    golden.make_golden(args.root, args.weights, log=print)
    return 0


def verify(args):
    if args.net == "efficientnet-lite0":
        report = golden_efficientnet.verify_golden()
        for key, value in report.items():
            print(f"{key}: {value}")
        print(f"efficientnet-lite0 NumPy path vs PyTorch golden: "
              f"{'ok' if report['ok'] else 'FAIL'}")
        return 0 if report["ok"] else 1
    if args.stage is None:
        raise UsageError("golden verify needs --stage image|blob|fc7 (or --net "
                         "efficientnet-lite0)")
    spec = args.impl or golden.DEFAULT_IMPL[args.stage]
    try:
        impl = golden.load_callable(spec)
    except (ImportError, AttributeError, ValueError) as e:
        raise UsageError(f"--impl {spec}: cannot load it ({e})") from None
    if not callable(impl):
        raise UsageError(f"--impl {spec}: {type(impl).__name__} {impl!r:.40} is not callable")
    results = golden.verify(args.stage, impl, args.root, args.weights)
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"{'ok  ' if r.passed else 'FAIL'} {r.name:<{width}}  error {r.error:.3g}  "
              f"{r.detail}")
    worst = max(results, key=lambda r: r.error)
    failed = sum(not r.passed for r in results)
    print(f"{args.stage} via {spec}: {len(results) - failed}/{len(results)} cases pass; "
          f"worst {worst.error:.3g} ({worst.name})")
    return 1 if failed else 0
