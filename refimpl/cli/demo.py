"""`refimpl demo` (`make run`): the embedded default end to end, checked against golden/."""
import sys

from refimpl.golden.demo import run_demo


def register(sub):
    p = sub.add_parser("demo", help="extract features of the embedded synthetic signals "
                                    "and check them against golden/")
    p.add_argument("-o", "--out", default="out/demo", help="output folder (out/demo)")
    p.add_argument("--backend", default="caffe", choices=("caffe", "numpy", "c"),
                   help="caffe (default), numpy or c")
    p.set_defaults(func=run)


def run(args):
    print(f"extracting the golden cases with backend {args.backend} (synthetic seed-0 AlexNet: "
          "a stand-in, not the paper's network)", file=sys.stderr)
    result, worst, tol = run_demo(args.out, args.backend)
    print(f"wrote {args.out}/features.csv and .arff: {len(result.rows)} x {result.dim}")
    print(f"fc7 against golden (real Caffe): worst error {worst:.2e} of the vector max "
          f"(tolerance {tol:g}) -> {'OK' if worst <= tol else 'MISMATCH'}")
    return 0 if worst <= tol and not result.failed else 1
