"""Model directories and training state.

A model directory (what ``styleforge.load`` reads and ``save_model`` writes)::

    config.json         {"format": "styleforge-model", "format_version": 1,
                         "method": "cyclegan", "config": {constructor arguments},
                         "modules": ["G_A", "G_B"], "styleforge_version": ...}
    model.safetensors   the weights of those modules, keys "<module>.<parameter>"
    README.md           the model card (``card.card_text``): method, paper, how it was made,
                        source and licence, in front matter the Hugging Face Hub reads

By default only the method's ``inference_modules`` are kept (an inference snapshot);
``modules="all"`` keeps discriminators too (the trainer's checkpoints do), but not the
``frozen_modules``: the method rebuilds those from its config (a weights path). Training state
is apart, read back with ``torch.load(weights_only=True)``: ``training_state.pt`` holds what every
process shares (step, hence the data position; optimisers; schedulers; the number of processes)
and ``rank_R.pt`` what each process R has of its own (RNG streams, the method's extra state such
as image pools): a checkpoint of N processes is complete with ``rank_0.pt`` .. ``rank_{N-1}.pt``.

Every write is atomic (``utils.atomic``): files and folders are written under a temporary name
and renamed into place.
"""
from __future__ import annotations

import inspect
import errno
import json
import math
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .card import CARD_FILE, card_text
from .errors import CheckpointError, ConfigError, first_line
from .registry import get_method_class
from .utils.atomic import FILE_MODE, atomic_write_bytes, naming, temp_dir_into

FORMAT = "styleforge-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
RANK_STATE_FILE = "rank_{rank}.pt"


