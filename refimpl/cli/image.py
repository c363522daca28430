"""`refimpl image`: the spectrogram picture of an audio file, as PNG."""
from refimpl._util.files import check_outputs
from refimpl.audio import cut, read_audio
from refimpl.cli.options import add_image_options, add_span_options, image_options
from refimpl.errors import UsageError
from refimpl.image import render_image, save_png


def register(sub):
    q = sub.add_parser("image", help="write the spectrogram image of an audio file")
    q.add_argument("input", metavar="FILE")
    q.add_argument("-o", "--output", required=True, help="PNG file")
    add_image_options(q)
    add_span_options(q)
    q.set_defaults(func=run)


def run(args):
    check_outputs({"the output": args.output}, {"the input": [args.input]}, UsageError)
    image_options(args)        # options no picture can have: refused before reading
    audio = cut(read_audio(args.input, trim_zeros=args.trim_zeros), args.start, args.end)
    image = render_image(audio.signal, audio.rate, image_options(args, audio.rate, audio.name),
                         name=audio.name, renderer=args.renderer)
    save_png(image, args.output)
    return 0
