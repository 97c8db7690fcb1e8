"""The ``styleforge`` command: thin; it parses, calls the library, prints.

Every ``StyleforgeError`` becomes one line ``error: ...`` on stderr and a non-zero exit
(2: bad input, 3: training stopped); Ctrl-C exits 130 (a training run saves a checkpoint first).
Set ``STYLEFORGE_DEBUG=1`` to see tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import glob
import inspect
import os
import sys
from pathlib import Path

from .errors import ConfigError, StyleforgeError

EPILOG_OVERRIDES = ("Any config value can be overridden: key=value (e.g. train.lr=1e-4 "
                    "model.ngf=32) or --key value (e.g. --train.steps 500).")


def _split_overrides(unknown: list[str]) -> list[str]:
    """``--train.lr 1e-4`` / ``--train.lr=1e-4`` / ``train.lr=1e-4`` -> ``train.lr=1e-4``."""
    out, i = [], 0
    while i < len(unknown):
        tok = unknown[i]
        if tok.startswith("--") and "." in tok.split("=")[0]:
            key = tok[2:]
            if "=" in key:
                out.append(key)
            elif i + 1 < len(unknown):
                out.append(f"{key}={unknown[i + 1]}")
                i += 1
            else:
                raise ConfigError(f"option {tok} needs a value")
        elif "=" in tok and not tok.startswith("-"):
            out.append(tok)
        else:
            raise ConfigError(f"unrecognised argument {tok!r} (overrides look like train.lr=1e-4)")
        i += 1
    return out


def cmd_train(args, overrides) -> int:
    from . import config as C
    from .training.trainer import Interrupted, Trainer, steps_summary

    if args.resume:
        run = Path(args.resume)
        if not (run / "config.yaml").is_file():
            raise ConfigError(f"cannot resume {run}: no config.yaml (is it a styleforge run folder?)")
        cfg = C.resolve(config_file=run / "config.yaml", overrides=overrides)
        out = run
    else:
        if not (args.preset or args.config):
            raise ConfigError("give --preset NAME or --config FILE (see 'styleforge presets')")
        cfg = C.resolve(args.preset, args.config, overrides)
        if args.data:
            cfg["data"]["root"] = str(args.data)
        if args.device:
            cfg["train"]["device"] = args.device
        out = Path(args.out) if args.out else Path("runs") / (args.preset or Path(args.config).stem).replace("/", "-")
    if args.dry_run:
        from .registry import build_method

        print(C.dump(cfg), end="")
        method = build_method(cfg["method"], **cfg["model"])
        print("# parameters")
        for name, n in method.parameter_counts().items():
            print(f"#   {name}: {n:,}")
        print(f"#   total: {sum(p.numel() for p in method.parameters()):,}")
        print(f"# schedule: {steps_summary(cfg)}; run folder: {out}")
        return 0
    trainer = Trainer(cfg, out, resume=bool(args.resume))
    try:
        model_dir = trainer.fit()
    except Interrupted as e:
        print(f"\ninterrupted at step {e.step}; checkpoint saved: {e.checkpoint}\n"
              f"resume with: styleforge train --resume {out}", file=sys.stderr)
        return 130
    print(f"model: {model_dir}")
    return 0


def _collect_inputs(items: list[str]) -> list[Path]:
    from .data.images import IMG_EXTENSIONS, list_images

    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += list_images(p)
        elif p.is_file():
            files.append(p)
        elif any(c in item for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            matches = [m for m in matches if m.is_file() and m.suffix.lower() in IMG_EXTENSIONS]
            if not matches:
                raise ConfigError(f"no images match {item}")
            files += matches
        else:
            raise ConfigError(f"input not found: {item}")
    return files


def output_name(src: Path) -> str:
    from .data.images import IMG_EXTENSIONS

    writable = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
    ext = src.suffix.lower()
    return src.name if ext in writable and ext in IMG_EXTENSIONS else src.stem + ".png"


def cmd_translate(args, overrides) -> int:
    from .batch import BatchOptions, load_translator, translate_files

    if overrides:
        raise ConfigError(f"translate takes no config overrides: {' '.join(overrides)}")
    files = _collect_inputs(args.inputs)
    names = [output_name(f) for f in files]
    from collections import Counter

    from .batch import heatmap_name

    targets = names + ([heatmap_name(n) for n in names] if args.heatmaps else [])
    dupes = {n for n, k in Counter(targets).items() if k > 1}
    if dupes:
        raise ConfigError(f"several inputs would write the same output name: {sorted(dupes)[:3]}")
    translator = load_translator(args.model, device=args.device, runtime=args.runtime)
    direction = translator.method.check_direction(args.direction)
    single = len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    opts = BatchOptions(direction=direction, batch_size=args.batch_size, block_size=args.block_size,
                        workers=args.workers,
                        size=args.size, resume=args.resume, overwrite=args.overwrite, amp=args.bf16,
                        progress=not args.quiet, error_on_single_bad=single, heatmaps=args.heatmaps)
    if args.heatmaps and not getattr(getattr(translator, "method", None), "has_heatmaps", False):
        raise ConfigError(f"--heatmaps: {args.model} has no attention heatmaps (U-GAT-IT and Photo2Cartoon "
                          "models have them; exported ONNX/TorchScript files do not)")
    # few-shot group models: the group's branch
    kw = {} if args.group is None else {"group": translator.check_group(args.group)}
    result = translate_files(translator, files, names, args.out, opts, **kw)
    if int(os.environ.get("RANK", "0")) == 0:
        print(result.summary(direction, args.out))
    return 0 if result.translated or result.resumed or not files else 1


def cmd_import(args, overrides) -> int:
    from .checkpoint import save_model
    from .registry import get_importer

    importer = get_importer(args.method)
    opts = {k: v for k, v in (("reverse", args.reverse), ("direction", args.direction)) if v}
    takes = inspect.signature(importer).parameters
    for k in opts:
        if k not in takes:
            raise ConfigError(f"import {args.method} takes no --{k}")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out} exists and is not empty; use --overwrite")
    method = importer(args.file, **opts)
    save_model(out, method)
    print(f"imported {args.method} from {args.file} -> {out} (directions: {', '.join(method.directions)})")
    return 0


def cmd_demo(args, overrides) -> int:
    from .demo import run_demo

    path = run_demo(out=Path(args.out), data=args.data, overrides=overrides, device=args.device)
    print(f"results: {path}")
    return 0


def cmd_presets(args, overrides) -> int:
    from . import config as C

    for name in C.list_presets():
        cfg = C.resolve(name)
        print(f"{name:24s} {cfg.get('description', cfg['method'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="styleforge", description="Train, apply, evaluate and ship "
                                "image style-transfer and image-to-image translation models.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"styleforge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a preset or config file",
                       description="Train a model. " + EPILOG_OVERRIDES, epilog=EPILOG_OVERRIDES)
    t.add_argument("--preset", help="preset name (see 'styleforge presets'), e.g. cyclegan")
    t.add_argument("--config", help="a YAML config file instead of a preset")
    t.add_argument("--data", help="dataset folder (e.g. with trainA/ trainB/ testA/ testB/)")
    t.add_argument("--out", help="run folder (default runs/PRESET)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and parameter counts, then exit")
    t.set_defaults(func=cmd_train)

    tr = sub.add_parser("translate", help="translate images with a trained model",
                        description="Translate one image, a folder or a glob into an output folder, "
                        "keeping file names and each image's size. Streams large folders (decoding "
                        "workers, batches of equal-size images); --resume continues an interrupted run; "
                        "under torchrun each process takes a disjoint share.")
    tr.add_argument("model", help="model directory (config.json + model.safetensors), or a file "
                    "from 'styleforge export' (see --runtime)")
    tr.add_argument("inputs", nargs="+", help="image files, folders or globs")
    tr.add_argument("--out", "-o", required=True, help="output folder")
    tr.add_argument("--direction", help="AtoB or BtoA (default: the model's first)")
    tr.add_argument("--group", help="few-shot models: the group of people whose branch to use "
                    "(default: the base group)")
    tr.add_argument("--size", type=int, help="resize the longer side to this before translating "
                    "(the output keeps the original size)")
    tr.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    tr.add_argument("--resume", action="store_true", help="keep the outputs an interrupted run finished "
                    "and translate the rest")
    tr.add_argument("--batch-size", type=int, help="images of equal size per forward pass (default 1 on CPU, "
                    "where batching measured no faster, 8 on GPU)")
    tr.add_argument("--block-size", type=int, help="consecutive files read together and grouped by size "
                    "(default 4 × batch size)")
    tr.add_argument("--workers", type=int, help="image-decoding processes (default min(4, CPUs))")
    tr.add_argument("--bf16", action="store_true", help="run the network under bf16 autocast (faster on "
                    "CPUs with AVX-512 BF16/AMX and on GPUs; outputs differ by bf16 rounding)")
    tr.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    tr.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx", "torchscript"),
                    help="torch: a model directory; onnx / torchscript: a file from 'styleforge export' "
                    "(default auto: by what MODEL is)")
    tr.add_argument("--heatmaps", action="store_true", help="U-GAT-IT / Photo2Cartoon: also write the "
                    "generator's attention map (CAM) beside each output as NAME_heatmap.EXT")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_translate)

    im = sub.add_parser("import", help="convert an authors' checkpoint into a styleforge model",
                        description="Convert the authors' released weights into a model directory.")
    im.add_argument("method", help="cyclegan, pix2pix, ugatit, ...")
    im.add_argument("file", help="the checkpoint (e.g. latest_net_G_A.pth, horse2zebra.pth)")
    im.add_argument("out", help="model directory to write")
    im.add_argument("--reverse", help="cyclegan: the B->A generator (latest_net_G_B.pth)")
    im.add_argument("--direction", choices=("AtoB", "BtoA"),
                    help="pix2pix: the --direction it was trained with (facades_label2photo: BtoA)")
    im.add_argument("--overwrite", action="store_true")
    im.set_defaults(func=cmd_import)

    d = sub.add_parser("demo", help="train a small CycleGAN on the bundled sample and write a results page",
                       description="The README's main job: about 5 minutes on 2 CPU cores. " + EPILOG_OVERRIDES)
    d.add_argument("--out", default="results/demo", help="results folder (default results/demo)")
    d.add_argument("--data", help="unpaired dataset to use instead of the bundled horse2zebra sample")
    d.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    d.set_defaults(func=cmd_demo)

    ps = sub.add_parser("presets", help="list the presets")
    ps.set_defaults(func=cmd_presets)

    # the other commands (evaluate, export, serve, cartoonize, ...) live one per module
    import importlib
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        overrides = _split_overrides(unknown)
        return args.func(args, overrides)
    except StyleforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permission denied, ...
        if os.environ.get("STYLEFORGE_DEBUG"):
            raise
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as e:  # a bug: say so in one line, traceback on request
        if os.environ.get("STYLEFORGE_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e} (set STYLEFORGE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
