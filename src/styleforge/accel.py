"""How a loaded model runs: the runtime paths, their check against fp32 eager, and ``auto``'s
measured choice. :meth:`styleforge.pipeline.Pipeline.use_runtime` is the one place the front
ends call (translate, stylize, serve); this module sits below the pipeline and imports no front
end.

Paths (``--runtime``), each compared with fp32 eager PyTorch on a real image:

- ``torch``: eager PyTorch, fp32 (the reference); ``--bf16`` runs it under bf16 autocast, the
  convolution weights cast once (:func:`bf16_weights`).
- ``channels_last``: eager with the image in channels-last memory order (oneDNN's preferred
  layout); offered only where it is exact (max |Δ| ≤ :data:`EXACT_MAX_DIFF`). ``auto`` tries it.
- ``compile``: ``torch.compile`` (inductor; on CPU it writes C++ and needs a compiler), with
  the weights frozen into the graph (:func:`frozen_weights`). The compile time is measured;
  inductor's on-disk cache goes to ``$XDG_CACHE_HOME/styleforge/inductor`` unless
  ``TORCHINDUCTOR_CACHE_DIR`` says otherwise, so a second process compiles from cache. A
  failure to compile is one line and a fall-back to eager.
- ``onnx`` / ``int8``: the model's file from ``styleforge export`` (``int8``: ``export --int8
  --calibrate DIR``), run by ONNX Runtime: given directly as MODEL, or found beside the model
  directory's ``config.json`` under the export's default name. Missing: one line, eager.

Quality bound: fp32 paths must match eager within :data:`EXACT_MAX_DIFF` (summation order only);
lossy ones (bf16, int8) need PSNR ≥ :data:`MIN_PSNR` dB, else the picture changes visibly and
``auto`` does not take them. ``auto`` times each allowed path for this model and image size
(one warm-up, :data:`AUTO_REPEATS` runs) and caches the choice in ``$XDG_CACHE_HOME/styleforge/
runtimes.json`` (atomic write), keyed by the model file's identity, the size, the thread count,
torch's version and the CPU.

Batch size (``Pipeline.choose_batch``, for ``translate --runtime auto`` without ``--batch-size``,
on CPU): the chosen path timed at batch 1, 2 and 4 on four distinct images of the job's size,
stopping at the first batch not :data:`BATCH_MIN_GAIN` faster per image (:func:`pick_batch`); a
batch whose outputs differ from one image at a time beyond the path's bound is refused. Tried
for :data:`BATCH_MIN_IMAGES` equal-size images or more, and on a compiled path (each new batch
shape compiles again) only where the job lasts :data:`BATCH_COMPILE_PAYBACK` times those
compiles (:func:`batch_worth_measuring`). Cached in the same file, keyed by the model, the size,
the path and the device.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import StyleforgeError, first_line
from .utils.atomic import atomic_write_text

RUNTIMES = ("auto", "torch", "compile", "onnx", "int8", "torchscript")
EXACT_MAX_DIFF = 1e-3  # fp32 paths: the same arithmetic in another order ([-1, 1] units)
MIN_PSNR = 35.0        # lossy paths (bf16, int8): below this the change is visible
AUTO_REPEATS = 2
CACHE_FORMAT = 1


COMPILE_MIN_IMAGES = 100  # auto tries torch.compile for jobs this large (its compile costs seconds to minutes)
RUNTIME_ENV = "STYLEFORGE_RUNTIME"


def default_runtime() -> str:
    """``--runtime``'s default: $STYLEFORGE_RUNTIME (the tests set torch), else auto."""
    v = os.environ.get(RUNTIME_ENV, "auto")
    return v if v in RUNTIMES else "auto"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "styleforge"


