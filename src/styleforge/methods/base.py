"""The contract every method follows (docs/architecture.md explains how the trainer uses it).

A method is an ``nn.Module`` whose constructor keyword arguments are its saved config: the
wrapper installed by ``__init_subclass__`` records them (defaults filled in) in ``self.config``,
so ``type(m)(**m.config)`` rebuilds the same networks and a model directory needs no per-method
loading code.

Training: ``training_step(batch)`` is a generator of :class:`Phase` objects. For each phase the
trainer back-propagates ``sum(phase.losses.values())`` and, when ``phase.step`` is true, steps the
optimizer named ``phase.optimizer`` (then calls ``after_step``). Because it is a generator, the
method computes its next phase only after the previous backward has run: a GAN's discriminator
step sees the generator already updated, exactly as in the authors' loops, and a method may split
one optimizer's loss into several phases (``step=False`` on all but the last) so that each part's
activations are freed before the next is built.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from ..errors import ConfigError


@dataclass
class Phase:
    optimizer: str
    losses: dict[str, torch.Tensor]
    step: bool = True
    # values to log that are not part of the loss (accuracies, norms, ...)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceOption:
    """A keyword argument of ``translate`` that a user may set (the web app builds its form, and
    checks the values, from these). ``kind``: ``float``/``int`` (within ``min``..``max``),
    ``bool``, ``choice`` (one of ``choices``) or ``image`` (a reference image, given to
    ``translate`` as a 1×3×H×W tensor in [-1, 1])."""

    name: str
    kind: str
    default: object = None
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    help: str = ""


class Method(nn.Module):
    method_name = "?"  # set by @register_method
    # dataset kind the method trains on (styleforge.data.datasets.build_dataset)
    data_kind = "unpaired"
    # translation directions offered by translate(); the first is the default
    directions: tuple[str, ...] = ("AtoB",)
    # submodules an inference snapshot (model directory) keeps; the rest is training-only
    inference_modules: tuple[str, ...] = ()
    # input height and width must be multiples of this (translate pads to it)
    size_multiple = 1
    # networks with a fixed input size (fully-connected layers) set it: translate resizes
    fixed_size: int | None = None
    # translate(x, direction, return_heatmap=True) -> (y, N×1×h×w attention map) is supported
    has_heatmaps = False

    config: dict

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        sig = inspect.signature(init)
        for p in list(sig.parameters.values())[1:]:
            if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must take named arguments only")

        @functools.wraps(init)
        def wrapped(self, *args, **kwargs):
            if type(self) is cls:
                try:
                    bound = sig.bind(self, *args, **kwargs)
                except TypeError as e:
                    raise ConfigError(f"{cls.method_name}: {e}") from None
                bound.apply_defaults()
                cfg = dict(bound.arguments)
                cfg.pop("self")
                object.__setattr__(self, "config", cfg)
            init(self, *args, **kwargs)

        cls.__init__ = wrapped

    # ---- training -------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters of each optimizer, by name (e.g. ``{"G": [...], "D": [...]}``)."""
        raise NotImplementedError

    def training_step(self, batch: dict) -> Iterator[Phase]:
        raise NotImplementedError

    def after_step(self, optimizer: str) -> None:
        """Called after ``optimizer`` stepped (e.g. U-GAT-IT clips rho here)."""

    def training_extra_state(self) -> dict:
        """State outside the parameters that an exact resume needs (image pools, ...)."""
        return {}

    def load_training_extra_state(self, state: dict) -> None:
        pass

    # ---- inference --------------------------------------------------------------------
    def translate(self, x: torch.Tensor, direction: str | None = None, **kw) -> torch.Tensor:
        """N×C×H×W in [-1, 1] -> N×C'×H'×W' in [-1, 1]."""
        raise NotImplementedError

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        """Named image batches for sample grids and reports (inputs, outputs, reconstructions)."""
        raise NotImplementedError

    def inference_options(self) -> list[InferenceOption]:
        """The options of ``translate`` beyond ``direction`` (style image, alpha, group, seed ...)."""
        return []

    def check_direction(self, direction: str | None) -> str:
        if direction is None:
            return self.directions[0]
        if direction not in self.directions:
            raise ConfigError(
                f"{self.method_name} translates {', '.join(self.directions)}; got direction {direction!r}"
            )
        return direction

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per network (children without parameters, such as losses, left out)."""
        counts = {name: sum(p.numel() for p in m.parameters()) for name, m in self.named_children()}
        return {k: v for k, v in counts.items() if v}
