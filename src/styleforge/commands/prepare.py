"""``styleforge prepare faces IN_DIR OUT_DIR``: training crops from a folder of raw photos or
cartoon portraits (detect -> align -> crop -> whiten the background), with a rejects list and
resume. See docs/faces.md."""
from __future__ import annotations

import argparse
import sys

HELP = """Runs face preprocessing over every image under IN_DIR (subfolders too) and writes one
PNG per image under OUT_DIR at the same relative path. Images without a usable face (no face,
too small, several faces) are listed with the reason in OUT_DIR/rejected.tsv. Running again
skips images already written or already rejected (delete rejected.tsv or pass --retry-rejected
to try those again)."""


def register(sub) -> None:
    p = sub.add_parser("prepare", help="prepare training data (prepare faces IN_DIR OUT_DIR)",
                       description="Prepare training data.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    f = kinds.add_parser("faces", help="aligned, background-whitened face crops from a folder of photos",
                         description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("in_dir", help="folder of photos or portraits (searched recursively)")
    f.add_argument("out_dir", help="output folder (must not be inside IN_DIR)")
    add_face_options(f)
    f.add_argument("--faces", choices=("reject", "largest", "all"), default="reject",
                   help="images with several faces: reject them (default), keep the largest, or write "
                   "every face (NAME_0.png, NAME_1.png, ...)")
    f.add_argument("--min-face", type=float, default=64,
                   help="reject faces whose detected box is smaller than this many pixels (default 64)")
    f.add_argument("--several-ratio", type=float, default=0.5,
                   help="another face counts as a second person when at least this fraction of the "
                   "largest one's size (default 0.5); smaller ones are ignored")
    f.add_argument("--retry-rejected", action="store_true", help="try the images rejected.tsv lists again")
    f.add_argument("--quiet", action="store_true", help="no progress bar, no per-image lines")
    f.set_defaults(func=run_faces)
    p.set_defaults(func=lambda args, overrides: (p.print_help(), 2)[1])


def add_face_options(p) -> None:
    """The framing and segmentation options ``cartoonize`` and ``prepare faces`` share."""
    p.add_argument("--size", type=int, default=256, help="side of the face crops in pixels (default 256)")
    p.add_argument("--margin", type=float, default=0.3,
                   help="space around the face box on each side, as a fraction of the box (default 0.3: "
                   "the framing of the Photo2Cartoon data)")
    p.add_argument("--no-align", action="store_true", help="do not rotate to make the eyes level")
    p.add_argument("--matting-model", metavar="X.onnx",
                   help="ONNX portrait-matting model for the background (default: GrabCut, no weights); "
                   "input 1x3xHxW RGB in [-1,1], output the alpha matte (see docs/faces.md)")
    p.add_argument("--matting-range", choices=("-1,1", "0,1"), default="-1,1",
                   help="input value range the ONNX matting model expects (default -1,1)")
    p.add_argument("--no-whiten", action="store_true", help="no segmentation: keep the background")


def preprocessor_from_args(args):
    from ..errors import ConfigError
    from ..faces import FacePreprocessor

    if args.no_whiten and args.matting_model:
        raise ConfigError("--no-whiten and --matting-model contradict each other")
    if args.size < 8:
        raise ConfigError(f"--size must be at least 8, got {args.size}")
    matting = None if args.no_whiten else (args.matting_model or "grabcut")
    opts = {"input_range": args.matting_range} if args.matting_model else None
    return FacePreprocessor(size=args.size, margin=args.margin, align=not args.no_align, matting=matting,
                            matting_options=opts)


def run_faces(args, overrides) -> int:
    from ..errors import ConfigError
    from ..faces import prepare_faces

    if overrides:
        raise ConfigError(f"prepare faces takes no config overrides: {' '.join(overrides)}")
    if not 0 < args.several_ratio <= 1:
        raise ConfigError(f"--several-ratio must be in (0, 1], got {args.several_ratio}")
    pre = preprocessor_from_args(args)
    report = prepare_faces(args.in_dir, args.out_dir, pre, policy=args.faces, min_face=args.min_face,
                           several_ratio=args.several_ratio, retry_rejected=args.retry_rejected,
                           progress=not args.quiet, log=None if args.quiet else sys.stderr)
    print(report.summary())
    return 0
