"""Export a model directory's generator to ONNX or TorchScript, and run exported files.

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
``styleforge.json``. :func:`load_runtime` reads it back and returns the same
:class:`~styleforge.pipeline.Pipeline` that ``styleforge.load`` returns (PIL images, paths and
tensors of any size), running the file through onnxruntime or ``torch.jit``.

Files are written atomically (temporary name in the target folder, then rename).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import atomic_write_bytes, load_model, resolve_model_dir
from .errors import CheckpointError, ConfigError

FORMATS = ("onnx", "torchscript")
RUNTIMES = ("auto", "torch", "onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17  # onnxruntime >= 1.14 runs it; InstanceNormalization, Resize, ConvTranspose as used here
META_KEY = "styleforge"
META_FILE = "styleforge.json"
EXPORT_FORMAT = "styleforge-export"
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


class TranslateModule(nn.Module):
    """``method.translate(x, direction, **options)`` as a module with only the inference networks
    that direction runs registered (``nets``: so a traced file holds neither discriminators nor
    the other direction's generator); keeps the first output of methods that return several
    (U-GAT-IT's heatmap)."""

    def __init__(self, method, direction: str, nets=None, **options):
        super().__init__()
        names = method.inference_modules if nets is None else nets
        self.nets = nn.ModuleDict({n: getattr(method, n) for n in names})
        object.__setattr__(self, "_method", method)  # not a submodule
        self.direction, self.options = direction, options

    def forward(self, x):
        y = self._method.translate(x, self.direction, **self.options)
        return y[0] if isinstance(y, (tuple, list)) else y


def export_module(method, direction: str, example: torch.Tensor | None = None, **options) -> nn.Module:
    """The module to trace: the method's own ``export_module(direction)``, else a
    :class:`TranslateModule`; given an ``example``, one run of it finds the networks used."""
    hook = getattr(method, "export_module", None)
    if hook is not None and not options:
        return hook(direction)
    nets = None if example is None else networks_used(method, direction, example, **options)
    return TranslateModule(method, direction, nets, **options)


def networks_used(method, direction, example, **options) -> list[str]:
    """The inference modules any of whose layers run in ``translate(example, direction)``."""
    used: set[str] = set()
    handles = [m.register_forward_pre_hook(lambda *_, n=name: used.add(n))
               for name in method.inference_modules for m in getattr(method, name).modules()]
    try:
        with torch.no_grad():
            method.translate(example, direction, **options)
    finally:
        for h in handles:
            h.remove()
    return [n for n in method.inference_modules if n in used]


def _in_channels(method) -> int:
    for key in ("in_channels", "img_ch", "input_nc"):  # the names the methods' configs use
        if isinstance(method.config.get(key), int):
            return method.config[key]
    return 3


def _sizes(method) -> tuple[int, int | None]:
    """(traced side, second side checked) for a method."""
    if method.fixed_size:
        return int(method.fixed_size), None
    m = max(1, int(method.size_multiple))
    side = m * math.ceil(TRACE_SIDE / m)
    return side, side + m  # a different, non-square-free size: side × (side + m) is checked


def _example(channels: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, h, w, generator=g) * 2 - 1


@contextlib.contextmanager
def _quiet():
    """Tracer warnings (shape checks read as constants) and the legacy exporter's notices."""
    with warnings.catch_warnings():
        for cat in (torch.jit.TracerWarning, DeprecationWarning, UserWarning, FutureWarning):
            warnings.simplefilter("ignore", cat)
        yield


def _metadata(method, direction, fmt, dynamic, side, channels) -> dict:
    from . import __version__
    from .checkpoint import _json_ready

    return {"format": EXPORT_FORMAT, "format_version": 1, "export_format": fmt,
            "method": method.method_name, "direction": direction, "dynamic": dynamic,
            "size_multiple": int(method.size_multiple),
            "fixed_size": int(method.fixed_size) if method.fixed_size else None,
            "input_size": side, "in_channels": channels, "opset": OPSET if fmt == "onnx" else None,
            "config": _json_ready(method.config), "styleforge_version": __version__}


def _onnx_bytes(module, example, dynamic: bool, meta: dict) -> bytes:
    import onnx

    axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    buf = io.BytesIO()
    with _quiet():  # the TorchScript-based exporter: no onnxscript needed
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET,
                          input_names=["image"], output_names=["output"],
                          dynamic_axes={"image": axes, "output": axes}, do_constant_folding=False)
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "styleforge"
    return proto.SerializeToString()


def _torchscript_bytes(module, example, meta: dict) -> bytes:
    with _quiet():
        traced = torch.jit.trace(module, (example,), check_trace=False)
    buf = io.BytesIO()
    with _quiet():  # torch.jit.save's deprecation notice
        torch.jit.save(traced, buf, _extra_files={META_FILE: json.dumps(meta)})
    return buf.getvalue()


def export_model(model, out=None, fmt: str = "onnx", direction: str | None = None,
                 check: bool = True) -> ExportResult:
    """Export ``model`` (a model directory, a run directory or a loaded method) to ``out``
    (default: ``<model dir>/<method>-<direction>.onnx|.pt``). ``check`` runs the written file
    on a second input (a different size where the axes are dynamic) and raises if it departs
    from PyTorch by more than 1e-3."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    src_dir = None
    if isinstance(model, (str, Path)):
        src_dir = resolve_model_dir(model)
        method = load_model(src_dir)
    else:
        method = model
    method = method.cpu().eval()
    direction = method.check_direction(direction)
    if out is None:
        if src_dir is None:
            raise ConfigError("give an output file for an in-memory model")
        out = src_dir / f"{method.method_name}-{direction}{SUFFIX[fmt]}"
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give the file to write (e.g. {out / ('model' + SUFFIX[fmt])})")
    channels = _in_channels(method)
    side, other = _sizes(method)
    dynamic = other is not None
    meta = _metadata(method, direction, fmt, dynamic, side, channels)
    example = _example(channels, side, side)
    module = export_module(method, direction, example).eval()
    with torch.no_grad():
        data = (_onnx_bytes(module, example, dynamic, meta) if fmt == "onnx"
                else _torchscript_bytes(module, example, meta))
    diff = 0.0
    if check:
        x = _example(channels, side, other or side, seed=1)
        with torch.no_grad():
            ref = module(x)
        run = _onnx_runner(data) if fmt == "onnx" else _torchscript_runner(io.BytesIO(data))
        try:
            y = run(x)
        except Exception as e:  # a network that only looked dynamic while traced
            raise CheckpointError(f"the exported {fmt} file fails on a {tuple(x.shape)} input: "
                                  f"{str(e).splitlines()[0][:200]}") from None
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
    return ExportResult(out, fmt, direction, dynamic, side, diff, note)


# ---- running exported files -------------------------------------------------------------
def _onnx_runner(data_or_path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    threads = torch.get_num_threads()
    so.intra_op_num_threads = threads
    src = data_or_path if isinstance(data_or_path, bytes) else str(data_or_path)
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        y = sess.run(None, {name: x.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        return torch.from_numpy(y).to(x.device)

    return run


def _torchscript_runner(src, device="cpu"):
    with _quiet():
        module = torch.jit.load(src, map_location=device)
    module.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x)

    run.module = module
    return run


class ExportedMethod:
    """The parts of :class:`~styleforge.methods.base.Method` that a Pipeline uses, backed by an
    exported file: ``translate``, ``directions``, ``size_multiple``, ``fixed_size``."""

    def __init__(self, meta: dict, run, runtime: str, path: Path):
        self.meta, self._run, self.runtime, self.path = meta, run, runtime, path
        self.method_name = meta["method"]
        self.directions = (meta["direction"],)
        self.size_multiple = int(meta["size_multiple"])
        self.fixed_size = meta["fixed_size"]
        self.config = meta.get("config", {})

    def check_direction(self, direction):
        if direction is None or direction == self.directions[0]:
            return self.directions[0]
        raise ConfigError(f"{self.path} was exported for {self.directions[0]}; got direction {direction!r} "
                          f"(export the model again with --direction {direction})")

    def translate(self, x, direction=None, **options):
        self.check_direction(direction)
        if options:
            raise ConfigError(f"an exported model takes no translate options; got {', '.join(options)}")
        return self._run(x)

    def to(self, device):
        if self.runtime == "torchscript":
            self._run.module.to(device)
        return self

    def eval(self):
        return self

    def __call__(self, x):
        return self._run(x)


CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".tar", ".bin")


def _not_exported(path: Path, what: str):
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:  # most likely an authors' training checkpoint
        raise CheckpointError(f"{path} is {what}; an authors' checkpoint is converted first with "
                              f"'styleforge import METHOD {path.name} OUT_DIR'") from None
    raise CheckpointError(f"{path} is {what} (make one with 'styleforge export')") from None


def read_metadata(path) -> tuple[str, dict]:
    """(format, metadata) of an exported file; raises a one-line error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"exported model not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(f"extra/{META_FILE}")]
            if not names:
                _not_exported(path, "a zip/TorchScript file without styleforge metadata")
            return "torchscript", _check_meta(json.loads(z.read(names[0])), path)
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        _not_exported(path, "neither an ONNX nor a TorchScript file made by 'styleforge export'")
    props = {p.key: p.value for p in proto.metadata_props}
    if META_KEY not in props:
        raise CheckpointError(f"{path} is an ONNX file without styleforge metadata (make it with 'styleforge export')")
    return "onnx", _check_meta(json.loads(props[META_KEY]), path)


def _check_meta(meta, path) -> dict:
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path}: its metadata is not a styleforge export description")
    return meta


