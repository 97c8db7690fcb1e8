"""Extra ``styleforge`` subcommands, one module each, found by the CLI at start-up.

A module here defines ``register(sub)``, where ``sub`` is the argparse sub-parsers object; it
adds its parser(s) and sets ``func=handler`` with ``handler(args, overrides) -> int``. The core
commands (train, translate, import, demo, presets) live in ``styleforge.cli``. Keep the module
cheap to import: import torch and heavy libraries inside the handler.
"""


def output_file(value, command: str, example: str, flag: str = "--out"):
    """``--out`` of a command that writes one file (export, evaluate, interpolate): a file path.
    An existing folder, or a path ending in a separator, is a one-line error naming the rule
    (every other command's ``--out`` is a folder: README, "Outputs")."""
    import os
    from pathlib import Path

    from ..errors import ConfigError

    text = str(value)
    if Path(text).is_dir() or text.endswith(("/", os.sep)):
        raise ConfigError(f"{flag} {text} is a folder; {command} writes one file: give its name "
                          f"(e.g. {flag} {Path(text) / example})")
    return Path(text)


def output_folder(value, command: str, flag: str = "--out"):
    """``--out`` of a command that writes several files: a folder (made if missing). An existing
    file is a one-line error naming the rule."""
    from pathlib import Path

    from ..errors import ConfigError

    p = Path(str(value))
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {value} is a file; {command} writes into a folder: give a folder "
                          f"(e.g. {flag} {p.with_suffix('')}/)")
    return p
