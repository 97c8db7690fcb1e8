"""MobileFaceNet (Chen et al. 2018, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face
Verification on Mobile Devices") and the face-ID distance Photo2Cartoon trains with.

The layer names are those of the ``MobileFaceNet`` in TreB1eN/InsightFace_Pytorch, whose
``model_mobilefacenet.pth`` minivision-ai distribute for Photo2Cartoon's face-ID loss, so that
file loads unchanged (:func:`load_mobilefacenet`, ``torch.load(weights_only=True)``)::

    conv1       conv 3x3/2 3->64, BN, PReLU                           112 -> 56
    conv2_dw    depthwise 3x3 64, BN, PReLU
    conv_23     bottleneck 64 -> (128) -> 64, stride 2                 56 -> 28
    conv_3      4 residual bottlenecks 64 (expansion to 128)
    conv_34     bottleneck 64 -> (256) -> 128, stride 2                28 -> 14
    conv_4      6 residual bottlenecks 128 (256)
    conv_45     bottleneck 128 -> (512) -> 128, stride 2               14 -> 7
    conv_5      2 residual bottlenecks 128 (256)
    conv_6_sep  1x1 128 -> 512, BN, PReLU
    conv_6_dw   global depthwise 7x7 512 (no activation)                 7 -> 1
    linear      512 -> embedding (no bias), bn (BatchNorm1d); output L2-normalised

A bottleneck (``conv``: 1x1 expansion + BN + PReLU, ``conv_dw``: depthwise 3x3 + BN + PReLU,
``project``: 1x1 + BN) adds its input when it is residual. The network expects 112x112 faces
in [-1, 1] (their training normalised pixels to (x - 127.5) / 128).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict, read_state_dict
from ..errors import CheckpointError

INPUT_SIZE = 112


class ConvBNPReLU(nn.Module):
    """conv (no bias) -> BN -> PReLU (their ``Conv_block``: keys conv, bn, prelu)."""

    def __init__(self, cin, cout, k=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)

    def forward(self, x):
        return self.prelu(self.bn(self.conv(x)))


class ConvBN(nn.Module):
    """conv (no bias) -> BN, no activation (their ``Linear_block``)."""

    def __init__(self, cin, cout, k=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class Bottleneck(nn.Module):
    """1x1 expansion to ``mid`` -> depthwise 3x3 (stride) -> 1x1 projection; + x if residual
    (their ``Depth_Wise``; ``mid`` is their ``groups`` argument)."""

    def __init__(self, cin, cout, mid, stride=1, residual=False):
        super().__init__()
        self.residual = residual
        self.conv = ConvBNPReLU(cin, mid)
        self.conv_dw = ConvBNPReLU(mid, mid, 3, stride, 1, groups=mid)
        self.project = ConvBN(mid, cout)

    def forward(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class ResidualStack(nn.Module):
    """``n`` residual bottlenecks at constant width (their ``Residual``: keys model.N)."""

    def __init__(self, ch, n, mid):
        super().__init__()
        self.model = nn.Sequential(*[Bottleneck(ch, ch, mid, residual=True) for _ in range(n)])

    def forward(self, x):
        return self.model(x)


class MobileFaceNet(nn.Module):
    """112x112 face in [-1, 1] -> L2-normalised embedding (N x ``embedding_size``)."""

    def __init__(self, embedding_size: int = 512):
        super().__init__()
        self.conv1 = ConvBNPReLU(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBNPReLU(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = Bottleneck(64, 64, 128, stride=2)
        self.conv_3 = ResidualStack(64, 4, 128)
        self.conv_34 = Bottleneck(64, 128, 256, stride=2)
        self.conv_4 = ResidualStack(128, 6, 256)
        self.conv_45 = Bottleneck(128, 128, 512, stride=2)
        self.conv_5 = ResidualStack(128, 2, 256)
        self.conv_6_sep = ConvBNPReLU(128, 512)
        self.conv_6_dw = ConvBN(512, 512, 7, groups=512)  # global depthwise: 7x7 -> 1x1
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x):
        for name in ("conv1", "conv2_dw", "conv_23", "conv_3", "conv_34", "conv_4", "conv_45",
                     "conv_5", "conv_6_sep", "conv_6_dw"):
            x = getattr(self, name)(x)
        return F.normalize(self.bn(self.linear(x.flatten(1))), dim=1)


def load_mobilefacenet(path, device="cpu") -> MobileFaceNet:
    """Read ``model_mobilefacenet.pth`` (a state dict of the network above; a ``module.`` prefix
    from DataParallel is accepted, and ``num_batches_tracked`` may be absent, as in files saved
    by old PyTorch). Returns the network in eval mode with every parameter frozen."""
    expected = "a MobileFaceNet state dict (model_mobilefacenet.pth)"
    sd = read_state_dict(path, "face-recognition weights", expected)
    emb = sd.get("linear.weight")
    if emb is None or emb.ndim != 2 or emb.shape[1] != 512:
        raise CheckpointError(
            f"{path} is not {expected}: no linear.weight of shape (embedding, 512); found keys such "
            f"as {list(sd)[:3]}")
    net = MobileFaceNet(emb.shape[0])
    load_state_dict_strict(net, sd, path, "MobileFaceNet")
    net.requires_grad_(False)
    return net.to(device).eval()


def face_crop_box(h: int, w: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the face square Photo2Cartoon's ID loss looks at in an
    aligned h x w portrait (their ``FaceFeatures.infer``): rows from 0.47/2.1 h to h - 0.3/2.1 h
    (truncated to integers), the same width, centred horizontally. 256 -> rows 57:219, cols 47:209."""
    top = int(h / 2.1 * (0.8 - 0.33))
    bottom = int(h - h / 2.1 * 0.3)
    size = bottom - top
    left = int(w / 2 - size / 2)
    return top, bottom, left, left + size


def face_embedding(net: MobileFaceNet, x: torch.Tensor) -> torch.Tensor:
    """Aligned portraits N x 3 x H x W in [-1, 1] -> embeddings: crop :func:`face_crop_box`,
    bilinear resize (corners aligned) to 112 x 112, MobileFaceNet."""
    top, bottom, left, right = face_crop_box(*x.shape[-2:])
    face = F.interpolate(x[:, :, top:bottom, left:right], size=(INPUT_SIZE, INPUT_SIZE),
                         mode="bilinear", align_corners=True)
    return net(face)


def face_id_distance(net: MobileFaceNet, photo: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - cos(embedding(photo), embedding(other)) (Photo2Cartoon's face-ID
    loss; per sample it is their ``cosine_distance``). The photo side takes no gradient: only
    ``other`` (the generated image) is being optimised, so the gradients are the same."""
    with torch.no_grad():
        e_photo = face_embedding(net, photo)
    e_other = face_embedding(net, other)
    return (1 - F.cosine_similarity(e_photo, e_other, dim=1)).mean()
