"""Registry of methods: ``@register_method("cyclegan")`` on the class, ``build_method(name, **config)``.

Importers of the authors' checkpoints register beside them with ``@register_importer``.
"""
from __future__ import annotations

import importlib
import pkgutil

from .errors import ConfigError

METHODS: dict[str, type] = {}
IMPORTERS: dict[str, object] = {}
IMPORTER_OPTIONS: dict[str, dict[str, str]] = {}  # importer -> {option: help}


def register_method(name: str):
    def deco(cls):
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} registered twice")
        cls.method_name = name
        METHODS[name] = cls
        return cls

    return deco


def register_importer(name: str, options: dict[str, str] | None = None):
    """Register ``fn(path, **options) -> Method`` that converts an authors' checkpoint.
    ``options``: the help of each keyword ``fn`` takes besides ``path``; ``styleforge import``
    makes a flag of each (``--reverse`` for cyclegan's ``reverse``), no flag is written by hand."""

    def deco(fn):
        IMPORTERS[name] = fn
        IMPORTER_OPTIONS[name] = dict(options or {})
        return fn

    return deco


def importer_options() -> dict[str, dict]:
    """Every keyword the importers take besides ``path``: ``{option: {"default": value,
    "help": {importer: help}}}`` (the defaults of one name agree, or are None)."""
    import inspect

    _load_all()
    out: dict[str, dict] = {}
    for name, fn in sorted(IMPORTERS.items()):
        for p in list(inspect.signature(fn).parameters.values())[1:]:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            entry = out.setdefault(p.name, {"default": p.default if p.default is not p.empty else None, "help": {}})
            entry["help"][name] = IMPORTER_OPTIONS.get(name, {}).get(p.name, "")
    return out


def _load_all() -> None:
    # Methods register on import: import every module of styleforge.methods once.
    from . import methods

    for info in pkgutil.iter_modules(methods.__path__):
        importlib.import_module(f"{methods.__name__}.{info.name}")


def available_methods() -> list[str]:
    _load_all()
    return sorted(METHODS)


def get_method_class(name: str) -> type:
    _load_all()
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}"
        ) from None


def build_method(name: str, **config):
    cls = get_method_class(name)
    return cls(**config)


def get_importer(name: str):
    _load_all()
    try:
        return IMPORTERS[name]
    except KeyError:
        raise ConfigError(
            f"no importer for {name!r}; available: {', '.join(sorted(IMPORTERS)) or 'none'}"
        ) from None


def check_importer_options(name: str, options) -> object:
    """The importer ``name``, with an option it does not take a one-line ConfigError listing the
    ones it does."""
    import inspect

    importer = get_importer(name)
    takes = inspect.signature(importer).parameters
    for k in options:
        if k not in takes:
            known = [p for p in takes if p != "path"]
            raise ConfigError(f"import {name} takes no --{k.replace('_', '-')}"
                              + (f" (its options: {', '.join(known)})" if known else ""))
    return importer


def run_importer(name: str, path, **options):
    """``get_importer(name)(path, **options)`` after :func:`check_importer_options`: the one way
    ``styleforge import`` and ``styleforge pull`` convert an authors' checkpoint."""
    return check_importer_options(name, options)(path, **options)