def json_ready(value):
    """``value`` with every tuple, at any depth, a list: what JSON writes, so that a value
    read back from config.json or an export's metadata equals the one written."""
    if isinstance(value, tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


# config keys naming a VGG file: a saved config (config.json, an export's metadata) keeps only the
# file's name, never a path of the machine that wrote it; nn.vgg finds a bare name in its weights
# folders when the file is needed (a model directory holds the weights it runs with)
PATH_KEYS = ("vgg_weights",)


def shareable_config(config: dict) -> dict:
    """``config`` ready for JSON, with the VGG file named by its file name alone (a path written
    by older versions still loads: it is used as it stands)."""
    out = json_ready(dict(config))
    for key in PATH_KEYS:
        v = out.get(key)
        if isinstance(v, (str, os.PathLike)) and str(v) != "random" and Path(v).name != str(v):
            out[key] = Path(v).name
    return out


# ---- model directories -------------------------------------------------------------------
def module_state(method, modules) -> dict[str, torch.Tensor]:
    out = {}
    for name in modules:
        for k, v in getattr(method, name).state_dict().items():
            out[f"{name}.{k}"] = v.detach().cpu().contiguous()
    return out


def write_model_files(folder: Path, method, modules: str | list = "inference", card: dict | None = None) -> None:
    """Write config.json + model.safetensors + README.md (the card; ``card``: what is known of
    the model's making, see :func:`styleforge.card.card_text`) into an existing folder (not
    atomic by itself)."""
    if modules == "inference":
        modules = list(method.inference_modules)
    elif modules == "all":  # a training checkpoint: every network but the frozen ones
        frozen = set(getattr(method, "frozen_modules", ()))
        modules = [n for n, m in method.named_children()
                   if n not in frozen and any(True for _ in m.state_dict())]
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "method": method.method_name,
            "config": shareable_config(method.config), "modules": list(modules),
            "styleforge_version": __version__}
    weights = Path(folder) / WEIGHTS_FILE
    with naming(weights):
        try:
            save_file(module_state(method, modules), str(weights),
                      metadata={"format": "pt", "method": method.method_name})
        except SafetensorError as e:  # how safetensors reports a failed write (a full disk)
            raise OSError(errno.EIO, f"cannot write the weights ({first_line(e)})", str(weights)) from None
        os.chmod(weights, FILE_MODE)  # safetensors creates it 0600
    with naming(Path(folder) / CONFIG_FILE):
        (Path(folder) / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    with naming(Path(folder) / CARD_FILE):
        (Path(folder) / CARD_FILE).write_text(card_text(method.method_name, card), encoding="utf-8")


def save_model(path, method, modules: str | list = "inference", card: dict | None = None) -> Path:
    path = Path(path)
    with temp_dir_into(path) as tmp:
        write_model_files(tmp, method, modules, card)
    return path


def resolve_model_dir(path) -> Path:
    """A model directory, or a training run directory (its final ``model/``) for convenience."""
    path = Path(path)
    if path.is_dir() and not (path / CONFIG_FILE).exists() and (path / "model" / CONFIG_FILE).is_file():
        return path / "model"
    return path


def read_model_config(path) -> dict:
    path = resolve_model_dir(path)
    if not path.exists():
        raise CheckpointError(f"model not found: {path}")
    if path.is_file():
        if path.suffix in (".pth", ".pt", ".ckpt"):
            raise CheckpointError(
                f"{path} is a PyTorch checkpoint, not a styleforge model directory; "
                "convert it with 'styleforge import METHOD FILE OUT_DIR'")
        raise CheckpointError(f"{path} is a file; a styleforge model is a directory with {CONFIG_FILE}")
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        raise CheckpointError(f"{path} is not a styleforge model directory: no {CONFIG_FILE}")
    try:
        meta = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_file} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{cfg_file} holds a JSON {type(meta).__name__}, not the object of a styleforge model config")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_file} is not a styleforge model config (format is not {FORMAT!r})")
    version = meta.get("format_version", 0)
    if not _is_int(version):
        raise CheckpointError(f"{cfg_file}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has model format {version}; this styleforge reads up to {FORMAT_VERSION}")
    for key, ok, what in (("method", lambda v: isinstance(v, str) and v, "a method name"),
                          ("config", lambda v: isinstance(v, dict), "an object of constructor arguments")):
        if key not in meta:
            raise CheckpointError(f"{cfg_file} has no {key!r} key ({what})")
        if not ok(meta[key]):
            raise CheckpointError(f"{cfg_file}: {key!r} must be {what}, got {_short(meta[key])}")
    modules = meta.get("modules")
    if modules is not None and not (isinstance(modules, list) and all(isinstance(m, str) for m in modules)):
        raise CheckpointError(f"{cfg_file}: 'modules' must be a list of network names, got {_short(modules)}")
    return meta


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def check_method_config(cls, config: dict, source) -> None:
    """``config`` against the constructor of ``cls``, cheaply, before anything is built: every
    key a parameter, every parameter without a default given, and a value whose default is an
    int an int >= 0 (or None: "off"; every int argument of a method is a count or a size) and
    one whose default is a float a number. A :class:`CheckpointError` naming ``source`` and the key."""
    params = {p.name: p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]}
    unknown = sorted(set(config) - set(params))
    if unknown:
        raise CheckpointError(f"{source}: unknown config key{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(unknown)} for {cls.method_name}")
    missing = [n for n, p in params.items() if p.default is p.empty and n not in config]
    if missing:
        raise CheckpointError(f"{source}: config lacks {', '.join(missing)}, which {cls.method_name} needs")
    for name, v in config.items():
        default = params[name].default
        if v is None or default is params[name].empty:
            continue
        if _is_int(default) and not (_is_int(v) and v >= 0):
            raise CheckpointError(f"{source}: config {name} must be an integer >= 0, got {_short(v)}")
        if isinstance(default, float) and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v)):
            raise CheckpointError(f"{source}: config {name} must be a finite number, got {_short(v)}")


def load_model(path, device="cpu", expect_method: str | None = None):
    """Build the method from ``config.json`` and load ``model.safetensors`` into it."""
    path = resolve_model_dir(path)
    meta = read_model_config(path)
    if expect_method is not None and meta["method"] != expect_method:
        raise CheckpointError(f"{path} holds a {meta['method']} model, expected {expect_method}")
    cfg_file = path / CONFIG_FILE
    try:
        cls = get_method_class(meta["method"])
    except ConfigError as e:
        raise CheckpointError(f"{cfg_file}: {e}") from None
    check_method_config(cls, meta["config"], cfg_file)
    try:
        method = cls(**meta["config"])
    except (TypeError, ValueError, RuntimeError, KeyError, IndexError, ConfigError) as e:
        # what the signature check cannot see (a width of 0, a bad choice): one line, the file named
        raise CheckpointError(f"{cfg_file}: cannot build {meta['method']} from its config: {first_line(e)}") from None
    modules = meta.get("modules") or list(method.inference_modules)
    for name in modules:
        if not isinstance(getattr(method, name, None), torch.nn.Module):
            raise CheckpointError(f"{cfg_file}: modules names {name!r}, which {meta['method']} does not have")
    weights = path / WEIGHTS_FILE
    load_module_state(method, _read_weights(path), modules, weights)
    return method.to(device).eval()


