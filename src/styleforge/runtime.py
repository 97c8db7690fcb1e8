"""Running files made by ``styleforge export``: their metadata read and checked, the graph run by
onnxruntime or ``torch.jit``, and :class:`ExportedMethod`, the parts of a method the pipeline
uses. It sits below :mod:`styleforge.pipeline` (which loads exported files through it) and
imports no front end; the file writer is :mod:`styleforge.export`.
"""
from __future__ import annotations

import contextlib
import json
import warnings
import zipfile
from pathlib import Path

import torch

from .accel import RUNTIMES  # the one list of runtimes
from .errors import CheckpointError, ConfigError, first_line
from .methods.base import INPUT_KINDS, TENSOR_KINDS, Input, Output

META_KEY = "styleforge"  # the ONNX metadata_props entry
META_FILE = "styleforge.json"  # the TorchScript extra file
EXPORT_FORMAT = "styleforge-export"


@contextlib.contextmanager
def quiet_warnings():
    """Tracer warnings (shape checks read as constants) and the legacy exporter's notices."""
    with warnings.catch_warnings():
        for cat in (torch.jit.TracerWarning, DeprecationWarning, UserWarning, FutureWarning):
            warnings.simplefilter("ignore", cat)
        yield


def onnx_runner(data_or_path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    threads = torch.get_num_threads()
    so.intra_op_num_threads = threads
    src = data_or_path if isinstance(data_or_path, bytes) else str(data_or_path)
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run(*xs: torch.Tensor) -> torch.Tensor:
        feed = {n: x.detach().to("cpu", torch.float32).contiguous().numpy() for n, x in zip(names, xs)}
        y = sess.run(None, feed)[0]
        return torch.from_numpy(y).to(xs[0].device)

    return run


def torchscript_runner(src, device="cpu"):
    with quiet_warnings():
        module = torch.jit.load(src, map_location=device)
    module.eval()

    def run(*xs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(*xs)

    run.module = module
    return run


class ExportedMethod:
    """The parts of :class:`~styleforge.methods.base.Method` that a Pipeline uses, backed by an
    exported file: ``translate``, the declared inputs and outputs (from the file's metadata:
    the graph inputs, plus each fixed input as a choice of its one value), ``size_multiple``,
    ``fixed_size``."""

    def __init__(self, meta: dict, run, runtime: str, path: Path):
        self.meta, self._run, self.runtime, self.path = meta, run, runtime, path
        self.method_name = meta["method"]
        self.directions = (meta["direction"],)
        self.size_multiple = int(meta["size_multiple"])
        self.fixed_size = meta["fixed_size"]
        self.max_side = meta.get("max_side")
        self.min_side = meta.get("min_side")  # None in older files: the default rule
        self.config = meta.get("config", {})
        self.image_channels = int(meta.get("in_channels") or 3)
        self.graph = meta.get("graph_inputs", ["image"])
        self.fixed = meta.get("fixed_inputs", {})
        declared = {d["name"]: d for d in meta.get("inputs", [{"name": "image", "kind": "image"}])}
        self._tensor_names = {n for n, d in declared.items() if d["kind"] in TENSOR_KINDS and n not in self.graph}
        self._inputs = []
        for name, d in declared.items():
            if name in self.graph or d["kind"] == "seed" and any(
                    declared[g]["kind"] == "code" and not declared[g].get("replaces")
                    for g in self.graph if g in declared):
                self._inputs.append(Input(**{k: v for k, v in d.items() if k in Input.__dataclass_fields__}))
            elif name == "direction":
                self._inputs.append(Input("direction", "choice", default=self.directions[0],
                                          choices=self.directions, help=d.get("help", "")))
            elif name in self.fixed:
                v = self.fixed[name]
                self._inputs.append(Input(name, "choice", default=v, choices=(v,), fixed=True,
                                          help=d.get("help", "") + " (fixed when the file was exported)"))
        if not self._inputs or self._inputs[0].name != "image":
            self._inputs.insert(0, Input("image", "image", required=True))
        self._outputs = [Output(**o) for o in meta.get("outputs", [])] or [Output("image")]

    def inference_inputs(self):
        return list(self._inputs)

    def inference_outputs(self):
        return list(self._outputs)

    def check_direction(self, direction):
        if direction is None or direction == self.directions[0]:
            return self.directions[0]
        raise ConfigError(f"{self.path} was exported for {self.directions[0]}; got direction {direction!r} "
                          f"(export the model again with --direction {direction})")

    def encode(self, name, x):
        raise ConfigError(f"{self.path} is an exported file: it cannot compute {name} from an image "
                          "(give a seed or the code's numbers)")

    def translate(self, x, direction=None, **inputs):
        self.check_direction(direction)
        tensors = [x]
        for name in self.graph[1:]:
            v = inputs.pop(name, None)
            if v is None:
                raise ConfigError(f"{self.path} needs the input {name}")
            if isinstance(v, list):
                if len(v) != 1:
                    raise ConfigError(f"{self.path} takes one image for {name} (an exported file does not blend "
                                      f"several); got {len(v)}: use the model directory to blend them")
                v = v[0]
            tensors.append(v)
        for name, v in inputs.items():
            if name in self.fixed and v == self.fixed[name] or name == "seed":
                continue
            if name in self._tensor_names:
                raise ConfigError(f"{self.path} was exported without the input {name}; export the model "
                                  f"again with --with {name}")
            raise ConfigError(f"{self.path} was exported with {name}={self.fixed.get(name)}; "
                              f"export the model again to change it")
        return self._run(*tensors)

    def to(self, device):
        if self.runtime == "torchscript":
            self._run.module.to(device)
        return self

    def eval(self):
        return self

    def __call__(self, *xs):
        return self._run(*xs)


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
            return "torchscript", _check_meta(_parse_meta(z.read(names[0]), path), path)
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        _not_exported(path, "neither an ONNX nor a TorchScript file made by 'styleforge export'")
    props = {p.key: p.value for p in proto.metadata_props}
    if META_KEY not in props:
        raise CheckpointError(f"{path} is an ONNX file without styleforge metadata (make it with 'styleforge export')")
    return "onnx", _check_meta(_parse_meta(props[META_KEY], path), path)


def _parse_meta(text, path):
    try:
        return json.loads(text)
    except ValueError as e:  # JSONDecodeError, or bytes that are no UTF-8
        raise CheckpointError(f"{path}: its styleforge metadata is not valid JSON ({first_line(e)})") from None


def _whole(v, low=1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _check_meta(meta, path) -> dict:
    """The description a file carries, checked before anything is built from it: a file whose
    metadata was edited, truncated or written by another tool gets one line naming the key."""
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path}: its metadata is not a styleforge export description")

    def bad(key, need):
        raise CheckpointError(f"{path}: its metadata's {key!r} {need}, found {meta.get(key)!r} "
                              "(export the model again)")

    for key in ("method", "direction"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            bad(key, "must be a name")
    if not _whole(meta.get("size_multiple")):
        bad("size_multiple", "must be a whole number of at least 1")
    for key in ("fixed_size", "min_side", "max_side"):
        if meta.get(key) is not None and not _whole(meta[key]):
            bad(key, "must be a whole number of at least 1, or null")
    graph = meta.get("graph_inputs", ["image"])
    if not isinstance(graph, list) or not graph or graph[0] != "image" or not all(isinstance(g, str) for g in graph):
        bad("graph_inputs", "must be a list of input names starting with 'image'")
    inputs = meta.get("inputs", [])
    if not isinstance(inputs, list) or not all(
            isinstance(d, dict) and isinstance(d.get("name"), str) and d.get("kind") in INPUT_KINDS for d in inputs):
        bad("inputs", "must be a list of declared inputs (each with a name and a known kind)")
    missing = [g for g in graph[1:] if g not in {d["name"] for d in inputs}]
    if missing:
        bad("graph_inputs", f"names undeclared inputs ({', '.join(missing)})")
    for key, typ, need in (("fixed_inputs", dict, "must be a mapping"), ("config", dict, "must be a mapping"),
                           ("outputs", list, "must be a list")):
        if not isinstance(meta.get(key, typ()), typ):
            bad(key, need)
    if not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in meta.get("outputs", [])):
        bad("outputs", "must be a list of declared outputs (each with a name)")
    return meta


def load_exported(path, runtime: str = "auto"):
    """(the file as a method, its default device) for a file from ``styleforge export``."""
    path = Path(path)
    fmt, meta = read_metadata(path)
    int8 = bool(meta.get("int8"))
    if runtime == "int8" and not int8:
        raise ConfigError(f"{path} is an fp32 {fmt} file, not int8 (make one with 'styleforge export MODEL "
                          "--int8 --calibrate DIR')")
    if runtime not in ("auto", "int8") and fmt != runtime:
        raise ConfigError(f"{path} is {'an' if fmt[0] in 'aeiou' else 'a'} {fmt} file, not {runtime}")
    try:
        run = onnx_runner(path) if fmt == "onnx" else torchscript_runner(str(path))
    except ImportError:
        raise
    except Exception as e:  # a graph onnxruntime rejects; a zip that is no TorchScript program
        raise CheckpointError(f"{path}: its {fmt} graph cannot be loaded ({first_line(e)}); "
                              "export the model again") from None
    try:
        method = ExportedMethod(meta, run, "int8" if int8 else fmt, path)
    except (TypeError, ValueError) as e:  # a declared input whose fields do not fit
        raise CheckpointError(f"{path}: its metadata does not describe the inputs ({first_line(e)}); "
                              "export the model again") from None
    return method, ("cpu" if fmt == "onnx" else None)


__all__ = ["RUNTIMES", "ExportedMethod", "load_exported", "read_metadata"]
