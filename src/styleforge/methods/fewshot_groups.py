"""Few-shot group branches for Photo2Cartoon: Zhuang & Yang, "Few-shot Knowledge Transfer for
Fine-grained Cartoon Face Generation" (ICME 2021, arXiv 2007.13332); the authors' code is
payne53/few_shot_face2cartoon, built on minivision-ai/photo2cartoon.

A base model trained on one group of people (the public Photo2Cartoon data: young women) is
extended with one branch per new group (men, children, the elderly, ...) learnt from a few
images. Their symbols -> code names:

  group-shared parameters         the trunk: the Photo2Cartoon generators genA2B, genB2A
  group-specific branch           per group and generator, its own copy of the input stem and
                                   first hourglass (ConvBlock1, HourGlass1) and of the last
                                   hourglass and output conv (HourGlass4, ConvBlock2): the parts
                                   their ``ResnetGenerator`` duplicates per group (``*_1``,
                                   ``*_2``, ``*_3``); ``branch_modules`` names them
  branch initialisation           a copy of the base's parts (their ``copy_params``)
  stage 1 / stage 2               train ``photo2cartoon``; then this method with
                                   ``base_model`` = that model directory and ``group`` = the new
                                   group's name, on the new group's trainA/trainB (10-50 images)

Stage 2 here freezes the trunk (``requires_grad`` off, not in any optimizer) and trains only the
new branch (optimizer "G") and the discriminators ("D") with the Photo2Cartoon objective (adv,
cycle, identity, CAM, face-ID). The paper instead keeps updating the shared parameters
"indirectly" with the base group's losses while the new groups train, and adds a group
classifier to the discriminators; freezing the trunk is what lets one model directory hold the
trunk once and any number of branches, and keeps the base group's outputs bit-identical.

Model directory: ``genA2B.*``, ``genB2A.*`` (the trunk, the base group's own stem and tail
included) and ``branches.<group>.<generator>.<part>.*``. ``translate(x, group=NAME)``; the
default group is the base group (``base_group``). Starting stage 2 from a few-shot model adds a
group and keeps the existing ones.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..checkpoint import WEIGHTS_FILE, read_model_config, resolve_model_dir
from ..errors import CheckpointError, ConfigError
from ..nn.norms import clip_rho_
from ..registry import register_method
from ..runs import RunFolder
from .base import InferenceOption
from .photo2cartoon import PARTS, STEM_TAIL, Photo2Cartoon, clip_soft_weights_

GENERATORS = ("genA2B", "genB2A")
ARCH_KEYS = ("light", "img_size", "ch", "n_dis_global", "n_dis_local")
GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def _check_group_name(name, what="group") -> str:
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name) or hasattr(nn.ModuleDict(), name):
        raise ConfigError(f"fewshot_groups: {what} name must be a letter followed by letters, digits, "
                          f"'_' or '-' (at most 64), got {name!r}")
    return name


def _base_dir(path) -> Path:
    """A run folder means its latest training checkpoint, which holds the discriminators too
    (their stage 2 starts from the pretrained discriminators as well); any other path is a model
    directory (an inference model has the generators only: the discriminators start afresh)."""
    path = Path(path).expanduser()
    return RunFolder(path).training_model() or resolve_model_dir(path)


def _read_base(path) -> tuple[dict, dict]:
    """(model config.json, state dict) of a photo2cartoon or fewshot_groups model directory
    (an inference model, a training checkpoint folder, or a run folder: see :func:`_base_dir`)."""
    path = _base_dir(path)
    meta = read_model_config(path)
    if meta["method"] not in ("photo2cartoon", "fewshot_groups"):
        raise CheckpointError(
            f"fewshot_groups: base_model {path} holds a {meta['method']} model; the base must be a "
            "photo2cartoon model (stage 1) or a fewshot_groups model (to add a group)")
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path / WEIGHTS_FILE}: {e}") from None
    missing = [g for g in GENERATORS if not any(k.startswith(g + ".") for k in state)]
    if missing:
        raise CheckpointError(f"fewshot_groups: base_model {path} has no {', '.join(missing)}; "
                              "stage 2 needs both generators of the base model")
    return meta, state


@register_method("fewshot_groups")
class FewShotGroups(Photo2Cartoon):
    """Constructor arguments beyond Photo2Cartoon's: ``base_model`` (a model directory read
    once, when building for stage 2: its architecture, weights and groups are taken over, and
    the recorded config keeps them instead of the path), ``group`` (the group trained now),
    ``groups`` (the branches held), ``base_group`` (the name of the trunk's own group),
    ``branch_modules`` (the generator parts each group owns)."""

    def __init__(self, base_model=None, group=None, groups=(), base_group="base",
                 branch_modules=STEM_TAIL, light=True, img_size=256, ch=32, n_dis_global=7,
                 n_dis_local=5, adv_weight=1.0, cycle_weight=50.0, identity_weight=10.0,
                 cam_weight=1000.0, faceid_weight=1.0, facenet_weights=None, rho_clip=1.0,
                 w_clip=1.0):
        groups = list(groups or ())
        arch = {"light": light, "img_size": img_size, "ch": ch, "n_dis_global": n_dis_global,
                "n_dis_local": n_dis_local}
        base_state = None
        if base_model:
            meta, base_state = _read_base(base_model)
            bc = meta["config"]
            arch = {k: bc[k] for k in ARCH_KEYS}
            if meta["method"] == "fewshot_groups":
                groups, base_group = list(bc["groups"]), bc["base_group"]
                if list(branch_modules) != list(bc["branch_modules"]):
                    raise ConfigError(
                        f"fewshot_groups: branch_modules {list(branch_modules)} differ from the base "
                        f"model's {bc['branch_modules']}; all groups of a model share one layout")
        branch_modules = list(branch_modules)
        bad = [b for b in branch_modules if b not in PARTS]
        if not branch_modules or bad or len(set(branch_modules)) != len(branch_modules):
            raise ConfigError(f"fewshot_groups: branch_modules must name generator parts among "
                              f"{', '.join(PARTS)}; got {branch_modules}")
        _check_group_name(base_group, "base_group")
        for g in groups:
            _check_group_name(g)
        if group is not None:
            _check_group_name(group)
            if group == base_group:
                raise ConfigError(f"fewshot_groups: group {group!r} is the base group; stage 2 trains "
                                  "a new group (give it another name)")
            if group not in groups:
                groups.append(group)
        if base_group in groups or len(set(groups)) != len(groups):
            raise ConfigError(f"fewshot_groups: group names must be distinct and differ from the "
                              f"base group {base_group!r}; got {groups}")
        super().__init__(**arch, adv_weight=adv_weight, cycle_weight=cycle_weight,
                         identity_weight=identity_weight, cam_weight=cam_weight,
                         faceid_weight=faceid_weight, facenet_weights=facenet_weights,
                         rho_clip=rho_clip, w_clip=w_clip)
        self.base_group, self.group, self.groups = base_group, group, tuple(groups)
        self.branch_modules = tuple(branch_modules)
        self.branches = nn.ModuleDict({g: self._new_branch() for g in groups})
        if base_state is not None:
            new = group if group is not None and not any(
                k.startswith(f"branches.{group}.") for k in base_state) else None
            self._load_base(base_state, base_model, new)
            if new is not None:
                self.branches[new] = self._new_branch()  # a copy of the loaded trunk's parts
        # everything but the trained group's branch is frozen
        for p in self.parameters():
            p.requires_grad_(False)
        for d in (self.disGA, self.disGB, self.disLA, self.disLB):
            d.requires_grad_(True)
        if group is not None:
            self.branches[group].requires_grad_(True)
        # the recorded config rebuilds this model without the base directory
        self.config.update(arch, base_model=None, groups=list(groups), base_group=base_group,
                           branch_modules=list(branch_modules))

    def _new_branch(self) -> nn.ModuleDict:
        return nn.ModuleDict({g: nn.ModuleDict({b: copy.deepcopy(getattr(getattr(self, g), b))
                                                for b in self.branch_modules}) for g in GENERATORS})

    def _load_base(self, state: dict, source, new_group) -> None:
        own = self.state_dict()
        needed = [k for k in own if k.startswith(GENERATORS) or
                  (k.startswith("branches.") and not k.startswith(f"branches.{new_group}."))]
        missing = [k for k in needed if k not in state]
        unknown = [k for k in state if k not in own]
        bad = [k for k in state if k in own and own[k].shape != state[k].shape]
        if missing or unknown or bad:
            raise CheckpointError(f"fewshot_groups: base_model {source} does not match its own config: "
                                  f"missing {missing[:3]}, unexpected {unknown[:3]}, wrong shapes {bad[:3]}")
        self.load_state_dict(state, strict=False)  # discriminators only if the base stored them

    @property
    def inference_modules(self):
        return ("genA2B", "genB2A", "branches")

    @property
    def group_names(self) -> tuple[str, ...]:
        return (self.base_group, *self.groups)

    def check_group(self, group: str | None) -> str:
        if group is None:
            return self.base_group
        if group not in self.group_names:
            raise ConfigError(f"unknown group {group!r}; this model has the groups: {', '.join(self.group_names)}")
        return group

    def group_generators(self, group: str | None):
        """(A->B, B->A) callables of one group: the trunk with that group's parts swapped in."""
        group = self.check_group(group)
        if group == self.base_group:
            return self.genA2B, self.genB2A
        br = self.branches[group]
        return (lambda x: self.genA2B(x, br["genA2B"]), lambda x: self.genB2A(x, br["genB2A"]))

    # ---- training ------------------------------------------------------------------------------
    def optimizer_groups(self):
        if self.group is None:
            raise ConfigError("fewshot_groups: set model.group=NAME (the new group to train) and "
                              "model.base_model=DIR (the trained photo2cartoon model)")
        self.check_facenet()
        return {"G": list(self.branches[self.group].parameters()),
                "D": [p for d in (self.disGA, self.disGB, self.disLA, self.disLB) for p in d.parameters()]}

    def generators(self):
        return self.group_generators(self.group)

    def after_step(self, optimizer):
        if optimizer == "G":  # only the trained branch moves; its rho / Soft-AdaLIN weights, if any
            branch = self.branches[self.group]
            clip_rho_(branch, 0.0, self.rho_clip)
            clip_soft_weights_(branch, 0.0, self.w_clip)

    # ---- inference -----------------------------------------------------------------------------
    def inference_options(self):
        return [InferenceOption("group", "choice", default=self.base_group, choices=self.group_names,
                                help="the group of people the photo belongs to (its branch)")]

    def translate(self, x, direction=None, return_heatmap=False, group=None):
        """``group``: one of :attr:`group_names` (default: the base group)."""
        direction = self.check_direction(direction)
        g_a2b, g_b2a = self.group_generators(group)
        out, _, heatmap = (g_a2b if direction == "AtoB" else g_b2a)(x)
        return (out, heatmap) if return_heatmap else out