def _read_weights(path: Path) -> dict:
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{path} has no {WEIGHTS_FILE}")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {weights}: {first_line(e)}") from None


def read_base_model(path, method: str) -> tuple[dict, dict]:
    """(config, state dict) of the ``method`` model directory ``path`` a fine-tuning run starts
    from (``model.base_model``); another method's model is a one-line error."""
    path = resolve_model_dir(Path(path).expanduser())
    meta = read_model_config(path)
    if meta["method"] != method:
        raise CheckpointError(f"{method}: base_model {path} holds a {meta['method']} model, not a {method} model")
    return meta["config"], _read_weights(path)


def load_module_state(method, state: dict, modules, source) -> None:
    expected = module_state(method, modules)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not match a {method.method_name} model with this config: "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    for k, v in state.items():
        if expected[k].shape != v.shape:
            raise CheckpointError(
                f"{source}: {k} has shape {tuple(v.shape)}, the config gives {tuple(expected[k].shape)}")
    for name in modules:
        prefix = name + "."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        getattr(method, name).load_state_dict(sub, strict=True)


# ---- training state ----------------------------------------------------------------------
def save_training_state(folder: Path, state: dict) -> None:
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(folder) / STATE_FILE, buf.getvalue())


def load_training_state(folder: Path) -> dict:
    f = Path(folder) / STATE_FILE
    if not f.is_file():
        raise CheckpointError(f"{folder} has no {STATE_FILE}: not a training checkpoint")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read {f}: {first_line(e)}") from None


def rank_state_file(folder: Path, rank: int) -> Path:
    return Path(folder) / RANK_STATE_FILE.format(rank=rank)


def save_rank_state(folder: Path, rank: int, state: dict) -> None:
    """One process's own training state (``rank_R.pt``), written atomically."""
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(rank_state_file(folder, rank), buf.getvalue())


def load_rank_state(folder: Path, rank: int, world_size: int) -> dict:
    """``rank_R.pt`` of a checkpoint written by ``world_size`` processes; a missing one is an
    incomplete checkpoint (a one-line error naming the file)."""
    f = rank_state_file(folder, rank)
    if not f.is_file():
        raise CheckpointError(f"{folder} is incomplete: no {f.name} (it was written by {world_size} "
                              f"process{'es' if world_size > 1 else ''}, each leaves a rank_R.pt)")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read {f}: {first_line(e)}") from None


# ---- the authors' checkpoints (.pth / .pt), for importers -------------------------------
# running statistics that PyTorch 0.3/0.4 also saved for InstanceNorm layers (they track none)
_LEGACY_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_onnx(path: Path):
    """An ONNX model (the ``onnx`` package's ModelProto), or a one-line CheckpointError for a
    missing, unreadable or empty file (the ONNX importers' first step)."""
    import onnx

    if not path.is_file():
        raise CheckpointError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError, a missing external-data file, ...
        raise CheckpointError(f"cannot read {path} as an ONNX model: {str(e).splitlines()[0]}") from None
    if not model.graph.node:
        empty = ": empty file" if not path.stat().st_size else ""
        raise CheckpointError(f"{path} is not an ONNX model (no graph{empty})")
    return model