def psnr(y: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR in dB of ``y`` against ``ref``, both in [-1, 1] (peak-to-peak 2); inf when equal."""
    mse = float(((y.float() - ref.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def lossy(name: str) -> bool:
    return name == "int8" or name.endswith("+bf16")


def within_bound(name: str, max_diff: float, db: float) -> bool:
    """The quality bound of a path: exact for fp32 paths, PSNR ≥ MIN_PSNR for lossy ones."""
    return db >= MIN_PSNR if lossy(name) else max_diff <= EXACT_MAX_DIFF


def bound_text(name: str) -> str:
    return f"PSNR ≥ {MIN_PSNR:g} dB" if lossy(name) else f"max |Δ| ≤ {EXACT_MAX_DIFF:g}"


class MethodProxy:
    """A method with another ``translate``; everything else is the wrapped method's."""

    def __init__(self, base):
        object.__setattr__(self, "_base", base)

    def __getattr__(self, name):
        return getattr(self._base, name)

    def to(self, device):
        self._base.to(device)
        return self

    def eval(self):
        self._base.eval()
        return self


class ChannelsLast(MethodProxy):
    """The image in channels-last order: every convolution after it follows that layout."""

    def translate(self, x, **kw):
        return self._base.translate(x.contiguous(memory_format=torch.channels_last), **kw)


class Compiled(MethodProxy):
    """``torch.compile(method.translate)`` (static shapes: one graph per size, cached), after
    ``method.eager_inputs`` (what dynamo cannot trace, done eagerly); a compile failure on a
    later call (a new size) warns once and runs eager from then on."""

    def __init__(self, base):
        super().__init__(base)
        use_inductor_cache()
        object.__setattr__(self, "_compiled", torch.compile(base.translate, dynamic=False))
        object.__setattr__(self, "failed", None)

    def translate(self, x, **kw):
        prepare = getattr(self._base, "eager_inputs", None)
        if prepare is not None:  # random draws from CPU generators (a seed): tensors for the graph
            kw = prepare(x, **kw)
        if self.failed is None:
            try:
                with frozen_weights():
                    return self._compiled(x, **kw)
            except StyleforgeError:
                raise
            except Exception as e:  # inductor: no compiler, an unsupported op, a codegen error
                object.__setattr__(self, "failed", first_line(e))
                warnings.warn(f"torch.compile failed ({self.failed}); running eager PyTorch instead")
        return self._base.translate(x, **kw)


def frozen_weights():
    """Inductor's ``freezing``, set while a compiled method runs (it compiles at its first call
    for a size): the weights become constants of the graph, pre-packed for oneDNN once (and, under
    bf16 autocast, cast once), where the graph otherwise re-lays them out at every call. That
    re-layout is most of the time of networks with many weights per multiply-add: pix2pix's
    U-Net at 256 px, compile+bf16 0.039 s/img with it, 0.15 without (docs/benchmarks.md). The
    weights must not change after the first call (inference: a pipeline's never do). Given as
    ``torch.compile(options=...)`` it did not take effect (torch 2.13), hence the patch here."""
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


def _autocast_bf16(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type) and torch.get_autocast_dtype(x.device.type) == torch.bfloat16


def _weight16(conv) -> torch.Tensor:
    """``conv``'s weight in bf16, cast again only if the weight was replaced or changed in place
    since (an encoder whose weights load at its first call)."""
    w, cached = conv.weight, conv.__dict__.get("_weight16")
    if cached is None or cached[0] is not w or cached[1] != w._version:
        cached = conv.__dict__["_weight16"] = (w, w._version, w.detach().to(torch.bfloat16))
    return cached[2]


class _Conv2dBf16(nn.Conv2d):
    """A Conv2d whose own forward takes its weight cast once (:func:`_weight16`) under bf16 autocast."""

    def _conv_forward(self, x, weight, bias):
        return super()._conv_forward(x, _weight16(self) if _autocast_bf16(x) else weight, bias)


class _ConvTranspose2dBf16(nn.ConvTranspose2d):
    def forward(self, x, output_size=None):
        if self.padding_mode != "zeros" or not _autocast_bf16(x):
            return super().forward(x, output_size)
        pad = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size, 2, self.dilation)
        return F.conv_transpose2d(x, _weight16(self), self.bias, self.stride, self.padding, pad, self.groups,
                                  self.dilation)


