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
    f.add_argument("out_dir", nargs="?", help="output folder (must not be inside IN_DIR); or --out")
    f.add_argument("--out", "-o", dest="out", metavar="OUT_DIR", help="output folder (instead of OUT_DIR)")
    add_face_options(f)
    f.add_argument("--domain", choices=("auto", "photo", "cartoon"), default="auto",
                   help="what the images show: cartoon lowers the bundled detector's score threshold "
                   "for drawn faces (default auto: the photo setting, which finds the shared cartoons too)")
    f.add_argument("--overwrite", action="store_true",
                   help="process every image again, replacing outputs and forgetting rejected.tsv")
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
    p.add_argument("--crop-size", type=int, default=None, metavar="N",
                   help="side of the square face crops in pixels (default 256)")
    p.add_argument("--size", type=int, default=None, dest="size_alias", metavar="N",
                   help="deprecated alias of --crop-size")
    p.add_argument("--detector", choices=("auto", "mediapipe", "haar"), default="auto",
                   help="face detector: the bundled MediaPipe BlazeFace + Face Mesh landmarks, the OpenCV "
                   "Haar cascades, or auto (default: MediaPipe, Haar where it finds no face)")
    p.add_argument("--framing", choices=("auto", "box"), default="auto",
                   help="auto (default): Photo2Cartoon's rule from the landmarks when the detector gives "
                   "them; box: from the face box and --margin")
    p.add_argument("--margin", type=float, default=0.3,
                   help="box framing: space around the face box on each side, as a fraction of the box "
                   "(default 0.3: the framing of the Photo2Cartoon data)")
    p.add_argument("--no-align", action="store_true", help="do not rotate to make the eyes level")
    p.add_argument("--matting", choices=("auto", "selfie", "grabcut"), default="auto",
                   help="background remover: the bundled MediaPipe selfie segmentation, GrabCut, or auto "
                   "(default: selfie, GrabCut when the bundled model cannot run)")
    p.add_argument("--refine-edges", action="store_true",
                   help="refine the selfie matte's edge (hair) with closed-form matting: needs pymatting "
                   "(pip install 'styleforge[faces]'), about a second per face")
    p.add_argument("--matting-model", metavar="X.onnx",
                   help="your ONNX portrait-matting model instead (input 1x3xHxW RGB in [-1,1], output the "
                   "alpha matte; see docs/faces.md)")
    p.add_argument("--matting-range", choices=("-1,1", "0,1"), default="-1,1",
                   help="input value range the ONNX matting model expects (default -1,1)")
    p.add_argument("--no-whiten", action="store_true", help="no segmentation: keep the background")


def crop_size(args) -> int:
    """--crop-size, or the deprecated --size (with one note on stderr)."""
    from ..errors import ConfigError

    size = args.crop_size
    if args.size_alias is not None:
        print("note: --size is deprecated for face crops (it is the crop side; translate's --size resizes "
              "the longer side): use --crop-size", file=sys.stderr)
        if size is not None and size != args.size_alias:
            raise ConfigError(f"--crop-size {size} and its deprecated alias --size {args.size_alias} disagree")
        size = args.size_alias
    size = 256 if size is None else size
    if size < 8:
        raise ConfigError(f"--crop-size must be at least 8, got {size}")
    return size


def preprocessor_from_args(args):
    """The FacePreprocessor the options ask for; unless --quiet, one line on stderr says which
    detector, framing and matte it uses (the bundled models or the fallbacks)."""
    from ..errors import ConfigError
    from ..faces import FacePreprocessor

    if args.no_whiten and args.matting_model:
        raise ConfigError("--no-whiten and --matting-model contradict each other")
    if args.matting_model and args.matting != "auto":
        raise ConfigError(f"--matting {args.matting} and --matting-model contradict each other")
    matting = None if args.no_whiten else (args.matting_model or args.matting)
    if args.refine_edges and (args.matting_model or args.no_whiten or args.matting == "grabcut"):
        raise ConfigError("--refine-edges refines the bundled selfie matte: not with --matting-model, "
                          "--no-whiten or --matting grabcut")
    opts = {"input_range": args.matting_range} if args.matting_model else None
    if args.refine_edges:
        opts = {"refine": True}
    pre = FacePreprocessor(size=crop_size(args), margin=args.margin, align=not args.no_align, matting=matting,
                           matting_options=opts, detector=args.detector, framing=args.framing,
                           domain=getattr(args, "domain", "auto"))
    if args.refine_edges and not getattr(pre.matting, "refine", False):
        from ..faces.mediapipe_models import unavailable

        raise ConfigError(f"--refine-edges refines the bundled selfie matte, which cannot run here: {unavailable()}")
    if not getattr(args, "quiet", False):
        print(pre.describe(), file=sys.stderr)
    return pre


def run_faces(args, overrides) -> int:
    from ..errors import ConfigError
    from ..faces import prepare_faces

    if overrides:
        raise ConfigError(f"prepare faces takes no config overrides: {' '.join(overrides)}")
    if not 0 < args.several_ratio <= 1:
        raise ConfigError(f"--several-ratio must be in (0, 1], got {args.several_ratio}")
    if args.out and args.out_dir and args.out != args.out_dir:
        raise ConfigError(f"two output folders: OUT_DIR {args.out_dir} and --out {args.out}")
    out = args.out or args.out_dir
    if not out:
        raise ConfigError("prepare faces needs an output folder: OUT_DIR or --out/-o")
    pre = preprocessor_from_args(args)
    report = prepare_faces(args.in_dir, out, pre, policy=args.faces, min_face=args.min_face,
                           several_ratio=args.several_ratio, retry_rejected=args.retry_rejected,
                           overwrite=args.overwrite, progress=not args.quiet,
                           log=None if args.quiet else sys.stderr)
    print(report.summary() + pre.fallback_note())
    return 0