def read_pth(path, what: str = "checkpoint"):
    """``torch.load(weights_only=True)`` on the CPU: tensors and plain containers only, no
    pickled code runs. ``what`` names the file in the not-found message."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a pickle that holds more than tensors
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {_load_failure(path, e)}") from None


def _load_failure(path: Path, e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in a few words. torch's own first
    line is the same for a text file and a pickled class (and, cut there, advises re-running with
    ``weights_only=False``); its reason is after "WeightsUnpickler error:"."""
    with open(path, "rb") as f:
        head = f.read(2)
    # checked first: a text file's bytes read as pickle opcodes fail in other ways too ("junk"
    # is a memo lookup: KeyError(174812789), the whole of torch's message)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save's zip archive; a pickle's PROTO opcode
        return "not a file torch.save writes (neither a zip archive nor a pickle)"
    text = str(e)
    if "Weights only load failed" not in text:
        return first_line(e)
    after = text.partition("WeightsUnpickler error:")[2]
    reason = next((ln.strip() for ln in after.splitlines() if ln.strip()), "")
    reason = reason.split(" was not an allowed global")[0].split(". ")[0]  # "Unsupported global: GLOBAL x.Y"
    return (f"it holds more than tensors ({reason or 'refused by torch.load'}); styleforge loads .pth files with "
            "weights_only=True (no pickled code runs): save the state dict of tensors instead")


def is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_data_parallel(sd: dict) -> dict:
    return {k.removeprefix("module."): v for k, v in sd.items()}


def read_state_dict(path, what: str = "checkpoint", expected: str = "a state dict of tensors") -> dict:
    """One network's state dict from a ``.pth`` (also wrapped as ``{"state_dict": ...}``), with
    DataParallel's ``module.`` prefix removed. ``expected`` says what the file should be."""
    obj = read_pth(path, what)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not is_state_dict(obj):
        raise CheckpointError(f"{path} is not {expected}")
    return _strip_data_parallel(obj)


def read_state_dicts(path, names, required, expected: str, hint=None) -> dict[str, dict]:
    """The named state dicts of a file that holds several (U-GAT-IT's and Photo2Cartoon's
    ``*_params_*.pt``: ``{"genA2B": {...}, "genB2A": {...}, "disGA": ...}``): those of ``names``
    present, ``module.`` prefixes removed. Every name in ``required`` must be there; ``hint(obj)``
    may add a sentence to that error (e.g. what the file looks like instead)."""
    obj = read_pth(path)
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), dict) for k in required):
        found = list(obj)[:3] if isinstance(obj, dict) else type(obj).__name__
        extra = hint(obj) if hint else ""
        plural = "s" if len(required) > 1 else ""
        raise CheckpointError(f"{path} is not {expected}: expected a dict with the state dict{plural} "
                              f"{' and '.join(required)}, found {found}{extra}")
    out = {}
    for k in names:
        if k in obj:
            if not is_state_dict(obj[k]):
                raise CheckpointError(f"{path}: entry {k} is not a state dict of tensors")
            out[k] = _strip_data_parallel(obj[k])
    return out


def load_state_dict_strict(net: torch.nn.Module, sd: dict, source, what: str) -> None:
    """Load ``sd`` into ``net`` requiring the same keys and shapes, after reconciling what older
    PyTorch versions wrote differently: InstanceNorm running statistics the network does not
    have are dropped, BatchNorm ``num_batches_tracked`` counters (new in 0.4.1) the file lacks
    are zeros. A mismatch is one error naming the first differences: ``{source} does not match
    {what}: ...``."""
    expected = net.state_dict()
    sd = {k: v for k, v in sd.items() if k in expected or not k.endswith(_LEGACY_STATS)}
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros_like(v)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    bad = [k for k, v in sd.items() if k in expected and expected[k].shape != v.shape]
    if missing or unexpected or bad:
        def listed(what, keys):
            return f"{what} {keys[:3]}" + (f" ({len(keys)} keys in all)" if len(keys) > 3 else "") if keys else ""

        parts = [listed("missing", missing), listed("unexpected", unexpected),
                 f"wrong shapes: {bad[0]} is {tuple(sd[bad[0]].shape)}, expected {tuple(expected[bad[0]].shape)}"
                 + (f" ({len(bad)} keys in all)" if len(bad) > 1 else "") if bad else ""]
        raise CheckpointError(f"{source} does not match {what}: {'; '.join(p for p in parts if p)}")
    net.load_state_dict(sd)