def load_runtime(path, runtime: str = "auto", device=None):
    """A :class:`~styleforge.pipeline.Pipeline` for ``path`` run by ``runtime``:

    * ``torch``: a model directory (what ``styleforge.load`` does);
    * ``onnx``: an ``.onnx`` file from ``styleforge export`` through onnxruntime (CPU);
    * ``torchscript``: a TorchScript file from ``styleforge export`` through ``torch.jit``;
    * ``auto``: by what ``path`` is (a directory: torch; a file: its format).

    The pipeline pads/resizes as for PyTorch (``size_multiple``, ``fixed_size`` from the file)."""
    from .pipeline import Pipeline

    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    path = Path(path)
    if runtime == "torch" or (runtime == "auto" and path.is_dir()):
        return Pipeline.from_dir(path, device=device)
    if path.is_dir():
        raise ConfigError(f"--runtime {runtime} runs an exported file, and {path} is a model directory; "
                          f"make the file with 'styleforge export {path} --format {runtime}'")
    fmt, meta = read_metadata(path)
    if runtime != "auto" and fmt != runtime:
        raise ConfigError(f"{path} is a {fmt} file, not {runtime}")
    if fmt == "onnx":
        method = ExportedMethod(meta, _onnx_runner(path), "onnx", path)
        device = device or "cpu"
    else:
        method = ExportedMethod(meta, _torchscript_runner(str(path)), "torchscript", path)
    return Pipeline(method, device=device)


__all__ = ["FORMATS", "RUNTIMES", "ExportResult", "export_model", "load_runtime", "read_metadata"]
