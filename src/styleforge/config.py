"""Presets and command-line overrides -> one resolved config.

A config has four parts::

    method: cyclegan
    model:  {...}   # the method's constructor arguments (they are what a model dir saves)
    data:   {...}   # dataset kind, sizes, augmentation, loader
    train:  {...}   # schedule, optimiser, logging, checkpoints, device

Presets are YAML files under ``styleforge/configs``: ``cyclegan`` is ``cyclegan/default.yaml``,
``cyclegan/demo`` is ``cyclegan/demo.yaml``, ``tiny/cyclegan`` the tiny one the tests use. A
preset may start from another with ``inherit: NAME``. Overrides are ``key=value`` with dotted
keys (``model.ngf=32``, ``train.lr=1e-4``); values are parsed as YAML.
"""
from __future__ import annotations

import copy
import difflib
import inspect
from importlib import resources
from pathlib import Path

import yaml

from .data.datasets import DATASET_KINDS
from .data.transforms import PREPROCESS_OPTIONS
from .errors import ConfigError, first_line
from .registry import get_method_class

DATA_DEFAULTS = {
    "dataset": None,          # unpaired | paired_ab | paired_folders | content_style | class_folders
    "root": None,
    "direction": "AtoB",      # paired data: which half is the input
    "load_size": 286,
    "crop_size": 256,
    "preprocess": "resize_and_crop",
    "flip": True,
    "serial": False,          # unpaired: pair A[i] with B[i] instead of a random B
    "pairs": False,           # class_folders: each sample also has a random partner (class_image, class_label)
    "batch_size": 1,
    "num_workers": 2,
    "max_size": None,         # use at most this many training images per domain (None: all)
    "num_samples": 4,         # test images in the sample grids
}

TRAIN_DEFAULTS = {
    "epochs": 100,            # at the initial learning rate ...
    "epochs_decay": 100,      # ... then linearly to zero (CycleGAN's n_epochs / n_epochs_decay)
    "steps": None,            # count in steps instead of epochs when set
    "steps_decay": 0,
    "optimizer": "adam",      # adam | adamw | rmsprop | sgd, for every optimizer group ...
    "optimizers": {},         # ... unless overridden per group: {G: {type: rmsprop, lr: 1e-4}, D: {...}}
    "lr": 2e-4,
    "betas": [0.5, 0.999],    # adam, adamw
    "weight_decay": 0.0,
    "eps": 1e-8,              # adam, adamw, rmsprop
    "momentum": 0.0,          # rmsprop, sgd
    "alpha": 0.99,            # rmsprop's smoothing constant
    "lr_policy": "linear",    # constant | linear | step | inverse_time | cosine (training/schedules.py)
    "lr_step": 100000,        # step: multiply by lr_gamma every lr_step steps (MUNIT's step_size)
    "lr_gamma": 0.5,
    "lr_decay_rate": 0.0,     # inverse_time: lr / (1 + lr_decay_rate * step) (AdaIN: 5e-5)
    "ema_decay": 0.0,         # > 0: average method.ema_modules after each step (FUNIT: 0.999)
    "seed": 0,
    "device": "auto",         # auto | cpu | cuda | cuda:N
    "amp": False,             # bf16 autocast
    "log_every": 100,
    "sample_every": 1000,
    "checkpoint_every": 5000,
    "keep_checkpoints": 3,
    "tensorboard": True,
    "progress": True,
    "eval_every": 0,          # steps between periodic evaluations (0: off; metrics/periodic.py)
    "eval_metric": "kid",     # kid | fid, on a fixed held-out subset; checkpoints/best keeps the lowest
    "eval_images": 50,        # size of that subset (the first N test samples)
    "eval_feature_net": None,  # TorchScript extractor (path) instead of the FID Inception
    "eval_feature_size": 299,  # its input size (the FID Inception takes 299)
}

LR_POLICIES = ("constant", "linear", "step", "inverse_time", "cosine")
OPTIMIZER_TYPES = ("adam", "adamw", "rmsprop", "sgd")
# what train.optimizers.<group> may set (the rest comes from the train: section)
OPTIMIZER_KEYS = ("type", "lr", "betas", "weight_decay", "momentum", "alpha", "eps")
# and the group's own LR schedule (the rest of it from the train: section)
SCHEDULE_KEYS = ("lr_policy", "lr_step", "lr_gamma", "lr_decay_rate")

SECTIONS = {"data": DATA_DEFAULTS, "train": TRAIN_DEFAULTS}
PRESET_ROOT = resources.files("styleforge") / "configs"


def list_presets() -> list[str]:
    out = []
    root = Path(str(PRESET_ROOT))
    for f in sorted(root.rglob("*.yaml")):
        rel = f.relative_to(root).with_suffix("").as_posix()
        out.append(rel.removesuffix("/default"))
    return out


