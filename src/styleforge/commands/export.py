"""``styleforge export MODEL_DIR --format onnx|torchscript [-o FILE] [--direction D] [--overwrite]``."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model's generator to ONNX or TorchScript",
                       description="Write one direction of a model as an ONNX or TorchScript file "
                       "(batch, height and width dynamic where the network allows; networks with a "
                       "fixed-size fully-connected layer are exported at their size). The file is "
                       "checked against PyTorch before it is kept. Run it with "
                       "'styleforge translate FILE ... --runtime onnx|torchscript'.")
    p.add_argument("model", help="model directory (config.json + model.safetensors) or run folder")
    p.add_argument("--format", "-f", default="onnx", help="onnx (default) or torchscript")
    p.add_argument("--out", "-o", help="file to write (default: MODEL_DIR/<method>-<direction>.onnx|.pt)")
    p.add_argument("--direction", help="AtoB or BtoA (default: the model's first)")
    p.add_argument("--no-check", action="store_true", help="skip running the file once against PyTorch")
    p.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    p.add_argument("--quiet", action="store_true", help="print nothing when it succeeds")
    p.set_defaults(func=run)


def run(args, overrides) -> int:
    from ..errors import ConfigError
    from ..export import export_model

    if overrides:
        raise ConfigError(f"export takes no config overrides: {' '.join(overrides)}")
    r = export_model(args.model, args.out, args.format, args.direction, check=not args.no_check,
                     overwrite=args.overwrite)
    if args.quiet:
        return 0
    shape = "N×C×H×W, H and W free" if r.dynamic else f"N×C×{r.input_size}×{r.input_size}"
    check = "" if args.no_check else f"; max |Δ| vs PyTorch {r.max_abs_diff:.1e}"
    print(f"exported {r.direction} as {r.format}: {r.path} ({shape}{check})")
    if r.note:
        print(f"note: {r.note}")
    return 0
