"""Export a model directory's generator to ONNX or TorchScript (the file writer; exported files
are run by :mod:`styleforge.runtime`).

``export_model(MODEL_DIR, "model.onnx", "onnx", direction="AtoB")`` writes one file per
direction: the network that ``method.translate(x, direction)`` runs, traced on an example input,
as a function N×C×H×W in [-1, 1] -> N×C'×H×W in [-1, 1]. What a method exports is its
``export_module(direction)`` when it has one (Pix2Pix: the U-Net without the dropout noise), else
a module that calls ``translate`` and keeps the image (first) output. That covers every
registered method without per-method code here.

Sizes: batch, height and width are dynamic axes, and the file is checked at a second size
before it is kept; H and W must be multiples of the method's ``size_multiple`` (the runtime
pads). A method with a fixed input size (``method.fixed_size``: U-GAT-IT full and Photo2Cartoon
full, whose fully-connected layer sees the whole feature map) is exported at that size, with
only the batch dynamic, and the export says so in one line (:attr:`ExportResult.note`).

Each file carries a small JSON description (method, direction, sizes, the method's config): the
ONNX file in its ``metadata_props`` under ``styleforge``, the TorchScript file as the extra file
``styleforge.json``. Running a file is :mod:`styleforge.runtime`'s (below the pipeline):
``styleforge.load(path, runtime="onnx")`` wraps it in the same
:class:`~styleforge.pipeline.Pipeline` as a model directory (PIL images, paths and tensors of any
size), running the file through onnxruntime or ``torch.jit``.

Files are written atomically (temporary name in the target folder, then rename).
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .checkpoint import load_model, resolve_model_dir
from .utils.atomic import atomic_write_bytes
from .utils.seed import seeded_generator
from .errors import CheckpointError, ConfigError, first_line
from .methods.base import Input
from .pipeline import declared_inputs, declared_outputs, min_side
from .runtime import (EXPORT_FORMAT, META_FILE, META_KEY, RUNTIMES, load_exported, onnx_runner, quiet_warnings,
                      read_metadata, torchscript_runner)

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17  # onnxruntime >= 1.14 runs it; InstanceNormalization, Resize, ConvTranspose as used here
TRACE_SIDE = 64  # example input side for dynamic networks (rounded up to size_multiple)


@dataclass
class ExportResult:
    path: Path
    format: str
    direction: str
    dynamic: bool          # height and width free (multiples of size_multiple)
    input_size: int        # the traced example's side
    max_abs_diff: float    # exported file vs PyTorch on a check input
    note: str | None = None  # one line on a limitation (fixed size), None if none
    inputs: tuple = ("image",)  # the graph's inputs, in order


def graph_inputs(method, include=(), values=None) -> list[Input]:
    """The declared inputs that become graph inputs: the image, every required tensor input
    (a style image, K class images), every code drawn at random (outside the graph), and the
    optional tensor inputs named in ``include`` (a mask; a code that replaces another input).
    Numbers, choices and flags are fixed at export (``values``: those fixed; missing ones at
    their defaults); an input that they leave unused (``used_when``: MIXGAN's ``z`` outside
    ``mode=sample``) is no graph input, and naming it in ``include`` is an error."""
    from .pipeline import input_used

    declared = declared_inputs(method)
    names = {i.name for i in declared}
    bad = [n for n in include if n not in names or not next(i for i in declared if i.name == n).is_tensor]
    if bad:
        tensors = [i.name for i in declared[1:] if i.is_tensor]
        raise ConfigError(f"--with {bad[0]}: not an image or code input of {method.method_name}"
                          f" (its tensor inputs: {', '.join(tensors) or 'none'})")
    values = values or {}
    for i in declared:
        if i.name in include and not input_used(i, declared, values):
            name, want = i.used_when
            got = values.get(name, next(j.default for j in declared if j.name == name))
            raise ConfigError(f"--with {i.name}: {method.method_name} uses it only with --{name.replace('_', '-')} "
                              f"{want}, and the file is exported with {name}={got}")
    return [i for i in declared if i.is_tensor and input_used(i, declared, values)
            and (i.kind == "image" or i.drawn or i.required or i.name in include)]


class TranslateModule(nn.Module):
    """``method.translate(x, **inputs)`` as a module ``forward(image, *tensor_inputs)`` with only
    the inference networks that run registered (``nets``: so a traced file holds neither
    discriminators nor the other direction's generator); the non-tensor inputs (``options``)
    are fixed; keeps the image output of methods that return several (U-GAT-IT's heatmap)."""

    def __init__(self, method, direction: str, nets=None, include=(), **options):
        super().__init__()
        names = method.inference_modules if nets is None else nets
        self.nets = nn.ModuleDict({n: getattr(method, n) for n in names})
        object.__setattr__(self, "_method", method)  # not a submodule
        self.direction, self.options, self.include = direction, options, tuple(include)
        self.tensor_inputs = [i for i in graph_inputs(method, include, options)[1:]]

    def forward(self, x, *tensors):
        kw = dict(self.options)
        for inp, t in zip(self.tensor_inputs, tensors):
            kw[inp.name] = [t] if inp.multiple else t  # a multiple input exports one image
        y = self._method.translate(x, direction=self.direction, **kw)
        if isinstance(y, dict):
            return y["image"]
        return y[0] if isinstance(y, (tuple, list)) else y


def export_module(method, direction: str, example: torch.Tensor | None = None, extra=(), include=(),
                  **options) -> nn.Module:
    """The module to trace: the method's own ``export_module(direction)`` when it has one and
    no option is set (Pix2Pix: the U-Net without the dropout noise), else a
    :class:`TranslateModule`; given an ``example``, one run of it finds the networks used."""
    own = None if options else method.export_module(direction)
    if own is not None:
        return own
    module = TranslateModule(method, direction, None, include, **options)
    if example is not None:
        module = TranslateModule(method, direction, networks_used(module, example, extra), include, **options)
    return module


def networks_used(module: "TranslateModule", example, extra=()) -> list[str]:
    """The inference modules any of whose layers run in one call of ``module``."""
    method = module._method
    used: set[str] = set()
    handles = [m.register_forward_pre_hook(lambda *_, n=name: used.add(n))
               for name in method.inference_modules for m in getattr(method, name).modules()]
    try:
        with torch.no_grad():
            module(example, *extra)
    finally:
        for h in handles:
            h.remove()
    return [n for n in method.inference_modules if n in used]


def _sizes(method) -> tuple[int, int | None]:
    """(traced side, second side checked) for a method."""
    if method.fixed_size:
        return int(method.fixed_size), None
    m = max(1, int(method.size_multiple))
    side = m * math.ceil(TRACE_SIDE / m)
    return side, side + m  # a different, non-square-free size: side × (side + m) is checked


def _example(channels: int, h: int, w: int, seed: int = 0, n: int = 1) -> torch.Tensor:
    g = seeded_generator(seed)
    return torch.rand(n, channels, h, w, generator=g) * 2 - 1


def _example_inputs(method, inputs: list[Input], h: int, w: int, seed: int) -> list[torch.Tensor]:
    """An example tensor for each tensor input after the image (batch 1)."""
    g = seeded_generator(seed + 100)
    out = []
    for inp in inputs:
        if inp.kind == "reference":
            side = inp.size if isinstance(inp.size, int) else TRACE_SIDE
            side = side if isinstance(side, int) and side <= TRACE_SIDE else TRACE_SIDE
            out.append(torch.rand(1, 3, side, side + (seed % 2) * 4, generator=g) * 2 - 1)
        elif inp.kind == "images":
            side = int(inp.size) if isinstance(inp.size, int) else TRACE_SIDE
            k = 2 + seed % 2
            out.append(torch.rand(k, 3, side, side, generator=g) * 2 - 1)
        elif inp.kind == "mask":
            out.append((torch.rand(1, inp.channels, h, w, generator=g) > 0.5).float())
        elif inp.kind == "code":
            out.append(torch.randn(1, int(inp.size or 1), generator=g))
    return out


def _dynamic_axes(inputs: list[Input], dynamic: bool) -> dict:
    axes = {}
    for inp in inputs:
        if inp.kind in ("image", "mask"):
            axes[inp.name] = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
        elif inp.kind == "reference":
            axes[inp.name] = {2: f"{inp.name}_height", 3: f"{inp.name}_width"}
        elif inp.kind == "images":
            axes[inp.name] = {0: f"{inp.name}_count"}
        elif inp.kind == "code":
            axes[inp.name] = {0: "batch"}
    axes["output"] = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    return axes


def _metadata(method, direction, fmt, dynamic, side, channels, inputs, fixed: dict) -> dict:
    from . import __version__
    from .checkpoint import json_ready, shareable_config

    declared = [asdict(i) for i in declared_inputs(method)]
    return {"format": EXPORT_FORMAT, "format_version": 2, "export_format": fmt,
            "method": method.method_name, "direction": direction, "dynamic": dynamic,
            "size_multiple": int(method.size_multiple),
            "fixed_size": int(method.fixed_size) if method.fixed_size else None,
            "max_side": getattr(method, "max_side", None), "min_side": min_side(method),
            "input_size": side, "in_channels": channels, "opset": OPSET if fmt == "onnx" else None,
            "graph_inputs": [i.name for i in inputs], "fixed_inputs": json_ready(fixed),
            "inputs": json_ready(declared),
            "outputs": [json_ready(asdict(o)) for o in declared_outputs(method)][:1],
            "config": shareable_config(method.config), "styleforge_version": __version__}


def _onnx_bytes(module, examples, inputs, dynamic: bool, meta: dict) -> bytes:
    import onnx

    buf = io.BytesIO()
    with quiet_warnings():  # the TorchScript-based exporter: no onnxscript needed
        torch.onnx.export(module, tuple(examples), buf, dynamo=False, opset_version=OPSET,
                          input_names=[i.name for i in inputs], output_names=["output"],
                          dynamic_axes=_dynamic_axes(inputs, dynamic), do_constant_folding=False)
    proto = onnx.load_from_string(buf.getvalue())
    _name_output_axes(proto, module, examples, dynamic)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "styleforge"
    return proto.SerializeToString()


def _name_output_axes(proto, module, examples, dynamic: bool) -> None:
    """The output's declared shape as the file computes it: ``batch``, the channels, then
    ``height``/``width`` (dynamic) or the fixed numbers. Without constant folding the exporter's
    own shape inference loses the spatial sizes after a padding and names them by guesswork (a
    MIXGAN file's height came out as "batch")."""
    with torch.no_grad():
        y = module(*examples)
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    if y.ndim != 4 or len(dims) != 4:
        return
    names = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    for k, d in enumerate(dims):
        if k in names:
            d.dim_param = names[k]
        else:
            d.dim_value = int(y.shape[k])


def _torchscript_bytes(module, examples, meta: dict) -> bytes:
    with quiet_warnings():
        traced = torch.jit.trace(module, tuple(examples), check_trace=False)
    buf = io.BytesIO()
    with quiet_warnings():  # torch.jit.save's deprecation notice
        torch.jit.save(traced, buf, _extra_files={META_FILE: json.dumps(meta)})
    return buf.getvalue()


def _fixed_values(method, direction: str, values: dict) -> dict:
    """The non-tensor inputs fixed in the file: given ``values`` checked, else their defaults."""
    from .pipeline import check_value

    fixed = {}
    declared = {i.name: i for i in declared_inputs(method)}
    for name in values:
        if name not in declared or name == "image":
            raise ConfigError(f"{method.method_name} takes no input {name!r}")
        if declared[name].is_tensor:
            raise ConfigError(f"{name} is a graph input of the exported file: it is given when the file runs")
    for inp in declared.values():
        if inp.is_tensor or inp.name == "direction" or inp.kind == "seed":
            continue
        v = values.get(inp.name, inp.default)
        if v is not None:
            fixed[inp.name] = check_value(inp, v, f"--{inp.name.replace('_', '-')}")
    return fixed


def _export_target(model, direction, out, suffix: str, overwrite: bool):
    """(the method on the CPU in eval mode, its checked direction, the file to write) for
    ``model`` (a model directory, run folder, model name, or a loaded method); ``out`` None:
    ``<model dir>/<method>-<direction><suffix>``. A method with no network, a folder as ``out``
    or an existing file without ``overwrite`` is a one-line error."""
    src_dir = None
    if isinstance(model, (str, Path)):
        from .pull import resolve

        src_dir = resolve_model_dir(resolve(model))  # a name: cyclegan/horse2zebra, hf:org/name
        method = load_model(src_dir)
    else:
        method = model
    method = method.cpu().eval()
    if not getattr(method, "exportable", True):
        raise ConfigError(f"{method.method_name} optimises each image (no network to trace): it cannot be exported; "
                          "run it with 'styleforge stylize' or the Python API")
    direction = method.check_direction(direction)
    if out is None:
        if src_dir is None:
            raise ConfigError("give an output file for an in-memory model")
        out = src_dir / f"{method.method_name}-{direction}{suffix}"
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give the file to write (e.g. {out / ('model' + suffix)})")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; use --overwrite to replace it")
    return method, direction, out


def export_model(model, out=None, fmt: str = "onnx", direction: str | None = None,
                 check: bool = True, overwrite: bool = True, include=(), **values) -> ExportResult:
    """Export ``model`` (a model directory, a run directory or a loaded method) to ``out``
    (default: ``<model dir>/<method>-<direction>.onnx|.pt``). The image and every tensor input
    the method declares (style image, K images, mask, code) are the graph's inputs; other inputs
    are fixed at their ``values`` (or defaults). ``check`` runs the written file on a second
    input (a different size where the axes are dynamic) and raises if it departs from PyTorch by
    more than 1e-3. ``overwrite=False`` refuses an existing ``out``. ``include``: optional
    tensor inputs to make graph inputs too (a mask); left out, the file runs without them."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    method, direction, out = _export_target(model, direction, out, SUFFIX[fmt], overwrite)
    fixed = _fixed_values(method, direction, values)
    inputs = graph_inputs(method, include, fixed)
    channels = method.image_channels
    side, other = _sizes(method)
    dynamic = other is not None
    meta = _metadata(method, direction, fmt, dynamic, side, channels, inputs, fixed)
    example = _example(channels, side, side)
    extra = _example_inputs(method, inputs[1:], side, side, 0)
    own = method.export_module(direction) if not values and len(inputs) == 1 else None
    if own is not None:
        module = own.eval()  # the method's own graph (it fixes its options itself)
    else:
        module = export_module(method, direction, example, extra, include, **fixed).eval()
    with torch.no_grad():
        data = (_onnx_bytes(module, [example, *extra], inputs, dynamic, meta) if fmt == "onnx"
                else _torchscript_bytes(module, [example, *extra], meta))
    diff = 0.0
    if check:
        x = _example(channels, side, other or side, seed=1)
        xs = [x, *_example_inputs(method, inputs[1:], side, other or side, 1)]
        with torch.no_grad():
            ref = module(*xs)
        run = onnx_runner(data) if fmt == "onnx" else torchscript_runner(io.BytesIO(data))
        try:
            y = run(*xs)
        except Exception as e:  # a network that only looked dynamic while traced
            raise CheckpointError(f"the exported {fmt} file fails on a {tuple(x.shape)} input: "
                                  f"{first_line(e)}") from None
        diff = float((y - ref).abs().max()) if y.shape == ref.shape else math.inf
        if not diff <= 1e-3:
            raise CheckpointError(f"the exported {fmt} file departs from PyTorch by {diff:.3g} "
                                  f"on a {tuple(x.shape)} input; not written")
    atomic_write_bytes(out, data)
    note = None
    if method.fixed_size:
        note = (f"{method.method_name} has a fully-connected layer over the whole feature map: "
                f"exported at the fixed size {side}×{side} (only the batch is dynamic); "
                f"the runtime resizes inputs to it")
    return ExportResult(out, fmt, direction, dynamic, side, diff, note, tuple(i.name for i in inputs))


# ---- int8 ------------------------------------------------------------------------------------
CALIBRATION_SIDE = 256   # calibration images are brought to this square side (or the fixed size)
CHECK_IMAGES = 4         # of them, compared fp32 vs int8 for the quality bound


def calibration_images(folder, method, limit: int = 32) -> tuple[list[torch.Tensor], list[str]]:
    """The images of ``folder`` as 1×C×S×S tensors in [-1, 1] (S: :data:`CALIBRATION_SIDE`
    rounded up to the method's size multiple, or its fixed size), and one line per file skipped
    as unreadable. No folder, no image or none readable: a one-line :class:`ConfigError`."""
    from .data.images import list_images, load_rgb
    from .data.transforms import to_tensor
    from .errors import ImageLoadError

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--calibrate {folder}: not a folder (give a folder of your own images, "
                          "like the ones the model will translate)")
    files = list_images(folder, recursive=True)
    if not files:
        raise ConfigError(f"--calibrate {folder}: no images in it (png, jpg, ...); int8 ranges are "
                          "measured on your images")
    m = max(1, int(method.size_multiple))
    side = int(method.fixed_size) if method.fixed_size else m * math.ceil(CALIBRATION_SIDE / m)
    grey = method.image_channels == 1
    xs, skipped = [], []
    for f in files[:limit]:
        try:
            img = load_rgb(f)
        except ImageLoadError as e:
            skipped.append(f"skipped {first_line(e)}")
            continue
        img = img.resize((side, side), Image.BICUBIC)
        x = to_tensor(img.convert("L") if grey else img)[None]
        xs.append(x)
    if not xs:
        raise ConfigError(f"--calibrate {folder}: none of its {len(files)} image(s) could be read "
                          f"({skipped[0].removeprefix('skipped ')})")
    return xs, skipped


def _calibration_feeds(method, inputs, xs) -> list[dict]:
    """One feed per calibration image: the image, and for the other graph inputs the next
    calibration images (style / reference images, K images) or a seeded draw (codes, masks)."""
    feeds = []
    for k, x in enumerate(xs):
        feed = {"image": x}
        side = x.shape[-1]
        drawn = _example_inputs(method, inputs[1:], side, side, k)
        for j, (inp, t) in enumerate(zip(inputs[1:], drawn)):
            if inp.kind == "reference":  # another of the user's images, at the calibration side
                t = xs[(k + 1 + j) % len(xs)]
            elif inp.kind == "images":
                picks = [xs[(k + 1 + j + i) % len(xs)] for i in range(t.shape[0])]
                t = torch.cat([F.interpolate(p, size=t.shape[-2:], mode="bilinear", align_corners=False) for p in picks])
            feed[inp.name] = t
        feeds.append({n: v.contiguous().numpy() for n, v in feed.items()})
    return feeds


def quantize_int8(data: bytes, feeds: list[dict], exclude_last: bool = True) -> tuple[bytes, list[str]]:
    """``data`` (an fp32 ONNX graph) statically quantized by onnxruntime: QDQ format, int8
    per-channel weights and uint8 activations for the convolutions (and matrix products), with
    ranges measured on ``feeds``; instance norm, the activations and the output convolution stay
    in float (the layers whose rounding shows most). Returns (bytes, names kept in float)."""
    import logging
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    proto = onnx.load_from_string(data)
    heavy = [n.name for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")]
    keep = heavy[-1:] if exclude_last else []

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's advice to pre-process, printed on every call
    try:
        with tempfile.TemporaryDirectory(prefix="styleforge-int8-") as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(data)
            quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv", "ConvTranspose", "MatMul", "Gemm"], nodes_to_exclude=keep)
            return dst.read_bytes(), keep
    finally:
        root.setLevel(level)


def _set_meta(data: bytes, meta: dict) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    kept = [p for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "styleforge"
    return proto.SerializeToString()


def export_int8(model, calibrate, out=None, direction: str | None = None, overwrite: bool = False,
                min_psnr: float | None = None, include=(), calibration_limit: int = 32, **values) -> ExportResult:
    """An int8 ONNX file of ``model`` (default ``<model dir>/<method>-<direction>.int8.onnx``),
    calibrated on the images of the folder ``calibrate`` (unreadable ones skipped, said in the
    result's note). The int8 graph is compared with the fp32 one on up to
    :data:`CHECK_IMAGES` of them: below ``min_psnr`` dB (default
    :data:`styleforge.accel.MIN_PSNR`) it changes the picture visibly and is not written (one
    line naming the PSNR; ``min_psnr=0`` writes it anyway). The file records the PSNR."""
    from . import accel
    from .runtime import onnx_runner

    min_psnr = accel.MIN_PSNR if min_psnr is None else float(min_psnr)
    method, direction, out = _export_target(model, direction, out, ".int8.onnx", overwrite)
    xs, skipped = calibration_images(calibrate, method, calibration_limit)
    with tempfile_dir() as tmp:
        fp32 = export_model(method, Path(tmp) / "fp32.onnx", "onnx", direction, check=True, include=include, **values)
        data = fp32.path.read_bytes()
    _, meta = read_metadata_bytes(data)
    inputs = [i for i in graph_inputs(method, include, _fixed_values(method, direction, values))]
    feeds = _calibration_feeds(method, inputs, xs)
    qdata, kept = quantize_int8(data, feeds)
    run32, run8 = onnx_runner(data), onnx_runner(qdata)
    worst, diff = math.inf, 0.0
    for feed in feeds[:CHECK_IMAGES]:
        ts = [torch.from_numpy(feed[i.name]) for i in inputs]
        ref, y = run32(*ts), run8(*ts)
        worst = min(worst, accel.psnr(y, ref))
        diff = max(diff, float((y - ref).abs().max()))
    n = min(len(feeds), CHECK_IMAGES)
    if worst < min_psnr:
        raise CheckpointError(f"int8 changes this {method.method_name} model's picture visibly: PSNR {worst:.1f} dB "
                              f"< {min_psnr:g} dB against fp32 on {n} of the --calibrate images; not written "
                              "(use --runtime onnx or --bf16 instead; --min-psnr 0 writes it anyway)")
    meta["int8"] = {"psnr_db": round(worst, 2), "max_abs_diff": round(diff, 4), "check_images": n,
                    "calibration_images": len(xs), "float_nodes": kept, "per_channel": True,
                    "activations": "uint8", "weights": "int8"}
    atomic_write_bytes(out, _set_meta(qdata, meta))
    note = "; ".join(skipped[:3]) + (f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else "") if skipped else None
    res = ExportResult(out, "onnx", direction, fp32.dynamic, fp32.input_size, diff, note, fp32.inputs)
    res.psnr = worst
    return res


def tempfile_dir():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="styleforge-export-")


def read_metadata_bytes(data: bytes) -> tuple[str, dict]:
    import onnx

    props = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    return "onnx", json.loads(props[META_KEY])


__all__ = ["FORMATS", "RUNTIMES", "ExportResult", "export_model", "export_int8", "quantize_int8", "calibration_images", "load_exported",
           "read_metadata", "graph_inputs"]
