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
from ..utils.seed import seeded_generator


@dataclass
class Phase:
    optimizer: str
    losses: dict[str, torch.Tensor]
    step: bool = True
    # values to log that are not part of the loss (accuracies, norms, ...)
    extra: dict[str, float] = field(default_factory=dict)


# kinds of declared inference inputs (see :class:`Input`)
INPUT_KINDS = ("image", "reference", "images", "mask", "code", "float", "floats", "int", "seed",
               "choice", "flag", "file")
# the names older code used for the same kinds
_KIND_ALIASES = {"bool": "flag", "number": "float"}
TENSOR_KINDS = ("image", "reference", "images", "mask", "code")  # graph inputs of an export


@dataclass(frozen=True)
class Input:
    """One named input of a method's ``translate(x, **inputs)``, declared by
    :meth:`Method.inference_inputs`. The pipeline converts what a user gives (a path, a PIL
    image, a tensor, a string from the command line or a form) into what ``translate`` takes;
    every front end (CLI flags, batch, web form, export, evaluation) is built from this list.

    ``kind`` and what ``translate`` receives:

    * ``image``: the main input, N×C×H×W in [-1, 1], padded to ``size_multiple`` (or resized to
      ``fixed_size``); the outputs are brought back to its size. Always the first input, named
      ``image``; ``translate`` receives it positionally.
    * ``reference``: another image (a style image), 1×3×h×w in [-1, 1], its longer side resized
      to ``size`` (an int, or the name of an ``int`` input that holds it; None: as given).
      ``multiple``: several images (a list of such tensors; blend weights are a ``floats`` input).
    * ``images``: K images of one kind (K class images), K×3×s×s in [-1, 1], each resized to
      ``size`` × ``size``; ``min``/``max`` bound K.
    * ``mask``: N×``channels``×H×W in [0, 1] at the main image's (padded) size (nearest resize);
      ``channels`` 1 for a grey mask, 3 for colour-coded labels. ``multiple``: a list of masks.
    * ``code``: a vector of ``size`` floats per image, N×size. Not given: drawn by the pipeline
      (outside the network, so an export takes the code as an input) with :func:`draw_code`:
      the first ``size`` numbers of N(0, 1) from a CPU generator seeded with the seed of the
      output alone, the same code for every image of a call. So an image's code depends on the
      seed and nothing else: not on the batch it meets, its place in a folder, the device or
      the other images (``translate --seed 3`` gives every image the style of ``seed:3``).
      Given as an image (path/PIL/tensor): ``method.encode(name, image)`` computes it
      (``encoder=True``), the image first resized to ``encoder_size`` × ``encoder_size`` where
      the encoder needs one size (fully-connected layers; resized as the main image is for
      ``fixed_size``); given as numbers: used as they are. A code with ``replaces`` (FUNIT's
      class code, in place of its K class images) is never drawn: it stands for the input it
      names, which, though required, may then be left out.
    * ``float`` / ``int`` (within ``min``..``max``), ``floats`` (a list of numbers, e.g. blend
      weights; ``size``: how many, where that is fixed, e.g. one per trained style), ``choice`` (one of ``choices``; the translation direction is one, named
      ``direction``), ``flag`` (a bool).
    * ``file``: a path the method reads as it is built (a weights file), as given; declared by
      :meth:`Method.preset_inputs`, not a ``translate`` input.
    * ``seed``: an int seeding the random draws (codes, dropout noise); the pipeline gives
      output k of ``num_outputs`` the seed ``seed + k``, and a method given a seed gives every
      image of the batch the same noise (Pix2Pix: one dropout stream per image, each seeded
      with it), so an output depends on its image, the seed and k alone. In a method that
      declares drawn codes, the seed is theirs: a call whose codes are all given (or unused)
      has one output.

    ``used_when``: ``(name, value)``: the input is used only when the ``choice`` (or ``flag``)
    input ``name`` has ``value`` (MIXGAN's code ``z`` only in ``mode=sample``; Pix2Pix's seed only
    with ``dropout``). A code given while that choice
    is not given selects the value; given with another value, it is an error (the code would be
    ignored); a drawn code that is unused is not drawn, so ``num_outputs`` > 1 is then an error
    too; an export leaves an unused code out of the graph.

    ``required``: the method cannot run without it (a style image); else ``default`` applies.
    ``fixed``: set when an exported file was written (its only value is ``default``).
    """

    name: str
    kind: str
    default: object = None
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    help: str = ""
    required: bool = False
    multiple: bool = False
    size: int | str | None = None
    channels: int = 1
    encoder: bool = False
    replaces: str | None = None
    fixed: bool = False
    encoder_size: int | None = None
    used_when: tuple = ()

    def __post_init__(self):
        kind = _KIND_ALIASES.get(self.kind, self.kind)
        if kind == "image" and self.name != "image":  # the old InferenceOption's reference image
            kind = "reference"
        if kind not in INPUT_KINDS:
            raise ValueError(f"input {self.name!r}: unknown kind {self.kind!r}; kinds: {', '.join(INPUT_KINDS)}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "choices", tuple(self.choices))
        used_when = tuple(self.used_when or ())  # a list when read back from an export's JSON
        if used_when and len(used_when) != 2:
            raise ValueError(f"input {self.name!r}: used_when is (input name, value), got {self.used_when!r}")
        object.__setattr__(self, "used_when", used_when)

    @property
    def is_tensor(self) -> bool:
        return self.kind in TENSOR_KINDS

    @property
    def drawn(self) -> bool:
        """A code the pipeline draws from N(0, 1) when it is not given."""
        return self.kind == "code" and self.replaces is None


def draw_code(size: int, seed: int, n: int = 1, device=None) -> torch.Tensor:
    """The code the pipeline draws for seed ``seed`` (see :class:`Input`): the first ``size``
    numbers of N(0, 1) from a CPU generator seeded with ``seed`` (so every device draws the
    same), repeated for the ``n`` images of a call: a function of the seed alone."""
    return torch.randn(1, int(size), generator=seeded_generator(seed)).to(device or "cpu").repeat(n, 1)


InferenceOption = Input  # the earlier name (kinds "bool" and "image" are read as "flag"/"reference")


@dataclass(frozen=True)
class Output:
    """One named output of ``translate``. ``image``: N×C×H×W in [-1, 1] (the first output is
    always ``image``); ``heatmap``: N×1×h×w raw values, shown jet-coloured at the output's size.
    ``optional`` outputs are computed only when asked: the pipeline passes
    ``return_<name>=True`` and ``translate`` then returns a tuple ``(image, <name>)`` or a dict
    of outputs; front ends offer a flag (``--heatmaps``) for each."""

    name: str
    kind: str = "image"
    help: str = ""
    optional: bool = False


@dataclass(frozen=True)
class TrainingSides:
    """What a method's networks need of a training image's side (``data.crop_size``): at least
    ``min_side``, a multiple of ``multiple`` (a generator's output must have its input's size for
    the pixel losses), exactly ``fixed`` where a fully-connected layer sees the whole map.
    ``why``/``fixed_why`` end the error messages (which network needs it)."""

    min_side: int = 1
    multiple: int = 1
    fixed: int | None = None
    why: str = ""
    fixed_why: str = ""


class Method(nn.Module):
    method_name = "?"  # set by @register_method
    # dataset kind the method trains on (styleforge.data.datasets.build_dataset)
    data_kind = "unpaired"
    # keys of the config's data section its training set is built with, beyond the layout's own
    # (FUNIT: pairs, a random partner image with each sample); the trainer passes them on
    data_options: tuple[str, ...] = ()
    # model options a method records from the data section (Pix2Pix: direction, the mapping it
    # learns): the config copies data.KEY into model.KEY and refuses two different values
    model_follows_data: tuple[str, ...] = ()
    # translation directions offered by translate(); the first is the default
    directions: tuple[str, ...] = ("AtoB",)
    # submodules an inference snapshot (model directory) keeps; the rest is training-only
    inference_modules: tuple[str, ...] = ()
    # input height and width must be multiples of this (translate pads to it)
    size_multiple = 1
    # networks with a fixed input size (fully-connected layers) set it: translate resizes
    fixed_size: int | None = None
    # the smallest side of the main image the networks can take (the pipeline refuses smaller
    # ones). None: ``size_multiple + 1``: a side of ``size_multiple`` or less is 1 px after the
    # down-samplings, and the reflection padding there needs a pad smaller than the side
    min_side: int | None = None
    # translate(x, direction, return_heatmap=True) -> (y, N×1×h×w attention map) is supported
    has_heatmaps = False
    # translate is a network that export can trace (False: an optimisation loop, e.g. Gatys)
    exportable = True
    # an upper bound on the main image's longer side (memory); the pipeline refuses larger ones
    max_side: int | None = None
    # submodules whose weights never train (a VGG encoder, a face-ID network): in no optimizer,
    # not in training checkpoints, not in gradient traffic between processes; saved in a model
    # directory only when also listed in ``inference_modules`` (needed to translate)
    frozen_modules: tuple[str, ...] = ()
    # exponential moving averages the trainer keeps (train.ema_decay > 0): {target: source}, both
    # submodules; after each optimizer step that moves ``source``, ``target`` <- EMA of it
    ema_modules: dict[str, str] = {}
    # a method with no trained network (Gatys optimises the image) says so here, as the end of
    # the sentence ``train`` stops with: "gatys " + "optimises the image; use styleforge stylize"
    not_trainable: str | None = None
    # how a video keeps consecutive outputs consistent (``--temporal``, ``styleforge.video``):
    # "blend": each output is blended with the previous output warped by the optical flow (a
    # network's output, Ruder et al. / Lai et al.'s short-term consistency applied afterwards);
    # "optimise": ``translate`` takes ``init_image`` (where the optimisation starts) and
    # ``temporal`` = (target, weights) (a loss pulling the image to the target where the
    # weights are 1): Ruder et al. 2016, for methods that optimise the image itself
    temporal_consistency: str = "blend"
    # the logged loss terms that measure how well the networks fit their batch (reconstruction,
    # cycle, content, style; not adversarial terms, which are unbounded or fall when the opponent
    # gets worse): a few steps on one fixed batch at the preset's learning rates must lower each
    # of them, within the stage that logs it. The shared tests (tests/test_method_contract.py)
    # read this; every method that trains declares at least one
    fit_terms: tuple[str, ...] = ()

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

    @property
    def image_channels(self) -> int:
        """Channels of the main image ``translate`` takes: 3, or what the config's channel key
        says (``in_channels``, ``img_ch``, ``input_nc``: the names the authors' options use).
        Export traces with it and the runtime chooser draws its sample with it."""
        for key in ("in_channels", "img_ch", "input_nc"):
            if isinstance(self.config.get(key), int):
                return self.config[key]
        return 3

    @classmethod
    def training_sides(cls, config: dict) -> TrainingSides:
        """What a training crop needs, from the constructor's arguments ``config`` (defaults
        filled in), before any network is built: ``config.resolve`` checks ``data.crop_size``
        against it. Default: the class's ``size_multiple`` and ``min_side`` (else two multiples:
        one multiple is 1 px after the down-samplings); a method whose discriminator or
        generator needs more says so here."""
        m = max(1, int(cls.size_multiple or 1))
        least = int(cls.min_side or (2 * m if m > 1 else 1))
        return TrainingSides(least, m, None, f"{m}× down-sampling" if m > 1 else "")

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

    # ---- building from a preset (methods with nothing to train) ----------------------------
    @classmethod
    def preset_inputs(cls) -> list[Input]:
        """What a front end that builds the method from a preset rather than loading a model
        directory (``styleforge stylize --method PRESET``, for a method with nothing to train)
        takes beyond the preset: the files and choices its networks are built from (a weights
        file, the feature network). Each becomes a flag as the inference inputs do (``--vgg``,
        ``--encoder``); :meth:`preset_config` turns the values given into the preset and the
        model options. Declared on the class: they are read before anything is built."""
        return []

    @classmethod
    def preset_config(cls, preset: str, values: dict) -> tuple[str, dict]:
        """``(preset, {model option: value})`` to build with, for ``values`` (``{input name:
        checked value}``, only the :meth:`preset_inputs` the user gave) and the ``preset`` named.
        A value may pick another preset (a feature network with its own layers and loss weights:
        ``gatys`` + encoder inception -> ``gatys-inception``); the front end refuses a preset that
        does not exist or a model option the resolved preset lacks. Default: each value sets the
        model option of its name."""
        return preset, dict(values)

    @classmethod
    def preset_size(cls, config: dict, size: int, label: str = "size") -> dict:
        """The model options ``config`` (a resolved preset's) for working at ``size`` px (longer
        side), as a front end's ``--size`` asks (``label`` names it in errors): a method that
        resizes the image itself (an optimisation at the preset's size) says here which of its
        options that is, so the two do not disagree. Default: ``config`` unchanged (the front
        end's resize is all there is)."""
        return dict(config)

    @classmethod
    def preset_quiet(cls, config: dict) -> dict:
        """The model options ``config`` (a resolved preset's) for a front end's ``--quiet``: a
        method that shows its own progress (an optimiser's bar per image) turns it off here.
        Default: ``config`` unchanged."""
        return dict(config)

    # ---- inference --------------------------------------------------------------------
    def translate(self, x: torch.Tensor, direction: str | None = None, **kw) -> torch.Tensor:
        """N×C×H×W in [-1, 1] -> N×C'×H'×W' in [-1, 1]."""
        raise NotImplementedError

    def eager_inputs(self, x: torch.Tensor, **kw) -> dict:
        """:meth:`translate`'s keyword inputs for ``x`` with what torch.compile cannot trace done
        beforehand, eagerly (a compiled translate calls this first and its graph takes the
        tensors made here: Pix2Pix's seeded dropout masks). Default: ``kw`` as given."""
        return kw

    @torch.no_grad()
    def export_module(self, direction: str | None = None) -> nn.Module | None:
        """The module ``export`` traces for ``direction`` when no inference option is fixed, or
        None (the default): export then traces :meth:`translate` through the declared inputs.
        A method whose translate draws noise gives the deterministic graph here (Pix2Pix)."""
        return None

    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        """Named image batches for sample grids and reports (inputs, outputs, reconstructions)."""
        raise NotImplementedError

    def inference_options(self) -> list[Input]:
        """The inputs of ``translate`` beyond the image and ``direction`` (style image, alpha,
        group, seed ...); :meth:`inference_inputs` puts them after those two."""
        return []

    def inference_inputs(self) -> list[Input]:
        """Every named input of ``translate``, the main image first (see :class:`Input`)."""
        dirs = tuple(self.directions)
        return [Input("image", "image", required=True, help="the image to translate"),
                Input("direction", "choice", default=dirs[0], choices=dirs,
                      help="translation direction"),
                *self.inference_options()]

    def inference_outputs(self) -> list[Output]:
        """The named outputs of ``translate`` (see :class:`Output`)."""
        outs = [Output("image", "image", "the translated image")]
        if self.has_heatmaps:
            outs.append(Output("heatmap", "heatmap", "the generator's attention map (CAM)", optional=True))
        return outs

    def encode(self, name: str, x: torch.Tensor, direction: str | None = None) -> torch.Tensor:
        """The ``code`` input ``name`` computed from an image (N×3×H×W in [-1, 1] -> N×size) for
        a translation in ``direction``: methods whose code inputs have ``encoder=True``
        implement it (MUNIT: the target domain's style encoder)."""
        raise ConfigError(f"{self.method_name} cannot compute {name} from an image")

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
