"""``styleforge codes`` and ``styleforge interpolate``: a model's latent codes, for any method that
declares a code input an image can give (``Input(kind="code", encoder=True)``: MUNIT's style,
FUNIT's class code, MIXGAN's z). Both read the declaration only, as every front end does: the
pipeline resizes each image to the code's ``encoder_size`` where the encoder needs one size
(MIXGAN's fully-connected layers), and a code used only in one mode (MIXGAN's z, ``used_when``
mode=sample) makes ``interpolate`` run in that mode.

* ``codes MODEL DATA --out DIR``: the code of every image of DATA (one subfolder per class, or
  one flat folder = one class) -> ``DIR/codes.npz`` (codes, labels, class names) and a t-SNE map
  coloured by class, ``DIR/tsne.png``.
* ``interpolate MODEL IMAGE --from A --to B --out FILE``: IMAGE translated with the codes on
  the straight line from A to B, side by side in one strip. A and B are each an image (its
  code), a folder (its images' codes averaged: FUNIT's K-shot class code), numbers, or
  ``seed:N`` (the code ``translate --seed N`` draws, for every image in any batch).
"""
from __future__ import annotations

import sys
from pathlib import Path


def _common(p) -> None:
    p.add_argument("model", metavar="MODEL", help="model directory or run folder")
    p.add_argument("--input", metavar="NAME",
                   help="which code input (default: the model's only code input that images give)")
    p.add_argument("--direction", help="translation direction whose encoder gives the codes (default: the first)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--quiet", action="store_true", help="print nothing when it succeeds")


def register(sub) -> None:
    c = sub.add_parser("codes", help="export a model's latent codes of a folder and plot their t-SNE per class",
                       description="Compute the code (MUNIT's style, FUNIT's class code, MIXGAN's z) of every image "
                       "of DATA and write DIR/codes.npz (arrays codes N×D, labels N, class_names) and DIR/tsne.png, a "
                       "t-SNE map with one colour per class. DATA holds one subfolder of images per class, or "
                       "images (one class). Unreadable images are skipped and counted.")
    _common(c)
    c.add_argument("data", metavar="DATA", help="folder of class subfolders, or of images")
    c.add_argument("--out", "-o", required=True, help="output folder")
    c.add_argument("--perplexity", type=float, default=30.0,
                   help="t-SNE perplexity (default 30; lowered below N/3 for few codes)")
    c.add_argument("--tsne-seed", "--seed", dest="tsne_seed", type=int, default=0,
                   help="seed of the t-SNE layout (default 0; --seed is the older name)")
    c.add_argument("--no-plot", action="store_true", help="write codes.npz only")
    c.set_defaults(func=run_codes)

    i = sub.add_parser("interpolate", help="translate an image along the line between two codes (a strip)",
                       description="Translate IMAGE with STEPS codes evenly spaced from A to B (ends included) and "
                       "write them side by side, left = A, to FILE. A and B are each an image file (its code), a "
                       "folder (its images' codes averaged, e.g. K images of a class), numbers (X,X,...), or "
                       "seed:N (the code that 'translate --seed N' draws).")
    _common(i)
    i.add_argument("image", metavar="IMAGE", help="the image to translate")
    i.add_argument("--from", dest="a", required=True, metavar="A", help="first code: image, folder, numbers or seed:N")
    i.add_argument("--to", dest="b", required=True, metavar="B", help="last code: image, folder, numbers or seed:N")
    i.add_argument("--steps", type=int, default=8, help="codes along the line, ends included (default 8)")
    i.add_argument("--size", type=int, help="translate at this longer side (the strip keeps the image's size)")
    i.add_argument("--out", "-o", required=True, metavar="FILE", help="the file to write: the strip (.png, .jpg); a file, not a folder")
    i.set_defaults(func=run_interpolate)


def _setup(args, overrides, command: str):
    import styleforge

    from ..errors import ConfigError

    if overrides:
        raise ConfigError(f"{command} takes no config overrides: {' '.join(overrides)}")
    pipe = styleforge.load(args.model, device=args.device)
    return pipe, code_input(pipe, args.input), _direction(pipe, args.direction)


def code_input(pipe, name: str | None):
    """The code input ``name``, or the only one an image can give; a one-line error otherwise."""
    from ..errors import ConfigError

    codes = [i for i in pipe.inputs if i.kind == "code" and i.encoder]
    method = pipe.method.method_name
    if name is not None:
        inp = pipe.input(name)
        if inp not in codes:
            raise ConfigError(f"--input {name}: not a code of {method} that images give"
                              f" (those: {', '.join(i.name for i in codes) or 'none'})")
        return inp
    if not codes:
        raise ConfigError(f"{method} has no latent code that images give (no code input with an encoder; "
                          "MUNIT, FUNIT and MIXGAN have one)")
    if len(codes) > 1:
        raise ConfigError(f"{method} has several codes ({', '.join(i.name for i in codes)}): choose one with --input")
    return codes[0]


def _direction(pipe, direction):
    from ..errors import ConfigError

    if direction is None:
        return None
    if direction not in map(str, pipe.directions):
        raise ConfigError(f"--direction must be one of {', '.join(map(str, pipe.directions))}, got {direction!r}")
    return direction


