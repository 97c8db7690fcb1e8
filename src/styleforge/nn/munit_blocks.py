"""Encoder/decoder pieces of the shared-latent translators (UNIT, MUNIT; FUNIT builds on them),
with what UNIT and MUNIT share beyond the blocks: one decode for several calls and their
checkpoint layout (their init schemes are ``nn.init.init_nvlabs``, their discriminator
``nn.discriminators.build_ms_discriminator``).

Laid out as NVlabs' ``networks.py`` names them, so the authors' checkpoints load by key:
``ConvBlock`` has ``.pad`` (parameter-free), ``.conv``, ``.norm``; residual blocks sit in
``ResBlocks.model.<i>.model.<0|1>``; encoders and decoders keep their layers in ``.model``; the
MLP's linear layers are ``model.<i>.fc``. Where their code assigns AdaIN parameters into the norm
layers before a forward (stateful), the decoders here take them as an argument: the same
arithmetic, and a network that traces to ONNX with the style code as an input.

Conventions kept from their code (they change outputs or parameter counts):
every conv has a bias; the padding is an explicit layer (``reflect`` in all shipped configs);
the content encoder and UNIT's decoder use instance norm without affine; the up-sampling path uses
:class:`~styleforge.nn.norms.LayerNormStd` (unbiased std, eps added to the std); AdaIN uses the
biased variance with eps inside the square root (their ``F.batch_norm`` in training mode).
"""
from __future__ import annotations

import re

import torch
from torch import nn

from ..checkpoint import load_state_dict_strict, read_state_dicts
from ..errors import CheckpointError, ConfigError
from .norms import AdaIN, LayerNormStd

BLOCK_NORMS = ("in", "ln", "adain", "bn", "none")
BLOCK_ACTS = ("relu", "lrelu", "prelu", "selu", "tanh", "none")
BLOCK_PADS = ("reflect", "replicate", "zero")


def _activation(name: str) -> nn.Module | None:
    if name not in BLOCK_ACTS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(BLOCK_ACTS)}")
    return {"relu": lambda: nn.ReLU(True), "lrelu": lambda: nn.LeakyReLU(0.2, True),
            "prelu": nn.PReLU, "selu": lambda: nn.SELU(True), "tanh": nn.Tanh,
            "none": lambda: None}[name]()


def _norm(name: str, ch: int) -> nn.Module | None:
    if name not in BLOCK_NORMS:
        raise ConfigError(f"unknown norm {name!r}; choose one of {', '.join(BLOCK_NORMS)}")
    return {"in": lambda: nn.InstanceNorm2d(ch), "ln": lambda: LayerNormStd(ch),
            "adain": lambda: AdaIN(ch), "bn": lambda: nn.BatchNorm2d(ch),
            "none": lambda: None}[name]()


class ConvBlock(nn.Module):
    """pad -> conv (with bias) -> [norm] -> [activation]; ``adain`` norms take (weight, bias)."""

    def __init__(self, in_ch, out_ch, k, stride=1, padding=0, norm="none", act="relu",
                 pad="zero"):
        super().__init__()
        if pad not in BLOCK_PADS:
            raise ConfigError(f"unknown padding {pad!r}; choose one of {', '.join(BLOCK_PADS)}")
        self.pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d,
                    "zero": nn.ZeroPad2d}[pad](padding)
        self.conv = nn.Conv2d(in_ch, out_ch, k, stride, bias=True)
        self.norm = _norm(norm, out_ch)
        self.activation = _activation(act)

    @property
    def adaptive(self) -> bool:
        return isinstance(self.norm, AdaIN)

    def forward(self, x, weight=None, bias=None):
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x, weight, bias) if self.adaptive else self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ResBlock(nn.Module):
    """x + [conv3 norm act, conv3 norm] (``model.0``, ``model.1``)."""

    def __init__(self, dim, norm="in", act="relu", pad="zero"):
        super().__init__()
        self.model = nn.Sequential(ConvBlock(dim, dim, 3, 1, 1, norm, act, pad),
                                   ConvBlock(dim, dim, 3, 1, 1, norm, "none", pad))

    def forward(self, x, params=None):
        """``params``: N×(4·dim) AdaIN parameters when the norm is ``adain``, in the authors'
        order per layer: bias (their "mean") then weight (their "std")."""
        if params is None:
            return x + self.model(x)
        out = x
        for i, block in enumerate(self.model):
            p = params[:, 2 * i * block.conv.out_channels:]
            c = block.conv.out_channels
            out = block(out, weight=p[:, c:2 * c], bias=p[:, :c])
        return x + out


class ResBlocks(nn.Module):
    def __init__(self, num_blocks, dim, norm="in", act="relu", pad="zero"):
        super().__init__()
        self.model = nn.Sequential(*(ResBlock(dim, norm, act, pad) for _ in range(num_blocks)))

    def forward(self, x, params=None):
        if params is None:
            return self.model(x)
        per_block = 4 * x.shape[1]
        for i, block in enumerate(self.model):
            x = block(x, params[:, i * per_block:(i + 1) * per_block])
        return x


class ContentEncoder(nn.Module):
    """7×7 conv, ``n_down`` stride-2 4×4 convs doubling the width, ``n_res`` residual blocks.
    N×C×H×W -> N×(dim·2^n_down)×H/2^n_down×W/2^n_down."""

    def __init__(self, n_down, n_res, in_ch, dim, norm="in", act="relu", pad="zero"):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(in_ch, dim, 7, 1, 3, norm, act, pad)]
        for _ in range(n_down):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, norm, act, pad))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, norm, act, pad))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x):
        return self.model(x)


