"""The ready-to-call object that ``styleforge.load`` returns, and the one place where a method's
declared inputs are converted (``methods/base.py``: :class:`Input`, :class:`Output`).

``pipe = styleforge.load("runs/h2z/model")``; ``pipe("horse.jpg")`` -> PIL image;
``pipe(pil_image, direction="BtoA")``; ``pipe(content, style="starry.jpg", alpha=0.5)``;
``pipe(photo, num_outputs=4, seed=1)`` -> 4 PIL images; ``pipe(tensor)`` for N×C×H×W in
[-1, 1] -> tensor. ``pipe.inputs`` / ``pipe.outputs`` are the declarations every front end
(CLI flags, batch, web form, export, evaluation) is built from.

Conversions, done once here:

* the main image: any size; fully convolutional networks get it padded (reflection) to the
  multiple of their down-sampling factor and the result cropped back; networks with a fixed
  input size (``method.fixed_size``) get it resized and the result resized back. ``size``
  resizes the longer side first (the output is brought back to the original size); a method's
  ``max_side`` refuses larger images with a message naming ``size``, its ``min_side`` (default
  ``size_multiple + 1``) smaller ones.
* reference images (path, PIL image or tensor; a list where ``multiple``): RGB, [-1, 1],
  longer side resized to the input's ``size`` rule; K images (``images``: a folder, a list, a
  K×3×H×W tensor): each resized (shorter side) and centre-cropped to ``size`` × ``size``;
  masks: [0, 1], resized (nearest) to the main image and padded like it.
* codes: a tensor or numbers as given, an image through ``method.encode`` (resized to the
  input's ``encoder_size`` where the encoder takes one size), or drawn from N(0, 1) with a CPU
  generator seeded by the ``seed`` input alone — outside the network, the same code for every
  image of a call, so an output never depends on its batch, its place in a folder or the device
  (``methods.base.draw_code``). A code declared ``used_when`` a choice has a value (MIXGAN's
  ``z``: ``mode=sample``) selects that value when given, is an error with another, and is not
  drawn where unused.
* arrays and tensors: an H×W×3 numpy array (uint8 0..255, float 0..1) is read as an image
  file would be (``pipe(array)`` gives an array back); a tensor must hold its declared range
  ([-1, 1] for images, [0, 1] for masks): a 0..255 tensor is a one-line error saying how to
  convert it, not a washed-out picture.
* numbers, choices, flags: strings are parsed (front ends pass what a user typed) and checked
  against the declared range; a bad value is a :class:`ConfigError` naming the input (front
  ends give the name they show: ``--alpha``, ``option alpha``).
* ``num_outputs`` N (methods with a code or seed input): output k is made with seed
  ``seed + k`` (default seed 0: repeatable); a call with nothing random in it (every code
  given or unused) is an error for N > 1, not N identical outputs.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .checkpoint import load_model, save_model
from .errors import CheckpointError, ConfigError, ImageTooSmallError, first_line
from .methods.base import Input, Output, draw_code
from .utils.device import process_device, torchrun_rank
from .utils.seed import output_seed

MAX_OUTPUTS = 64
# the largest magnitude a given code may hold: codes are drawn from N(0, 1), and a network fed
# 1e30 gives a flat image (or inf) rather than an error
MAX_CODE = 1e4


def _first_bad(t: torch.Tensor, ok: torch.Tensor) -> str:
    return f"{float(t[~ok].flatten()[0]):g}"


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return x, (h, w)
    # reflection needs the pad smaller than the side; tiny images fall back to replication
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def min_side(method) -> int:
    """The smallest side of the main image ``method`` can take (``Method.min_side``; 1 where it
    resizes the image to its ``fixed_size``)."""
    if getattr(method, "fixed_size", None):
        return 1
    declared = getattr(method, "min_side", None)
    if declared:
        return int(declared)
    m = int(getattr(method, "size_multiple", 1) or 1)
    return m + 1 if m > 1 else 1


def resize_square(x: torch.Tensor, side: int) -> torch.Tensor:
    """N×C×H×W -> N×C×side×side (bicubic, clamped to [-1, 1]): how an image is brought to a
    network's fixed input size (``fixed_size``, a code's ``encoder_size``)."""
    if tuple(x.shape[-2:]) == (side, side):
        return x
    return F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False).clamp(-1, 1)


# ---- declarations ------------------------------------------------------------------------------
def declared_inputs(method) -> list[Input]:
    """The method's inputs (an exported file's come from its metadata); the main image first."""
    inputs = list(method.inference_inputs())
    if not inputs or inputs[0].kind != "image":
        raise TypeError(f"{getattr(method, 'method_name', method)}: inference_inputs() must start with the image")
    if any(i.drawn for i in inputs) and not any(i.kind == "seed" for i in inputs):
        inputs.append(Input("seed", "seed", help="seed of the random codes (output k of N uses seed + k)"))
    return inputs


def input_used(inp: Input, inputs, values: dict) -> bool:
    """Whether ``translate`` uses ``inp`` when called with ``values`` (missing ones at their
    defaults): false where ``inp.used_when`` names a choice whose value is another."""
    if not inp.used_when:
        return True
    name, want = inp.used_when
    v = values.get(name)
    if v is None:
        v = next((i.default for i in inputs if i.name == name), None)
    return str(v) == str(want)


def declared_outputs(method) -> list[Output]:
    return list(method.inference_outputs())


def is_stochastic(inputs) -> bool:
    """Several outputs per input make sense: there is a code drawn at random or a seed."""
    return any(i.drawn or i.kind == "seed" for i in inputs)


def parse_bool(v, label: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("true", "1", "on", "yes"):
        return True
    if s in ("false", "0", "off", "no"):
        return False
    raise ConfigError(f"{label} must be true or false, got {v!r}")


def _fmt(v) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _range_text(inp: Input) -> str:
    lo = "-inf" if inp.min is None else _fmt(inp.min)
    hi = "inf" if inp.max is None else _fmt(inp.max)
    return f"[{lo}, {hi}]"


def _number(inp: Input, v, label: str, integer: bool):
    if isinstance(v, bool):
        raise ConfigError(f"{label} must be a number, got {v!r}")
    try:
        if integer:
            x = int(v) if not isinstance(v, float) or v.is_integer() else None
            if x is None:
                raise ValueError
        else:
            x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{label} must be a{'n integer' if integer else ' number'}, got {v!r}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{label} must be a finite number, got {v}")
    if (inp.min is not None and x < inp.min) or (inp.max is not None and x > inp.max):
        raise ConfigError(f"{label} must be in {_range_text(inp)}, got {v}")
    return x


def _numbers_text(v: str) -> bool:
    """``v`` is numbers as a user types them ("0.1, -2 1e3", also "nan" and "inf", refused later)."""
    items = v.replace(",", " ").split()
    try:
        return bool(items) and all(float(e) is not None for e in items)
    except ValueError:
        return False


def check_value(inp: Input, v, label: str | None = None):
    """A non-image value given for ``inp`` (maybe a string a user typed) -> the Python value
    ``translate`` takes, or a one-line :class:`ConfigError` naming ``label``."""
    label = label or inp.name
    if inp.kind == "float":
        return _number(inp, v, label, False)
    if inp.kind in ("int", "seed"):
        if inp.kind == "seed" and inp.min is None:
            inp = Input(inp.name, "int", min=0, max=2 ** 63 - 1)
        return _number(inp, v, label, True)
    if inp.kind == "floats":
        items = v.replace(",", " ").split() if isinstance(v, str) else list(v)
        if not items:
            raise ConfigError(f"{label} needs at least one number")
        return [_number(inp, x, label, False) for x in items]
    if inp.kind == "flag":
        return parse_bool(v, label)
    if inp.kind == "file":  # read by the method as it is built (it names a missing file itself)
        return str(v)
    if inp.fixed:
        if str(v) == str(inp.default):
            return inp.default
        raise ConfigError(f"{label}: the file was exported with {inp.name}={inp.default}; "
                          f"export the model again to change it")
    if inp.kind == "choice":
        for c in inp.choices:
            if str(c) == str(v):
                return c
        raise ConfigError(f"{label} must be one of {', '.join(map(str, inp.choices))}, got {v!r}")
    raise ConfigError(f"{label} takes an image, not {v!r}")


# ---- images ------------------------------------------------------------------------------------
def _is_array(v) -> bool:
    return type(v).__module__ == "numpy" and type(v).__name__ == "ndarray"


def array_image(a, label: str) -> Image.Image:
    """An H×W×3 (or H×W, H×W×1) numpy array -> RGB PIL image: uint8 (and other integer types)
    holds 0..255, a float array 0..1 (rounded to 8 bits, as an image file is). Another shape,
    type or range is a one-line error naming ``label``."""
    import numpy as np

    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)) or 0 in a.shape:
        raise ConfigError(f"{label}: a numpy image must be H×W×3 (or H×W), got shape {a.shape}")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ConfigError(f"{label}: a numpy image must hold uint8 (0..255) or float (0..1) values, got {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ConfigError(f"{label}: the float array holds NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            hint = " (a 0..255 image: give it as uint8, or divide by 255)" if hi > 1 else ""
            raise ConfigError(f"{label}: a float numpy image holds values in [0, 1], found {lo:g} .. {hi:g}{hint}")
        a = np.rint(a * 255)
    elif a.dtype != np.uint8 and (int(a.min()) < 0 or int(a.max()) > 255):
        raise ConfigError(f"{label}: an integer numpy image holds values in 0..255, found "
                          f"{int(a.min())} .. {int(a.max())}")
    a = np.ascontiguousarray(a.astype(np.uint8))
    return Image.fromarray(a, "L" if a.ndim == 2 else "RGB").convert("RGB")


def _load_image(v, label: str) -> Image.Image | torch.Tensor:
    from .data.images import load_rgb

    if isinstance(v, torch.Tensor):
        return v
    if isinstance(v, (str, Path)):
        return load_rgb(v)
    if isinstance(v, Image.Image):
        return v.convert("RGB")
    if _is_array(v):
        return array_image(v, label)
    raise ConfigError(f"{label}: give an image file, a PIL image, a numpy array or a tensor, not a "
                      f"{type(v).__name__}")


# how far outside its range a float tensor may stray (resampling, float rounding) before it is
# taken for another convention (0..255, 0..1 for an image) and refused
RANGE_SLACK = 1e-3


def _check_range(t: torch.Tensor, label: str, lo: float = -1.0, hi: float = 1.0) -> None:
    """A one-line error for a tensor outside [lo, hi] (NaN included) that names the input."""
    if t.numel() == 0:
        return
    lo_found, hi_found = float(t.amin()), float(t.amax())
    if math.isnan(lo_found) or math.isnan(hi_found):
        raise ConfigError(f"{label}: the tensor holds NaN values")
    if lo_found < lo - RANGE_SLACK or hi_found > hi + RANGE_SLACK:
        hint = ""
        if hi_found > 1.5:
            hint = " (a 0..255 image: x / 127.5 - 1)" if lo < 0 else " (a 0..255 mask: m / 255)"
        elif lo < 0 and lo_found >= 0:
            hint = " (a 0..1 image: x * 2 - 1)"
        raise ConfigError(f"{label}: a tensor image holds values in [{lo:g}, {hi:g}], found "
                          f"{lo_found:.4g} .. {hi_found:.4g}{hint}")


def _as_batch(t: torch.Tensor, label: str, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """C×H×W or N×C×H×W -> float N×C×H×W, its values checked against [lo, hi]."""
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ConfigError(f"{label}: expected a C×H×W or N×C×H×W tensor, got shape {tuple(t.shape)}")
    t = t.float()
    _check_range(t, label, lo, hi)
    return t


# ---- the conversions every front end shares ---------------------------------------------------
# A picture goes in as ``sized(img, size)`` (the --size rule) and ``as_input`` (8-bit values to
# [-1, 1]), and comes out as ``as_picture(t, original size)``: ``Pipeline.run``, the batch job
# (its workers size and decode in parallel, its writers restore), the web app and video call these.
def sized(img: Image.Image, size: int | None, only_shrink: bool = False) -> Image.Image:
    """``img`` with its longer side ``size`` (bicubic, aspect kept; None/0: as given).
    ``only_shrink``: a cap (the web app's ``--max-side``): smaller images stay as they are."""
    from .data.transforms import resize_longer_side

    if only_shrink and size and max(img.size) <= size:
        return img
    return resize_longer_side(img, size)


def as_input(u8: torch.Tensor) -> torch.Tensor:
    """N×3×H×W (or 3×H×W) 8-bit values -> float32 in [-1, 1], the arithmetic of ``to_tensor``."""
    return u8.to(torch.float32) / 127.5 - 1.0


def as_picture(t: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """A C×H×W output in [-1, 1] -> a PIL image, brought back to ``size`` (w, h) bicubically
    where the network saw another size."""
    from .data.transforms import to_pil

    pil = to_pil(t.float().cpu())
    return pil if size is None or pil.size == tuple(size) else pil.resize(tuple(size), Image.BICUBIC)


def _image_tensor(v, label: str, longer: int | None = None) -> torch.Tensor:
    """1×3×h×w in [-1, 1], the longer side resized to ``longer`` (None: as given)."""
    from .data.transforms import resize_longer_side, to_tensor

    img = _load_image(v, label)
    if isinstance(img, torch.Tensor):
        t = _as_batch(img, label)
        if longer and max(t.shape[-2:]) != longer:
            h, w = t.shape[-2:]
            s = longer / max(h, w)
            t = F.interpolate(t, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bicubic",
                              align_corners=False).clamp(-1, 1)
        return t
    return to_tensor(resize_longer_side(img, longer))[None]


def _square_tensor(v, label: str, side: int | None) -> torch.Tensor:
    """1×3×side×side in [-1, 1]: shorter side resized to ``side``, centre crop."""
    from .data.transforms import to_tensor

    img = _load_image(v, label)
    if isinstance(img, torch.Tensor):
        t = _as_batch(img, label)
        if side and tuple(t.shape[-2:]) != (side, side):
            t = F.interpolate(t, size=(side, side), mode="bicubic", align_corners=False).clamp(-1, 1)
        return t
    if side:
        w, h = img.size
        s = side / min(w, h)
        nw, nh = max(side, round(w * s)), max(side, round(h * s))
        img = img.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - side) // 2, (nh - side) // 2
        img = img.crop((left, top, left + side, top + side))
    return to_tensor(img)[None]


def _image_list(v, label: str) -> list:
    """A folder (its images, sorted), a glob, one image or a list of images."""
    from .data.images import list_images

    if isinstance(v, torch.Tensor):
        return list(v) if v.ndim == 4 else [v]
    if isinstance(v, (str, Path)) and Path(v).is_dir():
        files = list_images(Path(v))
        if not files:
            raise ConfigError(f"{label}: no images in {v}")
        return files
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


# ---- the pipeline --------------------------------------------------------------------------
@dataclass
class _Prepared:
    x: torch.Tensor         # the network's input (padded / resized)
    size: tuple[int, int]   # the image's (h, w) before padding
    restore: object         # network-sized output -> the image's size


class Pipeline:
    def __init__(self, method, device=None):
        self.device = process_device(device)
        self.method = method.to(self.device).eval()
        self.inputs: list[Input] = declared_inputs(self.method)
        self.outputs: list[Output] = declared_outputs(self.method)
        # inputs the pipeline adds (a seed for the codes it draws) are not passed to translate
        self._own = {i.name for i in self.method.inference_inputs()}
        self.amp = False  # bf16 autocast around the network (use_runtime's --bf16)
        self.source: Path | None = None  # the model directory or file it was loaded from
        self.runtime = getattr(method, "runtime", "torch")

    @classmethod
    def from_dir(cls, path, device=None) -> "Pipeline":
        return cls(load_model(path), device)

    # ---- what the model takes ------------------------------------------------------------
    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self.method.directions)

    @property
    def stochastic(self) -> bool:
        return is_stochastic(self.inputs)

    def input(self, name: str) -> Input:
        for i in self.inputs:
            if i.name == name:
                return i
        raise ConfigError(self._no_input(name))

    def _no_input(self, name: str) -> str:
        names = [i.name for i in self.inputs[1:]]
        return (f"{self.method.method_name} takes no input {name!r}"
                + (f"; its inputs: {', '.join(names)}" if names else "; it takes only the image"))

    def save(self, path, overwrite: bool = False) -> Path:
        """The model as a model directory at ``path``; one loaded from a directory keeps that
        card's source and licence. An existing ``path`` (not an empty folder) is refused unless
        ``overwrite`` (it is replaced whole: files exported beside the model go with it)."""
        path = Path(path)
        if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
            raise ConfigError(f"{path} exists{'' if path.is_dir() else ' (a file)'}; save(..., overwrite=True) "
                              "replaces it")
        method = getattr(self, "_eager", None) or self.method
        if not hasattr(method, "inference_modules"):  # onnxruntime / TorchScript: no PyTorch network
            raise ConfigError(f"cannot save {self.source or 'this pipeline'} as a model directory: it runs an "
                              "exported file; save the model directory it was exported from")
        return save_model(path, method, card=self._kept_card())

    def _kept_card(self) -> dict | None:
        """What the source directory's card knows of the model's making (licence, source, file,
        SHA-256), for the copy that :meth:`save` writes; None without a source card."""
        from .card import read_card

        if self.source is None or not Path(self.source).is_dir():
            return None
        front = read_card(self.source)
        own = front.get("styleforge")
        if not isinstance(own, dict):
            return None
        made = {k: own[k] for k in ("name", "source", "page", "licence", "non_commercial", "file", "sha256",
                                    "checksum") if own.get(k) not in (None, "")}
        if front.get("license") not in (None, "other"):
            made["licence_id"] = front["license"]
        made["how"] = f"saved with Pipeline.save from {self.source}" + (f" ({own['how']})" if own.get("how") else "")
        return made

    # ---- conversions ------------------------------------------------------------------------
    def _prepare_image(self, x: torch.Tensor) -> _Prepared:
        x = x.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        limit = getattr(self.method, "max_side", None)
        if limit and max(h, w) > limit:
            raise ConfigError(f"the image is {w}×{h}; {self.method.method_name} takes at most {limit} px on the "
                              f"longer side (memory): resize it first (size={limit}, --size {limit})")
        fixed = self.method.fixed_size
        least = min_side(self.method)
        if min(h, w) < least:
            raise ConfigError(f"the image is {w}×{h}; {self.method.method_name} takes at least {least} px on the "
                              f"shorter side: give a larger image")
        if fixed:
            xin = resize_square(x, fixed)

            def restore(t):
                return F.interpolate(t.float(), size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)
        else:
            xin, _ = pad_to_multiple(x, self.method.size_multiple)

            def restore(t):
                return t[..., :h, :w]
        return _Prepared(xin, (h, w), restore)

    def _ref_size(self, inp: Input, values: dict) -> int | None:
        if isinstance(inp.size, str):
            v = values.get(inp.size, self.input(inp.size).default)
            return None if v in (None, 0) else int(v)
        return inp.size

    def _mask(self, inp: Input, v, prep: _Prepared, n: int, label: str) -> torch.Tensor:
        from .data.transforms import to_tensor

        img = _load_image(v, label)
        if isinstance(img, torch.Tensor):
            m = _as_batch(img, label, 0.0, 1.0)
        else:
            m = to_tensor(img.convert("L" if inp.channels == 1 else "RGB"), normalize=False)[None]
        if m.shape[1] != inp.channels:
            if inp.channels == 1:
                m = m.mean(dim=1, keepdim=True)
            else:
                raise ConfigError(f"{label}: expected a {inp.channels}-channel mask, got {m.shape[1]} channel(s)")
        h, w = prep.size
        m = F.interpolate(m.to(self.device), size=(h, w), mode="nearest")
        if self.method.fixed_size:
            s = self.method.fixed_size
            m = F.interpolate(m, size=(s, s), mode="nearest")
        else:
            mult = self.method.size_multiple
            m = F.pad(m, (0, (-w) % mult, 0, (-h) % mult), mode="replicate")
        return m.expand(n, -1, -1, -1) if m.shape[0] == 1 else m

    def _encode(self, name: str, ref: torch.Tensor, direction) -> torch.Tensor:
        import inspect

        params = inspect.signature(self.method.encode).parameters
        takes = "direction" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
        return self.method.encode(name, ref, **({"direction": direction} if takes and direction else {}))

    def encode_images(self, name: str, images, direction=None, label: str | None = None) -> torch.Tensor:
        """The code input ``name`` of each of ``images`` (paths, PIL images, tensors) -> K×size,
        each image prepared as the pipeline prepares it for that code (as given; a code that
        replaces K images: as those images, square)."""
        inp, label = self.input(name), label or name
        if inp.kind != "code" or not inp.encoder:
            raise ConfigError(f"{label}: {self.method.method_name} cannot compute it from an image"
                              + ("" if inp.kind != "code" else f" (it is a code of {inp.size} numbers)"))
        rule = next((i for i in self.inputs if i.name == inp.replaces and i.kind == "images"), None)
        codes = []
        for v in images:
            ref = (_square_tensor(v, label, self._ref_size(rule, {})) if rule is not None
                   else _image_tensor(v, label)).to(self.device)
            if inp.encoder_size:  # an encoder with fully-connected layers: resized as the main image
                ref = resize_square(ref, int(inp.encoder_size))
            with torch.inference_mode():
                try:
                    codes.append(self._encode(inp.name, ref, direction).float())
                except (RuntimeError, ImageTooSmallError) as e:
                    raise self._too_small(e, {label: ref}) from None
        return torch.cat(codes)

    # an image input smaller than this on a side may fail inside a network (reflection padding or
    # pooling on a few pixels): such a failure is the user's input, said as such
    SMALL_SIDE = 64

    def _too_small(self, e: Exception, images: dict) -> Exception:
        """A network's RuntimeError (or an encoder's ImageTooSmallError) on the images
        ``{label: tensor}``: a one-line ConfigError naming the smallest of them where one is small, else ``e`` itself (a real failure)."""
        small = [(min(t.shape[-2:]), label, t) for label, t in images.items()
                 if isinstance(t, torch.Tensor) and t.ndim >= 3 and min(t.shape[-2:]) < self.SMALL_SIDE]
        if not small:
            return e
        _, label, t = min(small, key=lambda s: s[0])
        h, w = t.shape[-2:]
        return ConfigError(f"{label}: the image is {w}×{h} (as given to the network), too small for "
                           f"{self.method.method_name} ({first_line(e)}): give a larger image")

    def draw_code(self, inp: Input, n: int, seed: int) -> torch.Tensor:
        """The N×size code the pipeline draws for ``inp`` when none is given: the same code,
        N(0, 1) from a CPU generator seeded with ``seed`` alone, for each of the ``n`` images
        (:func:`styleforge.methods.base.draw_code`): an image's code does not depend on the
        batch it is in, so ``interpolate --from seed:N`` and ``translate --seed N`` agree."""
        return draw_code(int(inp.size or 0), seed, n, self.device)

    def used(self, inp: Input, values: dict) -> bool:
        """Whether ``translate`` uses ``inp`` with these ``values`` (its ``used_when``)."""
        return input_used(inp, self.inputs, values)

    def select_modes(self, values: dict, labels=None) -> dict:
        """``values`` with each choice that a given input is ``used_when`` set to the value that
        uses it (MIXGAN: a given ``z`` selects ``mode=sample``); a one-line error where that
        choice was given another value (the input would be ignored). A seed selects nothing:
        front ends pass one to every stochastic model."""
        labels = labels or {}
        out = dict(values)
        for inp in self.inputs:
            if not inp.used_when or inp.kind == "seed" or values.get(inp.name) is None:
                continue
            name, want = inp.used_when
            if values.get(name) is None:
                out[name] = want
            elif str(values[name]) != str(want):
                ln = labels.get(name, name)
                raise ConfigError(f"{labels.get(inp.name, inp.name)} is used only with {ln} {want}; "
                                  f"got {ln} {values[name]} (leave {ln} out, or give {ln} {want})")
        return out

    def random_inputs(self, values: dict) -> list[Input]:
        """The inputs that make this call random: drawn codes that are used and not given; in a
        method that declares no drawn code, its own seed input (Pix2Pix's dropout noise)."""
        drawn = [i for i in self.inputs if i.drawn]
        if drawn:
            return [i for i in drawn if values.get(i.name) is None and self.used(i, values)]
        return [i for i in self.inputs if i.kind == "seed" and i.name in self._own and self.used(i, values)]

    def _code(self, inp: Input, v, n: int, seed: int, label: str, direction=None) -> torch.Tensor:
        size = int(inp.size or 0)
        if v is None:
            return self.draw_code(inp, n, seed)
        if isinstance(v, torch.Tensor) and v.ndim <= 2 and v.dtype.is_floating_point:
            code = v.float().reshape(-1, v.shape[-1]) if v.ndim else v.reshape(1, 1)
        elif isinstance(v, (list, tuple)) and all(isinstance(e, (int, float)) for e in v):
            code = torch.tensor([float(e) for e in v]).reshape(1, -1)
        elif isinstance(v, str) and not Path(v).exists() and _numbers_text(v):
            code = torch.tensor(check_value(Input(inp.name, "floats"), v, label)).reshape(1, -1)
        else:  # an image: the method's encoder computes the code
            code = self.encode_images(inp.name, [v], direction, label)
        if size and code.shape[-1] != size:
            raise ConfigError(f"{label} must hold {size} numbers per image, got {code.shape[-1]}")
        if not bool(torch.isfinite(code).all()):
            raise ConfigError(f"{label} must hold finite numbers, got {_first_bad(code, torch.isfinite(code))}")
        if bool((code.abs() > MAX_CODE).any()):
            raise ConfigError(f"{label} holds {_first_bad(code, code.abs() <= MAX_CODE)}; a code is drawn from "
                              f"N(0, 1): its numbers must be within ±{MAX_CODE:g}")
        code = code.to(self.device)
        return code.expand(n, -1) if code.shape[0] == 1 else code

    def _missing(self, inp: Input, values: dict) -> bool:
        """A required input that neither ``values`` nor an input replacing it gives."""
        return (inp.required and values.get(inp.name) is None and not inp.drawn
                and not any(values.get(j.name) is not None for j in self.inputs if j.replaces == inp.name))

    def check_required(self, values: dict, labels=None) -> None:
        """The error :meth:`convert` gives for a required input nobody gave, before any work (a
        front end's runtime measurement, a video's work folder)."""
        for inp in self.inputs[1:]:
            if inp.kind in ("code", "seed") and not self.used(inp, values):
                continue
            if self._missing(inp, values):
                raise ConfigError(f"{(labels or {}).get(inp.name, inp.name)} is required: {inp.help or inp.kind}")

    def convert(self, values: dict, prep: _Prepared, seed: int | None, labels=None,
                random_only: bool = False) -> dict:
        """User values -> the keyword arguments of ``method.translate`` for the prepared image
        (defaults filled in, required inputs checked). ``random_only``: only the inputs that
        depend on the seed (codes, seeds), for the further samples of ``num_outputs``."""
        labels = labels or {}
        n = prep.x.shape[0]
        known = {i.name for i in self.inputs}
        for k in values:
            if k not in known or k == "image":
                raise ConfigError(self._no_input(k))
        kw: dict = {}
        for inp in self.inputs[1:]:
            if random_only and inp.kind not in ("code", "seed"):
                continue
            if inp.kind in ("code", "seed") and not self.used(inp, values):
                continue  # (a given code has selected the mode that uses it: select_modes)
            label = labels.get(inp.name, inp.name)
            v = values.get(inp.name)
            if v is None and not inp.drawn:
                if self._missing(inp, values):
                    raise ConfigError(f"{label} is required: {inp.help or inp.kind}")
                if inp.kind == "seed":
                    if seed is not None and inp.name in self._own:
                        kw[inp.name] = int(seed)
                    continue
                if inp.default is not None and inp.kind not in ("reference", "images", "mask"):
                    kw[inp.name] = inp.default
                continue
            if inp.kind == "reference":
                side = self._ref_size(inp, values)
                items = _image_list(v, label) if inp.multiple else [v]
                if not inp.multiple and len(items) != 1:
                    raise ConfigError(f"{label} takes one image, got {len(items)}")
                refs = [_image_tensor(it, label, side).to(self.device) for it in items]
                kw[inp.name] = refs if inp.multiple else refs[0]
            elif inp.kind == "images":
                side = self._ref_size(inp, values)
                items = _image_list(v, label)
                if inp.min is not None and len(items) < inp.min:
                    raise ConfigError(f"{label} needs at least {inp.min:g} image(s), got {len(items)}")
                if inp.max is not None and len(items) > inp.max:
                    raise ConfigError(f"{label} takes at most {inp.max:g} image(s), got {len(items)}")
                kw[inp.name] = torch.cat([_square_tensor(it, label, side) for it in items]).to(self.device)
            elif inp.kind == "mask":
                items = _image_list(v, label) if inp.multiple else [v]
                masks = [self._mask(inp, it, prep, n, label) for it in items]
                kw[inp.name] = masks if inp.multiple else masks[0]
            elif inp.kind == "code":
                s = 0 if seed is None else seed
                kw[inp.name] = self._code(inp, v, n, s, label, values.get("direction"))
            elif inp.kind == "seed":
                kw[inp.name] = check_value(inp, v if seed is None else seed, label)
            elif inp.name == "direction" and str(v) not in map(str, inp.choices):
                raise ConfigError(f"{self.method.method_name} translates {', '.join(map(str, inp.choices))}; "
                                  f"got {label} {v!r}")
            else:
                kw[inp.name] = check_value(inp, v, label)
        return kw

    def _call(self, xin: torch.Tensor, kw: dict, want: tuple[str, ...]) -> dict[str, torch.Tensor]:
        optional = [o.name for o in self.outputs[1:] if o.optional and o.name in want]
        for name in optional:
            kw[f"return_{name}"] = True
        try:
            if self.amp:
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    out = self.method.translate(xin, **kw)
                out = _to_float(out)
            else:
                out = self.method.translate(xin, **kw)
        except (RuntimeError, ImageTooSmallError) as e:
            images = {"image": xin, **{k: v for k, v in kw.items() if isinstance(v, torch.Tensor)},
                      **{f"{k}[{i}]": t for k, v in kw.items() if isinstance(v, list) for i, t in enumerate(v)}}
            raise self._too_small(e, images) from None
        if isinstance(out, dict):
            return out
        if isinstance(out, (tuple, list)):
            names = ["image", *optional] if optional else [o.name for o in self.outputs][:len(out)]
            return dict(zip(names, out))
        return {"image": out}

    # ---- how the network runs ------------------------------------------------------------
    def use_runtime(self, runtime: str = "auto", bf16: bool = False, sample=None, size: int | None = None,
                    candidates=None, images: int | None = None, **values):
        """Run the network by ``runtime`` (see :mod:`styleforge.accel`): ``torch``, ``compile``,
        ``onnx``, ``int8``, or ``auto``, the fastest path measured on this machine for this model
        and ``sample``'s size (a path, a PIL image or a 1×C×H×W tensor; default a synthetic 256 px
        image), among those within the quality bound against fp32 eager; the choice is cached.
        ``bf16``: bf16 autocast for the PyTorch paths (``auto`` tries them with and without it,
        and with ``bf16`` only under it).
        ``values``: the model's other inputs, as for :meth:`run_tensor`. A path that cannot run
        (onnxruntime missing, no exported file, compile failing) falls back to eager, named in
        the returned :class:`~styleforge.accel.Choice`'s one-line ``note``. ``images``: how many
        the job translates (``auto`` tries ``compile`` from :data:`~styleforge.accel.COMPILE_MIN_IMAGES`
        on, or when None: a server); ``candidates`` limits ``auto`` to these names."""
        from . import accel

        if runtime not in accel.RUNTIMES:
            raise ConfigError(f"--runtime: unknown runtime {runtime!r}; choose one of "
                              f"{', '.join(r for r in accel.RUNTIMES if r != 'torchscript')}")
        if getattr(self, "_eager", None) is None and self.runtime != "torch":
            # an exported file (no PyTorch model behind it): its own runtime, nothing to choose
            if runtime not in ("auto", self.runtime) and not (runtime == "onnx" and self.runtime == "int8"):
                article = "an" if self.runtime[0] in "aeiou" else "a"  # an int8 / an onnx / a torchscript
                raise ConfigError(f"--runtime {runtime}: {self.source} is {article} {self.runtime} file (give the "
                                  "model directory to use another runtime)")
            if bf16:
                return accel.Choice(self.runtime, f"runtime: {self.runtime} (the file; --bf16 applies to "
                                    "PyTorch paths only, ignored)")
            return accel.Choice(self.runtime, f"runtime: {self.runtime} (the file)")
        base = getattr(self, "_eager", None) or self.method
        self._eager = base
        if not getattr(base, "exportable", True):  # an optimisation per image: nothing to compile or export
            self._set("torch+bf16" if bf16 else "torch")
            if runtime in ("auto", "torch"):
                return accel.Choice(self.runtime, "")
            return accel.Choice(self.runtime, f"runtime: {base.method_name} optimises each image (no network to "
                                f"compile or export): --runtime {runtime} does not apply; running {self.runtime}")
        if runtime == "torchscript":
            raise ConfigError("--runtime torchscript runs a file from 'styleforge export --format torchscript'; "
                              f"{self.source} is a model directory")
        if runtime == "torch":
            self._set("torch+bf16" if bf16 else "torch")
            return accel.Choice(self.runtime, "")  # what was asked: nothing to say
        x = self._sample(sample, size)
        if runtime != "auto":
            return self._explicit(runtime, bf16, x, values)
        names = ["torch", "channels_last"] if self.device.type == "cpu" else ["torch"]
        if images is None or images >= accel.COMPILE_MIN_IMAGES:
            names.append("compile")
        # bf16 variants are tried always (kept only within the PSNR bound); --bf16 asks for them alone
        names = [f"{n}+bf16" for n in names] if bf16 else names + [f"{n}+bf16" for n in names]
        files = {}
        if not bf16 and self.device.type == "cpu" and self.source is not None and self.source.is_dir():
            for kind in ("onnx", "int8"):
                f = accel.exported_file(self.source, base, kind)
                if f is not None:
                    files[kind] = f
                    names.append(kind)
        if candidates is not None:
            names = [n for n in names if n in candidates or n.split("+")[0] in candidates]
        shape = tuple(self._prepare_image(x).x.shape)
        key = accel.cache_key(self.source or base.method_name, shape, bf16, [*names, *files.values()])
        entry = accel.read_cache().get(key) if self.source is not None else None  # in memory: no identity
        if isinstance(entry, dict) and entry.get("choice") in names:
            try:
                self._set(entry["choice"], files)
                self._rows = {r.get("name"): r for r in entry.get("measured", []) if isinstance(r, dict)}
                return accel.Choice(self.runtime, f"runtime: auto took {self.runtime} (measured earlier on "
                                    f"{shape[-1]}×{shape[-2]}: {entry.get('summary', '')}; cached in "
                                    f"{accel.cache_file()})", entry.get("measured", []), cached=True)
            except Exception:  # the file or the compiler went away: measured again
                self._set("torch")
        rows = self._measure(names, x, values, files)
        ok = [r for r in rows if r.ok]
        best = min(ok, key=lambda r: r.seconds) if ok else None
        self._set(best.name if best else "torch", files)
        text = accel.summary(rows)
        self._rows = {r.name: r.row() for r in rows}
        if self.source is not None:
            accel.write_cache(key, {"choice": self.runtime, "summary": text, "shape": list(shape),
                                    "measured": [r.row() for r in rows], "time": time.time()})
        return accel.Choice(self.runtime, f"runtime: auto took {self.runtime} (measured on {shape[-1]}×{shape[-2]}: "
                            f"{text})", [r.row() for r in rows])

    def choose_batch(self, sample=None, size: int | None = None, images: int | None = None,
                     **values) -> "accel.BatchChoice":
        """``auto``'s batch size for a job of ``images`` equal-size images like ``sample`` (as for
        :meth:`use_runtime`, whose path it measures: call that first) on a CPU: batches of 1, 2
        and 4 timed on four variants of the sample (flips: a batch of distinct images, so an
        output that depends on its neighbours shows), stopping when a larger batch is not
        :data:`~styleforge.accel.BATCH_MIN_GAIN` faster per image (:func:`~styleforge.accel.pick_batch`;
        a compiled path's line says each new shape's compile time); a batch whose outputs differ from one
        image at a time beyond the path's bound is refused. Cached beside the runtime choice,
        keyed by the model, the image size, the path and the device. ``size`` None in the
        returned choice: not measured (a GPU, an optimisation per image, a short job), the front
        end's default applies."""
        from . import accel

        base = getattr(self, "_eager", None) or self.method
        row = getattr(self, "_rows", {}).get(self.runtime)
        if (self.device.type != "cpu" or not getattr(base, "exportable", True)
                or not accel.batch_worth_measuring(images, self.runtime, row)):
            return accel.BatchChoice(None)
        x = self._sample(sample, size)
        shape = tuple(self._prepare_image(x).x.shape)
        key = accel.cache_key(self.source or base.method_name, shape, False,
                              ["batch", self.runtime, str(self.device), *accel.BATCH_SIZES])
        where = f"{shape[-1]}×{shape[-2]} with {self.runtime}"
        entry = accel.read_cache().get(key) if self.source is not None else None
        if isinstance(entry, dict) and entry.get("batch") in accel.BATCH_SIZES:
            return accel.BatchChoice(entry["batch"], f"batch size: auto took {entry['batch']} (measured earlier on "
                                     f"{where}: {entry.get('summary', '')}; cached in {accel.cache_file()})",
                                     cached=True)
        values = self._fill_required(dict(values), x)
        seed = next((i.name for i in self.inputs if i.kind == "seed"), None)
        if seed and values.get(seed) is None:
            values[seed] = 0  # the codes of a call: the same for every image of it, in any batch
        # four distinct images of the sample's size: x and its mirror images
        xs = torch.cat([x, x.flip(-1), x.flip(-2), x.flip(-2, -1)])

        def run(xb):
            return self.run_tensor(xb, **dict(values))[0]["image"]

        refs, why, compiles = None, {}, {}

        def per_image(b):
            nonlocal refs
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    seconds, ys, warm = accel.time_batches(run, xs, b)
                except Exception as e:  # batch 1 ran in use_runtime; a file fixed to one image, memory
                    if refs is None:
                        raise
                    why[b] = f"failed ({first_line(e)})"
                    return None
            if refs is None:
                refs = ys
                return seconds
            if self.static_batch:  # the warm-up compiled this batch shape
                compiles[b] = max(0.0, warm - seconds * b)
            if getattr(self.method, "failed", None):  # the compile of the new shape failed
                why[b] = "failed to compile"
                return None
            diff, db = float((ys - refs).abs().max()), accel.psnr(ys, refs)
            if not accel.within_bound(self.runtime, diff, db):
                why[b] = f"refused (max |Δ| {diff:.1e} vs one image at a time)"
                return None
            return seconds

        best, times = accel.pick_batch(per_image)
        text = accel.batch_summary(times, why, compiles)
        if self.source is not None:
            accel.write_cache(key, {"batch": best, "summary": text, "shape": list(shape), "runtime": self.runtime,
                                    "per_image": {str(b): t for b, t in times.items()}, "time": time.time()})
        return accel.BatchChoice(best, f"batch size: auto took {best} (measured on {where}: {text})", times)

    @property
    def static_batch(self) -> bool:
        """Each new batch size compiles the network again (torch.compile, static shapes)."""
        return self.runtime.startswith("compile") and not getattr(self.method, "failed", None)

    def _sample(self, sample, size):
        """A 1×C×H×W tensor in [-1, 1] to measure on: the front end's first input, else a smooth
        synthetic image (colour ramps and a few edges) of 256 px."""
        from .data.transforms import resize_longer_side, to_tensor

        if isinstance(sample, torch.Tensor):
            return _as_batch(sample, "image")[:1].float()
        if sample is not None:
            img = _load_image(sample, "image")
            return to_tensor(resize_longer_side(img, size))[None]
        side = size or 256
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
        x = torch.stack([xx, yy, ((xx * 3).sin() * (yy * 5).cos())])[None] * 0.9
        c = self.method.image_channels  # (an Input's ``channels`` is a mask's, not the image's)
        return x[:, :1].expand(1, c, side, side) if c != 3 else x

    def _fill_required(self, values: dict, x: torch.Tensor) -> dict:
        """Required image inputs nobody gave (a server measures before any request): the sample
        itself as the style image, K copies of it as the K images."""
        from .data.transforms import to_pil

        given = {k for k, v in values.items() if v is not None}
        for inp in self.inputs[1:]:
            if not inp.required or inp.name in given or any(j.replaces == inp.name and j.name in given
                                                            for j in self.inputs):
                continue
            pil = to_pil(x[0, :3].float() if x.shape[1] >= 3 else x[0].expand(3, -1, -1).float())
            if inp.kind == "reference":
                values[inp.name] = [pil] if inp.multiple else pil
            elif inp.kind == "images":
                values[inp.name] = [pil] * max(1, int(inp.min or 1))
        return values

    def _set(self, name: str, files=None):
        """Put the path ``name`` in place (``torch``, ``channels_last``, ``compile``, each
        optionally ``+bf16``; ``onnx`` / ``int8`` from ``files``)."""
        from . import accel

        base = self._eager
        kind, _, amp = name.partition("+")
        if kind in ("onnx", "int8"):
            from .runtime import load_exported

            method, _ = load_exported(files[kind], "onnx")
            method.runtime = kind
            self.method, self.amp = method.to(self.device), False
        else:
            if kind == "compile":
                compiled = getattr(self, "_compiled", None)
                if compiled is None:
                    compiled = self._compiled = accel.Compiled(base)
                self.method = compiled
            else:
                if amp:  # eager bf16: the convolution weights cast once (same output as autocast's)
                    if getattr(self, "_bf16_eager", None) is None:
                        self._bf16_eager = accel.bf16_weights(base)
                    base = self._bf16_eager
                self.method = accel.ChannelsLast(base) if kind == "channels_last" else base
            self.amp = bool(amp)
        self.runtime = name

    def _measure(self, names, x, values, files):
        """Each path run on ``x``: seconds per image and its difference from fp32 eager."""
        from . import accel

        values = self._fill_required(dict(values), x)
        seed = next((i.name for i in self.inputs if i.kind == "seed"), None)
        if seed and values.get(seed) is None:
            values[seed] = 0  # the same random codes for every path

        def run():
            return self.run_tensor(x, **dict(values))[0]["image"]

        self._set("torch")
        with torch.inference_mode():
            first, best, ref = accel.time_call(run)
        rows = [accel.Measured("torch", best, 0.0, math.inf, first)]
        for name in names:
            if name == "torch":
                continue
            try:
                self._set(name, files)
            except ImportError as e:
                rows.append(accel.Measured(name, math.inf, math.inf, -math.inf, ok=False,
                                           error=f"{e.name or 'a module'} is not installed"))
                continue
            except Exception as e:
                rows.append(accel.Measured(name, math.inf, math.inf, -math.inf, ok=False, error=first_line(e)))
                continue
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    row = accel.measure(name, run, ref)
                except ConfigError as e:  # an exported file fixed to other inputs than these
                    row = accel.Measured(name, math.inf, math.inf, -math.inf, ok=False, error=first_line(e))
            failed = getattr(self.method, "failed", None)
            if failed:
                row.ok, row.error = False, failed
            rows.append(row)
        return rows

    def _explicit(self, runtime, bf16, x, values):
        """``--runtime compile|onnx|int8`` given: that path, checked once on ``x`` against fp32
        eager; what cannot run falls back to eager with one line saying why."""
        from . import accel

        files, why = {}, None
        if runtime in ("onnx", "int8"):
            f = accel.exported_file(self.source, self._eager, runtime) if self.source and self.source.is_dir() else None
            if f is None:
                how = " --int8 --calibrate DIR" if runtime == "int8" else ""
                why = (f"no {runtime} file beside {self.source} (make it with 'styleforge export "
                       f"{self.source}{how}')")
            files[runtime] = f
        name = runtime + ("+bf16" if bf16 and runtime == "compile" else "")
        if why is None:
            rows = self._measure([name], x, values, files)
            self._rows = {r.name: r.row() for r in rows}  # the compile time, for choose_batch
            row = rows[-1]
            if row.ok:
                extra = f", compiled in {row.setup_s:.1f} s" if runtime == "compile" else ""
                note = "; --bf16 applies to PyTorch paths only, ignored" if bf16 and runtime != "compile" else ""
                return accel.Choice(name, f"runtime: {name} (max |Δ| {row.max_diff:.1e}, PSNR "
                                    f"{row.psnr:.1f} dB vs fp32 eager{extra}{note})", [r.row() for r in rows])
            why = (f"{runtime} cannot run this model ({row.error})" if row.error else
                   f"{runtime} changes this model's picture (max |Δ| {row.max_diff:.2g}, PSNR {row.psnr:.1f} dB; "
                   f"bound {accel.bound_text(name)})")
        fallback = "torch+bf16" if bf16 else "torch"
        self._set(fallback)
        return accel.Choice(fallback, f"runtime: {why}; running {fallback} instead")

    # ---- running -------------------------------------------------------------------------
    @torch.inference_mode()
    def run_tensor(self, x: torch.Tensor, num_outputs: int = 1, outputs=("image",), labels=None,
                   extra: dict | None = None, **values) -> list[dict[str, torch.Tensor]]:
        """N×C×H×W in [-1, 1] -> one dict per sample k < ``num_outputs`` of the asked
        ``outputs`` (``image``: N×C×H×W in [-1, 1] at the input's size; ``heatmap``: the map
        jet-coloured as an N×3×H×W image in [-1, 1]). ``labels`` name the inputs in errors.
        ``extra``: keyword arguments given to ``translate`` as they are, not declared inputs (a
        video's temporal hooks, ``Method.temporal_consistency``)."""
        x = _as_batch(x, "image")
        num_outputs = self.check_num_outputs(num_outputs, (labels or {}).get("num_outputs", "num_outputs"))
        known = {o.name: o for o in self.outputs}
        for o in outputs:
            if o not in known:
                raise ConfigError(f"{self.method.method_name} gives no {o!r} output"
                                  f" (its outputs: {', '.join(known)})")
        values = self.check_call(values, num_outputs, labels)
        prep = self._prepare_image(x)
        seed_name = next((i.name for i in self.inputs if i.kind == "seed"), None)
        base = values.pop(seed_name, None) if seed_name else None
        if base is not None:
            base = check_value(Input("seed", "seed"), base, (labels or {}).get(seed_name or "seed", "seed"))
        samples = []
        fixed = None
        for k in range(num_outputs):
            seed = output_seed(base, k, num_outputs)
            if fixed is None:
                fixed = self.convert(values, prep, seed, labels)
                kw = dict(fixed)
            else:
                kw = {**fixed, **self.convert(values, prep, seed, labels, random_only=True)}
            res = self._call(prep.x, {**kw, **(extra or {})}, tuple(outputs))
            item = {}
            for name in outputs:
                t = res[name]
                if known[name].kind == "heatmap":
                    from .utils.images import heatmap_image

                    t = heatmap_image(t, res["image"].shape[-2:])
                item[name] = prep.restore(t)
            samples.append(item)
        return samples

    def check_call(self, values: dict, num_outputs: int = 1, labels=None) -> dict:
        """``values`` with the modes that given codes select (:meth:`select_modes`), or a one-line
        error for what cannot run: ``num_outputs`` > 1 where nothing in the call is random (every
        code given, or unused in the chosen mode). Front ends call it before they write anything."""
        values = self.select_modes(values, labels)
        if num_outputs > 1 and not self.random_inputs(values):
            lab = labels or {}
            flag = lab.get("num_outputs", "num_outputs")
            drawn = [i for i in self.inputs if i.drawn]
            given = [lab.get(i.name, i.name) for i in drawn if values.get(i.name) is not None]
            if given:
                raise ConfigError(f"{flag} {num_outputs}: {', '.join(given)} is given, so every output would be the "
                                  "same; leave it out to draw one per output")
            unused = next((i for i in self.inputs if (i.drawn or i.kind == "seed") and not self.used(i, values)), None)
            if unused is None:
                raise ConfigError(f"{flag} {num_outputs}: {self.method.method_name} gives one output per input here")
            name, want = unused.used_when
            ln = lab.get(name, name)
            got = values.get(name, self.input(name).default)
            raise ConfigError(f"{flag} {num_outputs}: {self.method.method_name} with {ln} {got} gives one output per "
                              f"input ({lab.get(unused.name, unused.name)}, its random code, is used only with "
                              f"{ln} {want})")
        return values

    def check_num_outputs(self, n, label: str = "num_outputs") -> int:
        n = _number(Input("n", "int", min=1, max=MAX_OUTPUTS), n, label, True)
        if n > 1 and not self.stochastic:
            raise ConfigError(f"{label}: {self.method.method_name} gives one output per input "
                              "(it has no random code or seed)")
        return n

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, direction=None, return_heatmap: bool = False, **kw):
        """N×C×H×W (or C×H×W) in [-1, 1] -> the same shape in [-1, 1]. ``return_heatmap`` (methods
        with attention maps) also returns the map as a jet-coloured image of the output's size:
        ``(y, heatmap)``."""
        if x.ndim not in (3, 4):
            raise ConfigError(f"expected an N×C×H×W tensor, got shape {tuple(x.shape)}")
        if return_heatmap and not any(o.name == "heatmap" for o in self.outputs):
            raise ConfigError(f"{self.method.method_name} has no attention heatmaps "
                              "(U-GAT-IT and Photo2Cartoon models have)")
        if direction is not None:
            kw["direction"] = direction
        want = ("image", "heatmap") if return_heatmap else ("image",)
        res = self.run_tensor(x, outputs=want, **kw)[0]
        if x.ndim == 3:
            res = {k: v[0] for k, v in res.items()}
        return (res["image"], res["heatmap"]) if return_heatmap else res["image"]

    def run(self, image, size: int | None = None, num_outputs: int = 1, outputs=("image",), labels=None,
            extra: dict | None = None, **values) -> list[dict[str, Image.Image]]:
        """A path or PIL image -> one dict of PIL images (at the image's size) per sample."""
        from .data.transforms import to_tensor

        img = _load_image(image, "image")
        if isinstance(img, torch.Tensor):
            raise ConfigError("run() takes a path or a PIL image; use run_tensor() for tensors")
        x = to_tensor(sized(img, size))[None]
        samples = self.run_tensor(x, num_outputs, outputs, labels, extra=extra, **values)
        return [{k: as_picture(t[0], img.size) for k, t in s.items()} for s in samples]

    def translate_pil(self, img: Image.Image, direction=None, size: int | None = None, **kw) -> Image.Image:
        if direction is not None:
            kw["direction"] = direction
        return self.run(img.convert("RGB"), size=size, **kw)[0]["image"]

    def __call__(self, image, direction=None, **kw):
        """A tensor -> a tensor; a path or PIL image -> a PIL image, or a list of them when
        ``num_outputs`` > 1; an H×W×3 numpy array -> an H×W×3 array of the same kind (uint8
        0..255, or float32 0..1 for a float array)."""
        if isinstance(image, torch.Tensor):
            return self.translate_tensor(image, direction, **kw)
        array = _is_array(image)
        if array:
            import numpy as np

            floats = np.issubdtype(image.dtype, np.floating)
            image = array_image(image, "image")
        if not isinstance(image, (str, Path, Image.Image)):
            raise ConfigError(f"cannot translate a {type(image).__name__}: give a PIL image, a path, an H×W×3 "
                              "numpy array or a tensor")
        if direction is not None:
            kw["direction"] = direction
        out = [s["image"] for s in self.run(image, **kw)]
        if array:
            out = [np.asarray(o, dtype=np.float32) / 255 if floats else np.asarray(o) for o in out]
        return out[0] if len(out) == 1 else out