def bf16_weights(method):
    """``method`` for the eager bf16 paths: a shallow copy whose inference networks' convolutions
    keep their weight cast to bf16, which their own forward uses under bf16 autocast instead of
    autocast casting it at every call. The output is the same bit for bit (the same rounding;
    code that reads ``.weight`` itself still gets the fp32 parameter); only the per-call
    conversion goes, which costs as much as the arithmetic where a network has many weights per
    multiply-add (pix2pix's U-Net: 54 M weights for 6 GMAC at 256 px; docs/benchmarks.md).
    Parameters and buffers are shared, ``method`` is left as it was (the fp32 reference), and a
    method that optimises each image (not exportable) is returned as it is."""
    import copy

    if not getattr(method, "exportable", True):
        return method
    out = copy.copy(method)
    out._modules = dict(method._modules)  # copy.copy shares the dict: the copies go in a new one
    for name in method.inference_modules:
        net = method._modules.get(name)
        if net is None:
            continue
        shared = {id(t): t for t in (*net.parameters(), *net.buffers())}
        net = copy.deepcopy(net, shared)  # new module objects around the same tensors
        for m in net.modules():
            cls = {nn.Conv2d: _Conv2dBf16, nn.ConvTranspose2d: _ConvTranspose2dBf16}.get(type(m))
            if cls is not None and not m._forward_pre_hooks:  # a pre-hook may recompute the weight
                m.__class__ = cls
        out._modules[name] = net
    return out


def use_inductor_cache() -> None:
    """Inductor's compiled kernels and FX graphs in the user's cache (kept across processes)."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))


def exported_file(model_dir: Path, method, kind: str) -> Path | None:
    """The model directory's file from ``styleforge export`` for ``kind`` (onnx, int8) under the
    export's default name, or None."""
    direction = method.directions[0]
    name = f"{method.method_name}-{direction}" + (".int8.onnx" if kind == "int8" else ".onnx")
    p = Path(model_dir) / name
    return p if p.is_file() else None


@dataclass
class Measured:
    name: str
    seconds: float          # per image, best of the timed runs
    max_diff: float         # vs fp32 eager, [-1, 1] units
    psnr: float             # vs fp32 eager, dB
    setup_s: float = 0.0    # the first call (compile time for ``compile``)
    ok: bool = True
    error: str | None = None

    def row(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in self.__dict__.items()}


@dataclass
class Choice:
    """What ``use_runtime`` took and why, as one line for the front end to print."""
    name: str
    note: str
    measured: list = field(default_factory=list)
    cached: bool = False


CLOCK = time.perf_counter  # benchmarks on a loaded machine use time.process_time (one thread)


def time_call(fn, repeats: int = AUTO_REPEATS) -> tuple[float, float, torch.Tensor]:
    """(first call's seconds, best of ``repeats`` later calls, the output)."""
    t = CLOCK()
    y = fn()
    first = CLOCK() - t
    best = math.inf
    for _ in range(repeats):
        t = CLOCK()
        y = fn()
        best = min(best, CLOCK() - t)
    return first, best, y


def measure(name: str, fn, ref: torch.Tensor, repeats: int = AUTO_REPEATS) -> Measured:
    """Time ``fn`` and compare its output with ``ref`` (fp32 eager); a failure is a row too."""
    try:
        first, best, y = time_call(fn, repeats)
    except StyleforgeError:
        raise
    except Exception as e:
        return Measured(name, math.inf, math.inf, -math.inf, ok=False, error=first_line(e))
    y = y.float()
    diff = float((y - ref).abs().max()) if y.shape == ref.shape else math.inf
    db = psnr(y, ref) if y.shape == ref.shape else -math.inf
    return Measured(name, best, diff, db, first, within_bound(name, diff, db))


# ---- auto's cache ------------------------------------------------------------------------------
def cache_file() -> Path:
    return cache_root() / "runtimes.json"


def cache_key(model_path, shape, bf16: bool, candidates) -> str:
    p = Path(model_path).resolve()
    weights = p / "model.safetensors" if p.is_dir() else p
    try:
        st = weights.stat()
        ident = [str(weights), st.st_size, st.st_mtime_ns]
    except OSError:
        ident = [str(weights)]
    for c in candidates:  # the paths tried; an exported file made (or remade) later changes the choice
        if isinstance(c, Path):
            st = c.stat()
            ident.append([str(c), st.st_size, st.st_mtime_ns])
        else:
            ident.append(str(c))
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    raw = json.dumps([CACHE_FORMAT, ident, list(shape), bool(bf16), torch.get_num_threads(), torch.__version__, cpu])
    return hashlib.sha1(raw.encode()).hexdigest()


def read_cache() -> dict:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: measured again and rewritten
    return data if isinstance(data, dict) else {}


def write_cache(key: str, entry: dict) -> None:
    data = read_cache()
    data[key] = entry
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1))
    except OSError as e:  # a read-only home: the choice is still made, only not kept
        warnings.warn(f"could not cache the runtime choice in {path} ({e.__class__.__name__})")