def _preset_file(name: str) -> Path:
    root = Path(str(PRESET_ROOT))
    for cand in (root / f"{name}.yaml", root / name / "default.yaml"):
        if cand.is_file():
            return cand
    close = difflib.get_close_matches(name, list_presets(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"unknown preset {name!r}{hint}; available: {', '.join(list_presets())}")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {first_line(e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping (method:, model:, data:, train:)")
    return data


def deep_update(base: dict, new: dict) -> dict:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def _load_layered(path: Path, seen=()) -> dict:
    data = _read_yaml(path)
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    if parent in seen:
        raise ConfigError(f"{path}: preset inheritance loops through {parent!r}")
    return deep_update(_load_layered(_preset_file(parent), (*seen, parent)), data)


def parse_overrides(items) -> dict:
    """``["model.ngf=32", "train.lr=1e-4"]`` -> nested dict."""
    out: dict = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.lr=1e-4)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        value = _number(value)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key part")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        d[parts[-1]] = value
    return out


def _number(value):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; people mean a number."""
    if isinstance(value, str):
        for conv in (int, float):
            try:
                return conv(value)
            except ValueError:
                pass
    return value


def _check_keys(section: str, given: dict, allowed) -> None:
    for k in given:
        if k not in allowed:
            close = difflib.get_close_matches(k, list(allowed), n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            raise ConfigError(f"unknown option {section}.{k}{hint}")


def resolve(preset: str | None = None, config_file=None, overrides=None) -> dict:
    """Preset or YAML file, then overrides; fills defaults and checks every key."""
    if config_file:
        cfg = _load_layered(Path(config_file))
    elif preset:
        cfg = _load_layered(_preset_file(preset))
    else:
        cfg = {}
    deep_update(cfg, overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    _check_keys("config", cfg, ("method", "model", "data", "train", "description"))
    if not cfg.get("method"):
        raise ConfigError("no method: give --preset NAME, --config FILE or method=NAME")
    cls = get_method_class(cfg["method"])
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    model = cfg.get("model") or {}
    _check_keys("model", model, params)
    out = {"method": cfg["method"], "model": dict(model)}
    if "description" in cfg:
        out["description"] = cfg["description"]
    for section, defaults in SECTIONS.items():
        given = cfg.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{section} must be a mapping, got {given!r}")
        _check_keys(section, given, defaults)
        out[section] = {**copy.deepcopy(defaults), **given}
    if out["data"]["dataset"] is None:
        out["data"]["dataset"] = cls.data_kind
    # options a method records from the data section (pix2pix: direction, the mapping learned)
    for key in cls.model_follows_data:
        if key in out["model"] and out["model"][key] != out["data"][key]:
            raise ConfigError(f"model.{key}={out['model'][key]} differs from data.{key}="
                              f"{out['data'][key]}; set data.{key} (the model follows it)")
        out["model"][key] = out["data"][key]
    _check_values(out)
    _check_model_types(cls, out["model"])
    _check_training_sides(cls, out)
    return out


def _constructor_defaults(cls) -> dict:
    return {p.name: p.default for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
            if p.default is not inspect.Parameter.empty}


def _check_model_types(cls, model: dict) -> None:
    """Each model.* value has the type of the constructor's default: a flag (bool), a whole
    number (int; 1e5 counts), a number (float). Other defaults (strings, lists, None) are the
    method's own to check."""
    defaults = _constructor_defaults(cls)
    for k, v in model.items():
        d = defaults.get(k)
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise ConfigError(f"model.{k} must be true or false, got {v!r}")
        elif isinstance(d, int):
            if isinstance(v, float) and v.is_integer():
                model[k] = v = int(v)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"model.{k} must be a whole number (default {d}), got {v!r}")
        elif isinstance(d, float):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ConfigError(f"model.{k} must be a number (default {d:g}), got {v!r}")


def _check_training_sides(cls, cfg: dict) -> None:
    """``data.crop_size`` against what the method's networks need (``Method.training_sides``):
    a crop they cannot take would fail at the first training step, inside torch."""
    name, crop = cfg["method"], cfg["data"]["crop_size"]
    rule = cls.training_sides({**_constructor_defaults(cls), **cfg["model"]})
    if crop < rule.min_side:
        raise ConfigError(f"data.crop_size={crop} is too small for {name}: it needs at least "
                          f"{rule.min_side} px ({rule.why})")
    if rule.fixed is not None and crop != rule.fixed:
        raise ConfigError(f"data.crop_size={crop}: {name} takes {rule.fixed} px crops ({rule.fixed_why}); "
                          f"set data.crop_size={rule.fixed}")
    if crop % rule.multiple:
        up = -(-crop // rule.multiple) * rule.multiple
        raise ConfigError(f"data.crop_size={crop}: {name} needs a multiple of {rule.multiple} (its networks "
                          f"down-sample by {rule.multiple} and the output must keep the input's size), e.g. {up}")


def _check_values(cfg: dict) -> None:
    t, d = cfg["train"], cfg["data"]
    for section in (t, d, cfg["model"]):
        for k, v in section.items():
            section[k] = _number(v) if k not in ("device", "root", "eval_feature_net") else v
    for key in ("lr", "epochs", "epochs_decay", "steps_decay", "log_every", "sample_every",
                "checkpoint_every", "keep_checkpoints", "seed", "eval_every", "eval_images", "eval_feature_size"):
        if not isinstance(t[key], (int, float)) or isinstance(t[key], bool) or t[key] < 0:
            raise ConfigError(f"train.{key} must be a non-negative number, got {t[key]!r}")
    if t["steps"] is not None and (not isinstance(t["steps"], int) or t["steps"] < 0):
        raise ConfigError(f"train.steps must be a non-negative integer, got {t['steps']!r}")
    _check_choice("train.lr_policy", t["lr_policy"], LR_POLICIES)
    _check_choice("train.optimizer", t["optimizer"], OPTIMIZER_TYPES)
    t["lr_step"] = _check_lr_step("train.lr_step", t["lr_step"])
    for key in ("lr_gamma", "lr_decay_rate", "weight_decay", "eps", "momentum", "alpha"):
        if not isinstance(t[key], (int, float)) or isinstance(t[key], bool) or t[key] < 0:
            raise ConfigError(f"train.{key} must be a non-negative number, got {t[key]!r}")
    if not isinstance(t["ema_decay"], (int, float)) or not 0 <= t["ema_decay"] < 1:
        raise ConfigError(f"train.ema_decay must be a number in [0, 1) (0: off), got {t['ema_decay']!r}")
    _check_betas("train.betas", t["betas"])
    opts = t["optimizers"] if t["optimizers"] is not None else {}
    if not isinstance(opts, dict):
        raise ConfigError(f"train.optimizers must map optimizer groups to settings (e.g. "
                          f"{{G: {{type: rmsprop, lr: 1e-4}}}}), got {opts!r}")
    t["optimizers"] = opts
    for group, spec in opts.items():
        where = f"train.optimizers.{group}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a mapping of {', '.join(OPTIMIZER_KEYS + SCHEDULE_KEYS)}, "
                              f"got {spec!r}")
        _check_keys(where, spec, OPTIMIZER_KEYS + SCHEDULE_KEYS)
        for k, v in spec.items():
            spec[k] = _number(v)
        if "type" in spec:
            _check_choice(f"{where}.type", spec["type"], OPTIMIZER_TYPES)
        if "betas" in spec:
            _check_betas(f"{where}.betas", spec["betas"])
        for k in ("lr", "weight_decay", "eps", "momentum", "alpha", "lr_gamma", "lr_decay_rate"):
            if k in spec and (not isinstance(spec[k], (int, float)) or isinstance(spec[k], bool) or spec[k] < 0):
                raise ConfigError(f"{where}.{k} must be a non-negative number, got {spec[k]!r}")
        if "lr_policy" in spec:
            _check_choice(f"{where}.lr_policy", spec["lr_policy"], LR_POLICIES)
        if "lr_step" in spec:
            spec["lr_step"] = _check_lr_step(f"{where}.lr_step", spec["lr_step"])
    for key in ("batch_size", "crop_size", "load_size"):
        if not isinstance(d[key], int) or isinstance(d[key], bool) or d[key] < 1:
            raise ConfigError(f"data.{key} must be a positive integer, got {d[key]!r}")
    if not isinstance(d["num_workers"], int) or d["num_workers"] < 0:
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {d['num_workers']!r}")
    if d["direction"] not in ("AtoB", "BtoA"):
        raise ConfigError(f"data.direction must be AtoB or BtoA, got {d['direction']!r}")
    _check_choice("data.dataset", d["dataset"], DATASET_KINDS)
    _check_choice("data.preprocess", d["preprocess"], PREPROCESS_OPTIONS)
    if d["preprocess"] in ("resize_and_crop", "scale_width_and_crop") and d["load_size"] < d["crop_size"]:
        raise ConfigError(f"data.load_size ({d['load_size']}) must be at least data.crop_size "
                          f"({d['crop_size']}) with data.preprocess={d['preprocess']}")
    if d["root"] is not None and not isinstance(d["root"], str):
        d["root"] = str(d["root"])  # a folder named 2024
    for key in ("flip", "serial", "pairs"):
        if not isinstance(d[key], bool):
            raise ConfigError(f"data.{key} must be true or false, got {d[key]!r}")
    if not isinstance(d["num_samples"], int) or isinstance(d["num_samples"], bool) or d["num_samples"] < 1:
        raise ConfigError(f"data.num_samples (test images in the sample grids) must be a positive integer, "
                          f"got {d['num_samples']!r}")
    m = d["max_size"]
    if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 1):
        raise ConfigError(f"data.max_size must be a positive integer (or null: every image), got {m!r}")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}{hint}")


def _check_lr_step(name: str, value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1e5
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer (steps), got {value!r}")
    return value


def _check_betas(name: str, value) -> None:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in value)):
        raise ConfigError(f"{name} must be two numbers in [0, 1), e.g. [0.5, 0.999], got {value!r}")


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
