"""Deep Photo Style Transfer: Luan, Paris, Shechtman & Bala, CVPR 2017, as in the authors' code
(luanfujun/deep-photo-styletransfer: ``neuralstyle_seg.lua``, ``deepmatting_seg.lua``,
``gen_laplacian/``). It is the Gatys et al. optimisation (``methods/gatys.py``) with a
segmentation-guided style loss and a photorealism term.

Paper symbol -> code name:
  I, S (input, style photos)          ``x``, ``style``
  L_c^ℓ (eq. 1), α_ℓ                  content MSE at ``content_layers`` (relu4_2), ``content_weight`` 5
  L_s+^ℓ (eq. 3), β_ℓ, Γ = 100        segmented Gram loss at ``style_layers`` (relu1_1 ... relu5_1),
                                      ``style_weight`` 100
  M_{ℓ,c}[I], M_{ℓ,c}[S] (section 3.2)  ``content_seg`` / ``style_seg``: colour-coded label images
                                      (the authors' nine colours, ``losses.guided.color_label_masks``);
                                      per label c, the Grams of features ∘ mask, divided by C·H·W
                                      times the mask's mean, the loss weighted by the content mask's
                                      mean (``StyleLossWithSeg``); masks reach each layer by a 3×3
                                      mean filter at each conv and a bilinear halving at each pool
  L_m (eq. 2), M_I, V_c[O], λ = 10⁴   ``losses.matting.MattingLoss``: λ Σ_c V_c[O]ᵀ M_I V_c[O],
                                      ``matting_weight``; M_I the matting Laplacian of the input,
                                      3×3 windows, ε = ``matting_eps`` 1e-7, the input resized so its
                                      longer side is ``size`` 700 (``reshape_img``, sizes floored)
  total variation                     ``tv_weight`` 1e-3 on 0-255 pixels, ½ Σ (∇x)² (the Lua TVLoss's
                                      gradient; ``tv_exponent`` 2)
  the two stages (section 4)          1: segmented transfer from noise (N(0, 1e-4²) around the mean
                                      pixel, ``neuralstyle_seg.lua``); 2: from stage 1's result with
                                      the photorealism term (``deepmatting_seg.lua``); 1000 L-BFGS
                                      iterations each (``stage_iterations``)

Videos: as Gatys (``methods/gatys.py``, Ruder et al. 2016): stage 1 starts from the previous
stylised frame warped by the optical flow, both stages add the temporal loss (``temporal_weight``).

Deviations: the authors' style gradient is hand-written and leaves out the mask-mean factors of
their loss; here autograd differentiates the loss they print. Labels present in the input but
absent from the style image are skipped (the authors' code matches them to a zero Gram, which
pushes that region's features to zero). The optional post-process of the authors
(``SmoothLocalAffine``, a joint bilateral refit of local affine colour models) is not included.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..losses.guided import DPST_COLORS, color_label_masks, guided_gram, propagate_mask
from ..losses.matting import MattingLoss, matting_laplacian
from ..registry import register_method
from ..utils.seed import seeded_generator
from .base import Input
from .gatys import ENCODERS, GatysStyleTransfer, autograd_copy, fit_like, image_n, resize_longer


@register_method("photo")
class DeepPhotoStyleTransfer(GatysStyleTransfer):
    region_weighting = "area"
    not_trainable = "optimises the image at inference (no network to train); use styleforge stylize --method photo"
    max_side = 4096

    def __init__(self, vgg_weights=None, vgg_format="caffe", pooling="max", content_layers=("relu4_2",),
                 content_weight=5.0, style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 style_layer_weights=None, style_weight=100.0, tv_weight=1e-3, tv_exponent=2.0, size=700,
                 style_scale=1.0, stage_iterations=(1000, 1000), matting_weight=1e4, matting_eps=1e-7,
                 noise_std=1e-4, seg_colors=tuple(DPST_COLORS), optimizer="lbfgs", lr=1.0,
                 lbfgs_history=100, stall_tol=0.0, stall_patience=20, progress=True, temporal_weight=1e3):
        if len(stage_iterations) != 2:
            raise ConfigError(f"photo: stage_iterations needs two numbers (segmented stage, photorealism "
                              f"stage), got {list(stage_iterations)}")
        super().__init__(vgg_weights=vgg_weights, vgg_format=vgg_format, pooling=pooling,
                         content_layers=content_layers, content_weight=content_weight, style_layers=style_layers,
                         style_layer_weights=style_layer_weights, style_weight=style_weight, tv_weight=tv_weight,
                         tv_exponent=tv_exponent, sizes=(size,), iterations=(stage_iterations[0],),
                         style_scale=style_scale, optimizer=optimizer, lr=lr, lbfgs_history=lbfgs_history,
                         init="noise", noise_std=noise_std, mask_propagation="dpst", stall_tol=stall_tol,
                         stall_patience=stall_patience, progress=progress, temporal_weight=temporal_weight)
        unknown = [c for c in seg_colors if c not in DPST_COLORS]
        if unknown or not seg_colors:
            raise ConfigError(f"photo: seg_colors has unknown colour {unknown[0] if unknown else None!r}; "
                              f"known: {', '.join(DPST_COLORS)}")
        self.seg_colors = tuple(seg_colors)
        self.stage_iterations = [int(i) for i in stage_iterations]
        self.opts.update(matting_weight=float(matting_weight), matting_eps=float(matting_eps), size=int(size))

    @classmethod
    def preset_inputs(cls) -> list[Input]:
        # the segmented Grams walk VGG's layers (mask_propagation dpst): VGG-19 is the only encoder
        return [replace(i, choices=ENCODERS[:1]) if i.name == "encoder" else i for i in super().preset_inputs()]

    @classmethod
    def preset_size(cls, config, size, label="size"):
        # one size (the matting Laplacian's and both stages'): ``size``, not Gatys' ``sizes``
        return {**config, "size": super().preset_size({"sizes": [size]}, size, label)["sizes"][-1]}

    def inference_options(self) -> list[Input]:
        c = self.opts
        return [
            Input("style", "reference", required=True, help="the style photo"),
            Input("content_seg", "mask", channels=3,
                  help="colour-coded segmentation of the input (blue, green, black, white, red, yellow, "
                       "grey, lightblue, purple)"),
            Input("style_seg", "mask", channels=3, help="colour-coded segmentation of the style photo"),
            Input("iterations", "int", min=0, max=100000,
                  help="iterations of each stage (default " + ", ".join(map(str, self.stage_iterations)) + ")"),
            Input("content_weight", "float", default=c["content_weight"], min=0, help="weight of the content loss"),
            Input("style_weight", "float", default=c["style_weight"], min=0, help="weight of the style loss"),
            Input("tv_weight", "float", default=c["tv_weight"], min=0, help="weight of the total variation"),
            Input("matting_weight", "float", default=c["matting_weight"], min=0,
                  help="λ of the photorealism (matting Laplacian) term"),
            Input("photorealism", "flag", default=True,
                  help="run the second stage with the photorealism term (off: the segmented transfer only)"),
            Input("seed", "seed", default=0, help="seed of the noise the first stage starts from"),
        ]

    def stylize(self, x, style=None, content_seg=None, style_seg=None, iterations=None, content_weight=None,
                style_weight=None, tv_weight=None, matting_weight=None, photorealism=True, seed=0, init_image=None,
                temporal=None):
        """Returns (N×3×H×W in [-1, 1] at x's size, [per image: [stage 1 losses, stage 2 losses]]).
        ``init_image``, ``temporal``: a video's previous frame, as in Gatys (Ruder et al. 2016):
        stage 1 starts from ``init_image``, both stages add the temporal loss."""
        c = self.opts
        styles = [s for s in ([style] if isinstance(style, torch.Tensor) else list(style or []))]
        if len(styles) != 1:
            raise ConfigError(f"photo: give one style image, got {len(styles)}")
        if (content_seg is None) != (style_seg is None):
            raise ConfigError("photo: give both content_seg and style_seg (or neither)")
        opts = dict(content_weight=c["content_weight"] if content_weight is None else float(content_weight),
                    style_weight=c["style_weight"] if style_weight is None else float(style_weight),
                    tv_weight=c["tv_weight"] if tv_weight is None else float(tv_weight))
        lam = c["matting_weight"] if matting_weight is None else float(matting_weight)
        iters = self.stage_iterations if iterations is None else [int(iterations)] * 2
        self.ensure_vgg()
        outs, history = [], []
        with torch.inference_mode(False), torch.enable_grad():
            x = autograd_copy(x).float()
            s = autograd_copy(styles[0]).float()
            cseg = None if content_seg is None else autograd_copy(content_seg).float()
            sseg = None if style_seg is None else autograd_copy(style_seg).float()
            for n in range(x.shape[0]):
                gen = seeded_generator(seed)  # every image the same seed: batch-independent
                cs = None if cseg is None else cseg[min(n, cseg.shape[0] - 1)][None]
                video = (image_n(init_image, n), None if temporal is None else tuple(image_n(t, n) for t in temporal))
                y, hist = self._photo_one(x[n:n + 1], s, cs, sseg, iters, opts, lam, photorealism, gen, *video)
                outs.append(y)
                history.append(hist)
        return torch.cat(outs).detach(), history

    def _photo_one(self, content, style, cseg, sseg, iters, opts, lam, photorealism, gen, init_image=None,
                   temporal=None):
        h, w = content.shape[-2:]
        c = resize_longer(content, self.opts["size"], floor=True)
        s = resize_longer(style, round(max(c.shape[-2:]) * self.opts["style_scale"]))
        regions = self._segmented_targets(s, c.shape[-2:], cseg, sseg)
        start = self.start_noise(c, gen) if init_image is None else fit_like(init_image, c)
        temporal_term = self.temporal_term(temporal, c) or {}
        result, l1 = self.optimise(c, start, regions, iters[0], opts, extra=temporal_term or None,
                                    desc="photo stage 1")
        hist = [l1]
        if photorealism and iters[1] > 0:
            extra = dict(temporal_term)
            if lam:
                lap = matting_laplacian((c[0] + 1) / 2, eps=self.opts["matting_eps"])
                extra["matting"] = MattingLoss(lap, lam).to(c.device)
            result, l2 = self.optimise(c, result, regions, iters[1], opts, extra=extra, desc="photo stage 2")
            hist.append(l2)
        if tuple(result.shape[-2:]) != (h, w):
            result = F.interpolate(result, size=(h, w), mode="bicubic", align_corners=False)
        return result.clamp(-1, 1), hist

    def _segmented_targets(self, style, content_hw, cseg, sseg):
        """[(content mask of label k at the input size, {layer: style Gram of label k}, 1)] (one
        region without masks when no segmentation is given)."""
        layers = self.style_layers
        with torch.no_grad():
            feats = self.vgg_features(style, layers)
            if cseg is None:
                return [(None, {l: guided_gram(feats[l]) for l in layers}, 1.0)]
            # the authors scale the label images bilinearly, then threshold the colour codes
            cl = color_label_masks(F.interpolate(cseg, size=tuple(content_hw), mode="bilinear",
                                                 align_corners=False).clamp(0, 1), self.seg_colors)
            sl = color_label_masks(F.interpolate(sseg[:1], size=tuple(style.shape[-2:]), mode="bilinear",
                                                 align_corners=False).clamp(0, 1), self.seg_colors)
            sizes = {l: feats[l].shape[-2:] for l in layers}
            regions = []
            for k in range(len(self.seg_colors)):
                if cl[:, k].sum() == 0 or sl[:, k].sum() == 0:
                    continue
                sm = propagate_mask(sl[:, k:k + 1], self.vgg.names, sizes, "dpst")
                regions.append((cl[:, k:k + 1], {l: guided_gram(feats[l], sm[l]) for l in layers}, 1.0))
            if not regions:
                raise ConfigError("photo: content_seg and style_seg share no label colour "
                                  f"(colours: {', '.join(self.seg_colors)})")
            return regions