def summary(rows: list[Measured]) -> str:
    parts = []
    for r in rows:
        if r.error:
            parts.append(f"{r.name} failed")
        elif not r.ok:
            parts.append(f"{r.name} refused ({'PSNR %.1f dB' % r.psnr if lossy(r.name) else 'max |Δ| %.1e' % r.max_diff})")
        else:
            parts.append(f"{r.name} {r.seconds:.3g} s")
    return ", ".join(parts)


# ---- auto's batch size -----------------------------------------------------------------------
BATCH_SIZES = (1, 2, 4)
BATCH_MIN_IMAGES = 64     # eager paths: measuring batches 1, 2, 4 costs about 19 images' time
BATCH_COMPILE_PAYBACK = 10  # compiled paths: the job at batch 1 lasts 10x the compiles of new batch shapes
BATCH_MIN_GAIN = 0.05     # a larger batch is taken when it is this much faster per image (timing noise)


@dataclass
class BatchChoice:
    """What ``Pipeline.choose_batch`` took (None: the front end's default) and why, as one line."""
    size: int | None
    note: str = ""
    per_image: dict = field(default_factory=dict)  # batch size -> seconds per image (None: refused)
    cached: bool = False


def batch_worth_measuring(images: int | None, runtime: str, row: dict | None) -> bool:
    """Whether a job of ``images`` equal-size images pays for measuring batches on ``runtime``
    (``row``: the runtime's measured row: ``seconds`` per image, ``setup_s`` its first call).
    A compiled path compiles each new batch shape (2 and 4, remnants cut to these): that cost,
    estimated from the first compile, must be a small part of the job."""
    if images is None or images < BATCH_MIN_IMAGES:
        return False
    if not runtime.startswith("compile"):
        return True
    if not row or not math.isfinite(row.get("seconds") or math.inf):
        return False
    compile_s = max(0.0, (row.get("setup_s") or 0.0) - row["seconds"])
    return images * row["seconds"] >= BATCH_COMPILE_PAYBACK * compile_s * (len(BATCH_SIZES) - 1)


def time_batches(run, xs: torch.Tensor, b: int) -> tuple[float, torch.Tensor, float]:
    """(seconds per image, outputs, the warm-up's seconds): ``run`` on the images ``xs``
    (N×C×H×W) in batches of ``b`` after one warm-up batch (a compiled path compiles the new shape
    there). Every size is timed on the same images, all of them once: the best of 4 calls at
    batch 1 against 1 call at batch 4 would favour batch 1 on a loaded machine."""
    t = CLOCK()
    run(xs[:b])
    warm = CLOCK() - t
    total, outs = 0.0, []
    for s in range(0, len(xs), b):
        t = CLOCK()
        outs.append(run(xs[s:s + b]).float())
        total += CLOCK() - t
    return total / len(xs), torch.cat(outs), warm


def pick_batch(per_image, sizes=BATCH_SIZES) -> tuple[int, dict]:
    """The batch size of ``sizes`` (ascending, the first 1) with the least ``per_image(b)``
    (seconds per image, or None: refused, its outputs differ from one image at a time). Stops at
    the first size not :data:`BATCH_MIN_GAIN` faster per image than the best so far: a larger
    batch on a CPU the smaller one already keeps busy is rarely faster again."""
    best, times = sizes[0], {}
    for b in sizes:
        times[b] = per_image(b)
        if b == sizes[0]:
            continue
        if times[b] is None or times[b] > times[best] * (1 - BATCH_MIN_GAIN):
            break
        best = b
    return best, times


def batch_summary(times: dict, why: dict | None = None, compiles: dict | None = None) -> str:
    """``times`` as text; ``compiles``: the seconds a compiled path took for a new batch shape."""
    why, compiles = why or {}, compiles or {}
    return ", ".join(f"batch {b} {why.get(b, 'refused')}" if t is None else
                     f"batch {b} {t:.3g} s/image" + (f" (compiled in {compiles[b]:.1f} s)" if b in compiles else "")
                     for b, t in times.items())


__all__ = ["RUNTIMES", "EXACT_MAX_DIFF", "MIN_PSNR", "Choice", "Measured", "psnr", "within_bound", "measure",
           "exported_file", "ChannelsLast", "Compiled", "bf16_weights", "cache_file", "cache_key"]