def class_files(data: Path) -> tuple[list[str], list[list[Path]], int]:
    """(class names, readable files per class, unreadable count) of a class-folder root or a flat
    folder (one class named after it)."""
    from ..data.images import list_images
    from ..errors import DataError
    from .inputs import readable

    if not data.is_dir():
        raise DataError(f"DATA: not a folder: {data}")
    subdirs = sorted(d for d in data.iterdir() if d.is_dir() and not d.name.startswith("."))
    groups = [(d.name, list_images(d)) for d in subdirs] or [(data.name, list_images(data))]
    names, files, bad = [], [], 0
    for name, fs in groups:
        good = readable(fs, "DATA", require=False)
        bad += len(fs) - len(good)
        if good:
            names.append(name)
            files.append(good)
    if not names:
        raise DataError(f"DATA: no readable images in {data}" + (" or its subfolders" if subdirs else ""))
    return names, files, bad


def run_codes(args, overrides) -> int:
    import numpy as np

    from ..errors import ConfigError
    from ..metrics.codes import save_codes, tsne_plot
    from .inputs import output_folder

    output_folder(args.out, "codes")
    out = Path(args.out)
    targets = [out / "codes.npz"] + ([] if args.no_plot else [out / "tsne.png"])
    there = [p for p in targets if p.exists()]
    if there and not args.overwrite:
        raise ConfigError(f"{there[0]} exists; use --overwrite to replace it")
    if args.perplexity <= 0:
        raise ConfigError(f"--perplexity must be > 0, got {args.perplexity}")
    pipe, inp, direction = _setup(args, overrides, "codes")
    names, files, bad = class_files(Path(args.data))
    codes, labels = [], []
    for k, fs in enumerate(files):  # one image at a time (sizes differ), codes kept on the CPU
        codes.append(pipe.encode_images(inp.name, fs, direction, "DATA").cpu().numpy())
        labels += [k] * len(fs)
    codes = np.concatenate(codes)
    if not args.no_plot and len(codes) < 3:
        raise ConfigError(f"t-SNE needs at least 3 codes, DATA gave {len(codes)}; use --no-plot")
    save_codes(targets[0], codes, np.asarray(labels), names)
    plot = None
    if not args.no_plot:
        tsne_plot(targets[1], codes, labels, names, seed=args.tsne_seed, perplexity=args.perplexity)
        plot = targets[1]
    if not args.quiet:
        print(f"codes: {len(codes)} {inp.name} code(s) of {len(names)} class(es) -> {targets[0]}"
              + (f"; t-SNE -> {plot}" if plot else "") + (f"; skipped {bad} unreadable" if bad else ""))
    return 0


def code_value(pipe, inp, spec: str, direction, flag: str):
    """A code (1×D tensor) from what a user typed for ``flag``: seed:N, numbers, an image, a folder."""
    import torch

    from ..data.images import list_images
    from ..errors import ConfigError
    from ..methods.base import Input
    from ..pipeline import check_value
    from .inputs import readable

    size = int(inp.size or 0)
    if spec.startswith("seed:"):
        if not inp.drawn:
            raise ConfigError(f"{flag} {spec}: {inp.name} is not drawn from a seed; give images or numbers")
        return pipe.draw_code(inp, 1, check_value(Input("seed", "seed"), spec[5:], flag)).cpu()
    path = Path(spec)
    if path.is_dir():
        files = readable(list_images(path), flag)
        return pipe.encode_images(inp.name, files, direction, flag).mean(0, keepdim=True).cpu()
    if path.exists():
        return pipe.encode_images(inp.name, [path], direction, flag).cpu()
    nums = check_value(Input(inp.name, "floats"), spec, flag)
    if len(nums) != size:
        raise ConfigError(f"{flag}: {inp.name} holds {size} numbers, got {len(nums)} (or no such file: {spec})")
    return torch.tensor(nums).reshape(1, -1)


def run_interpolate(args, overrides) -> int:
    from PIL import Image

    from ..errors import ConfigError
    from ..metrics.codes import interpolate_codes
    from ..utils.images import save_image_atomic

    from .inputs import output_file

    out = output_file(args.out, "interpolate", "strip.png")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} exists; use --overwrite to replace it")
    if args.steps < 2:
        raise ConfigError(f"--steps must be at least 2, got {args.steps}")
    pipe, inp, direction = _setup(args, overrides, "interpolate")
    za = code_value(pipe, inp, args.a, direction, "--from")
    zb = code_value(pipe, inp, args.b, direction, "--to")
    from ..data.images import load_rgb

    image = load_rgb(args.image)  # read once for every step
    extra = {"direction": direction} if direction else {}
    frames = [pipe.run(image, size=args.size, **{inp.name: z[None]}, **extra)[0]["image"]
              for z in interpolate_codes(za[0], zb[0], args.steps)]
    w, h = frames[0].size
    strip = Image.new("RGB", (w * len(frames), h))
    for k, f in enumerate(frames):
        strip.paste(f, (k * w, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(strip, out)
    if not args.quiet:
        print(f"interpolate: {args.steps} {inp.name} codes from {args.a} to {args.b} -> {out}")
    return 0