class StyleEncoder(nn.Module):
    """7×7 conv, two width-doubling stride-2 convs, ``n_down - 2`` more at constant width, global
    average pooling and a 1×1 conv to ``style_dim``: N×C×H×W -> N×style_dim×1×1."""

    def __init__(self, n_down, in_ch, dim, style_dim, norm="none", act="relu", pad="zero"):
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(in_ch, dim, 7, 1, 3, norm, act, pad)]
        for _ in range(2):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1, norm, act, pad))
            dim *= 2
        for _ in range(n_down - 2):
            layers.append(ConvBlock(dim, dim, 4, 2, 1, norm, act, pad))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x):
        return self.model(x)


class Decoder(nn.Module):
    """Residual blocks (``res_norm``: ``adain`` in MUNIT, ``in`` in UNIT), then ``n_up`` times
    (nearest ×2 up-sampling, 5×5 conv halving the width, layer norm), then a 7×7 conv and tanh."""

    def __init__(self, n_up, n_res, dim, out_ch, res_norm="adain", act="relu", pad="zero"):
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, res_norm, act, pad)]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2),
                       ConvBlock(dim, dim // 2, 5, 1, 2, "ln", act, pad)]
            dim //= 2
        layers.append(ConvBlock(dim, out_ch, 7, 1, 3, "none", "tanh", pad))
        self.model = nn.Sequential(*layers)

    def num_adain_params(self) -> int:
        return sum(2 * m.num_features for m in self.modules() if isinstance(m, AdaIN))

    def forward(self, x, adain_params=None):
        """``adain_params``: N×num_adain_params() (MUNIT's MLP output) or None (UNIT)."""
        x = self.model[0](x, adain_params)
        for layer in self.model[1:]:
            x = layer(x)
        return x


class LinearBlock(nn.Module):
    def __init__(self, in_dim, out_dim, act="relu"):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim, bias=True)
        self.activation = _activation(act)

    def forward(self, x):
        x = self.fc(x)
        return x if self.activation is None else self.activation(x)


class MLP(nn.Module):
    """``n_blk`` linear layers (the last without activation): N×in_dim(×1×1) -> N×out_dim."""

    def __init__(self, in_dim, out_dim, dim, n_blk, act="relu"):
        super().__init__()
        layers = [LinearBlock(in_dim, dim, act)]
        layers += [LinearBlock(dim, dim, act) for _ in range(n_blk - 2)]
        layers.append(LinearBlock(dim, out_dim, "none"))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x.reshape(x.shape[0], -1))


def drop_norm_buffers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' generator state dicts without norm running statistics: their AdaIN layers
    register dummy ``running_mean``/``running_var`` buffers, and files written by PyTorch 0.3
    carry them for every instance norm too; none of these layers uses them."""
    return {k: v for k, v in sd.items()
            if not k.endswith((".running_mean", ".running_var", ".num_batches_tracked"))}


# ---- what UNIT and MUNIT build alike (NVlabs' ``networks.py``, ``utils.py``) -------------------
def decode_together(decode, *calls):
    """``[decode(*args) for args in calls]`` as one call on the concatenated arguments, split back
    (one larger batch runs faster than several batches of one). The same values: every layer of
    these decoders works per sample (AdaIN, instance and layer norm; no batch norm). Calls whose
    tensors differ in shape beyond the batch run one by one."""
    first = calls[0]
    if any(len(c) != len(first) or any(t.shape[1:] != f.shape[1:] for t, f in zip(c, first)) for c in calls):
        return [decode(*c) for c in calls]
    sizes = [c[0].shape[0] for c in calls]
    return list(decode(*(torch.cat(ts) for ts in zip(*calls))).split(sizes))


# ---- the authors' UNIT/MUNIT checkpoints ----------------------------------------------------
def load_nvlabs_generators(path) -> tuple[dict, dict]:
    """The ``{'a': state_dict, 'b': state_dict}`` of a UNIT/MUNIT ``gen_XXXXXXXX.pt``, without
    the norm running statistics (AdaIN's dummy buffers, PyTorch 0.3's instance-norm stats)."""
    sds = read_state_dicts(path, ("a", "b"), ("a", "b"), "a generator checkpoint gen_XXXXXXXX.pt "
                           "(keys 'a' and 'b')")
    return drop_norm_buffers(sds["a"]), drop_norm_buffers(sds["b"])


def key_indices(sd, pattern) -> list[int]:
    """The sorted distinct integers the first group of ``pattern`` matches in ``sd``'s keys."""
    return sorted({int(m.group(1)) for k in sd if (m := re.match(pattern, k))})


def content_encoder_options(sd: dict, prefix: str, path) -> dict:
    """dim, input channels, n_downsample, n_res of a ContentEncoder under ``prefix``."""
    key = f"{prefix}.model.0.conv.weight"
    if key not in sd:
        raise CheckpointError(f"{path} has no {key}: not a UNIT/MUNIT generator")
    convs = key_indices(sd, rf"{re.escape(prefix)}\.model\.(\d+)\.conv\.weight")
    res = key_indices(sd, rf"{re.escape(prefix)}\.model\.\d+\.model\.(\d+)\.model\.0\.conv\.weight")
    return {"dim": sd[key].shape[0], "in_ch": sd[key].shape[1], "n_downsample": len(convs) - 1,
            "n_res": len(res)}


def load_generator(net: nn.Module, sd: dict, path, name: str) -> None:
    load_state_dict_strict(net, sd, f"{path} ({name})", "the generator built from its shapes")
