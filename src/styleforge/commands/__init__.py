"""Extra ``styleforge`` subcommands, one module each, found by the CLI at start-up.

A module here defines ``register(sub)``, where ``sub`` is the argparse sub-parsers object; it
adds its parser(s) and sets ``func=handler`` with ``handler(args, overrides) -> int``. The core
commands (train, translate, import, demo, presets) live in ``styleforge.cli``. Keep the module
cheap to import: import torch and heavy libraries inside the handler.

What several commands share is :mod:`styleforge.commands.inputs` (no command of its own). No
command imports ``cli.py``.
"""