# ---- loading -----------------------------------------------------------------------------------
def load(path, device=None, runtime: str = "auto") -> Pipeline:
    """The one loader every front end uses: a model directory (or a run folder: its ``model/``;
    or a model's name, ``cyclegan/horse2zebra`` once pulled or ``hf:org/name``) run by PyTorch, or a file made by ``styleforge export`` (ONNX through onnxruntime,
    TorchScript through torch.jit). ``device``: auto (default; under ``torchrun`` with CUDA each
    process takes ``cuda:LOCAL_RANK``), cpu, cuda, cuda:N."""
    from .runtime import RUNTIMES, load_exported
    from .pull import resolve

    p = resolve(path)  # a name: cyclegan/horse2zebra (pulled), hf:org/name
    if not p.exists():
        import re

        from .zoo import close_names

        # what could be a mistyped name (METHOD/NAME, or NAME alone), not a path given in full
        close = close_names(str(path), cutoff=0.8) if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(path)) else []
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CheckpointError(f"model not found: {path}{hint} (a model directory, a run folder, a file made by "
                              "'styleforge export', or a model's name: 'styleforge models' lists them)")
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if device in (None, "auto") and torchrun_rank().distributed:  # exported files too: one GPU per process
        device = process_device(device)
    if runtime in ("torch", "compile") and p.is_file() and p.suffix == ".onnx":
        raise ConfigError(f"--runtime {runtime} runs a model directory in PyTorch, and {p} is an ONNX file: leave "
                          "--runtime out to run it by onnxruntime, or give the model directory it was exported from")
    if runtime in ("torch", "compile") or (runtime == "auto" and p.is_dir()):
        pipe = Pipeline.from_dir(p, device=device)  # the path itself: use_runtime(runtime)
        pipe.source = p
        return pipe
    if p.is_dir():
        make = "--int8 --calibrate YOUR_IMAGES/" if runtime == "int8" else f"--format {runtime}"
        raise ConfigError(f"--runtime {runtime} runs an exported file, and {p} is a model directory; "
                          f"make the file with 'styleforge export {p} {make}'")
    method, default_device = load_exported(p, runtime)
    pipe = Pipeline(method, device=device or default_device)
    pipe.source = p
    return pipe


def load_for_runtime(path, device=None, runtime: str = "auto") -> "Pipeline":
    """What a front end loads for ``--runtime``: a model directory (or a model's name) as eager
    PyTorch, whose :meth:`Pipeline.use_runtime` then picks the path (the exported file beside
    it, or torch with a note); an exported file with its own runtime."""
    from .pull import resolve

    p = resolve(path)
    eager = p.is_dir() and runtime != "torchscript"
    return load(p, device=device, runtime="auto" if eager else runtime)


def _to_float(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float(v) for v in out)
    return out


def pil_outputs_name(name: str, k: int | None = None, output: str = "image", style: str | None = None) -> str:
    """The file name of one output: ``NAME.EXT``; ``NAME__STYLE.EXT`` for a content×style grid;
    ``NAME_k.EXT`` for sample k of N; ``NAME_heatmap.EXT`` for the heatmap output."""
    p = Path(name)
    stem = p.stem
    if style:
        stem += f"__{style}"
    if k is not None:
        stem += f"_{k}"
    if output != "image":
        stem += f"_{output}"
    return stem + p.suffix


__all__ = ["Pipeline", "load", "check_value", "declared_inputs", "declared_outputs", "pad_to_multiple",
           "is_stochastic", "input_used", "resize_square"]
