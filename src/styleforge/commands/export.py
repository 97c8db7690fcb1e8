"""``styleforge export MODEL_DIR [--format onnx|torchscript] [-o FILE] [--direction D] [--overwrite]
[--alpha 0.5 ...]``: the model's non-tensor inputs (numbers, choices, flags) are fixed in the file
by flags built from its declaration, as translate's; its tensor inputs (style images, K images,
masks, codes) become the graph's inputs."""
from __future__ import annotations

import argparse

DESCRIPTION = ("Write one direction of a model as an ONNX or TorchScript file (batch, height and width "
               "dynamic where the network allows; networks with a fixed-size fully-connected layer are "
               "exported at their size). The image and every tensor input the model declares (style image, "
               "K images, mask, code) are the file's inputs; numbers, choices and flags are fixed at export "
               "(their flags: 'styleforge export MODEL --help'). The file is checked against PyTorch before "
               "it is kept. Run it with 'styleforge translate FILE ...'.")


def _options(p) -> None:
    p.add_argument("--format", "-f", default="onnx", help="onnx (default) or torchscript")
    p.add_argument("--out", "-o", metavar="FILE", help="the file to write, not a folder (default: "
                   "MODEL_DIR/<method>-<direction>.onnx|.pt)")
    p.add_argument("--no-check", action="store_true", help="skip running the file once against PyTorch")
    p.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    p.add_argument("--quiet", action="store_true", help="print nothing when it succeeds")
    p.add_argument("--int8", action="store_true", help="write an int8 ONNX file (static quantization: int8 "
                   "per-channel weights, ranges measured on --calibrate DIR; instance norm and the output layer stay "
                   "float); default name MODEL_DIR/<method>-<direction>.int8.onnx; run it with --runtime int8")
    p.add_argument("--calibrate", metavar="DIR", help="with --int8: a folder of your images (a few dozen like "
                   "those you will translate) to measure the activation ranges on")
    p.add_argument("--min-psnr", type=float, default=None, metavar="DB", help="with --int8: refuse a file whose "
                   "output departs from fp32 more than this, as PSNR on the calibration images (default 35)")
    p.add_argument("--with", dest="include", action="append", default=[], metavar="INPUT",
                   help="also make this optional image input a graph input (e.g. --with mask)")


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model's generator to ONNX or TorchScript", description=DESCRIPTION,
                       usage="styleforge export MODEL [--format onnx|torchscript] [-o FILE] [--overwrite] "
                       "[--int8 --calibrate DIR] [model inputs]\n       (every option: styleforge export MODEL --help)")
    p.add_argument("model", help="model directory (config.json + model.safetensors) or run folder")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options, and the model's inputs to fix")
    p.set_defaults(func=run)


def _parser(pipe, prog: str):
    """(parser, {input name: flag}, the inputs fixed in the file): the command's options and a
    flag per number, choice and flag the model declares (``commands.add_declared_flags``, as
    translate's); tensor inputs are the file's inputs, a seed is no input of a traced graph."""
    from .inputs import ModelParser, add_declared_flags, listed_flags

    parser = ModelParser(prog=prog, description=DESCRIPTION)
    _options(parser)
    group = parser.add_argument_group(f"inputs of this {pipe.method.method_name} model fixed in the file")
    fixable = [i for i in pipe.inputs[1:] if not i.is_tensor and i.kind != "seed" and i.name in pipe._own]
    labels = add_declared_flags(group, fixable, pipe.inputs)
    parser.model_name = pipe.method.method_name
    parser.model_flags = listed_flags(group)
    return parser, labels, fixable


def run(args, overrides) -> int:
    from ..checkpoint import load_model, resolve_model_dir
    from ..errors import ConfigError
    from ..export import export_model
    from ..pipeline import Pipeline

    if overrides:
        raise ConfigError(f"export takes no config overrides: {' '.join(overrides)}")
    from ..pull import resolve

    model_dir = resolve_model_dir(resolve(args.model))  # a model's name too
    method = load_model(model_dir)
    parser, labels, fixable = _parser(Pipeline(method, device="cpu"), f"styleforge export {args.model}")
    if "-h" in args.rest or "--help" in args.rest:
        parser.print_help()
        return 0
    opts = parser.parse_args(args.rest)
    from ..pipeline import check_value

    values = {}
    for inp in fixable:
        v = getattr(opts, f"in_{inp.name}")
        if v is not None:
            values[inp.name] = check_value(inp, v, labels[inp.name])
    direction = values.pop("direction", None)
    if opts.int8 or opts.calibrate or opts.min_psnr is not None:
        return _run_int8(args, opts, method, direction, values)
    if opts.out:
        from .inputs import output_file

        opts.out = output_file(opts.out, "export", f"{method.method_name}.{'onnx' if opts.format == 'onnx' else 'pt'}")
    r = export_model(method, opts.out or model_dir / f"{method.method_name}-"
                     f"{method.check_direction(direction)}{'.onnx' if opts.format == 'onnx' else '.pt'}",
                     opts.format, direction, check=not opts.no_check, overwrite=opts.overwrite,
                     include=tuple(opts.include), **values)
    if opts.quiet:
        return 0
    shape = "N×C×H×W, H and W free" if r.dynamic else f"N×C×{r.input_size}×{r.input_size}"
    check = "" if opts.no_check else f"; max |Δ| vs PyTorch {r.max_abs_diff:.1e}"
    inputs = f"; inputs: {', '.join(r.inputs)}" if len(r.inputs) > 1 else ""
    print(f"exported {r.direction} as {r.format}: {r.path} ({shape}{check}{inputs})")
    if r.note:
        print(f"note: {r.note}")
    return 0


def _run_int8(args, opts, method, direction, values) -> int:
    from ..errors import ConfigError
    from ..export import export_int8

    if not opts.int8:
        raise ConfigError("--calibrate and --min-psnr go with --int8")
    if not opts.calibrate:
        raise ConfigError("--int8 needs --calibrate DIR: a folder of your images to measure the activation "
                          "ranges on (a few dozen like those you will translate)")
    if opts.format != "onnx":
        raise ConfigError(f"--int8 writes ONNX (run by ONNX Runtime); got --format {opts.format}")
    if opts.out:
        from .inputs import output_file

        opts.out = output_file(opts.out, "export", f"{method.method_name}.int8.onnx")
    r = export_int8(args.model, opts.calibrate, opts.out, direction, overwrite=opts.overwrite,
                    min_psnr=opts.min_psnr, include=tuple(opts.include), **values)
    if r.note:
        import sys

        print(r.note, file=sys.stderr)
    if not opts.quiet:
        print(f"exported {r.direction} as int8 onnx: {r.path} (PSNR {r.psnr:.1f} dB, max |Δ| {r.max_abs_diff:.2g} "
              "vs fp32 on the calibration images)")
    return 0
