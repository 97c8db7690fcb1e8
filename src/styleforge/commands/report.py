"""``styleforge report RUN_DIR... --out DIR``: one static HTML page comparing training runs."""
from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("report", help="write one static HTML page comparing training runs",
                       description="Compare runs: a metric table (FID/KID of each model on the test split), "
                       "the same test inputs translated by each run side by side, the loss curves and the "
                       "periodic-evaluation curves. The page (index.html) needs no server.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="training run folders (or model directories)")
    p.add_argument("--out", "-o", required=True, help="folder for index.html and its images")
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --out")
    p.add_argument("--data", help="dataset whose test split is used (default: the first run's data.root)")
    p.add_argument("--direction", help="AtoB or BtoA (default: the first run's first direction)")
    p.add_argument("--metrics", default="fid,kid", help="comma-separated, or 'none' (default fid,kid)")
    p.add_argument("--num-images", type=int, default=6, help="test inputs shown side by side (default 6)")
    p.add_argument("--fid-method", choices=("sqrtm", "lowrank"), default="sqrtm",
                   help="sqrtm: scipy.linalg.sqrtm, the reference (default); lowrank: the same value exactly, "
                   "faster for sets smaller than 2048")
    p.add_argument("--title", help="page title")
    p.add_argument("--feature-net", help="TorchScript feature extractor instead of the FID Inception")
    p.add_argument("--feature-size", type=int, help="input size of --feature-net (default 299)")
    p.add_argument("--cache-dir", help="where real-set features are cached")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--quiet", action="store_true", help="print nothing when it succeeds")
    p.set_defaults(func=run)


def run(args, overrides) -> int:
    from ..errors import ConfigError
    from ..metrics.evaluate import EvalOptions
    from ..report import training_data_warning, write_comparison

    if overrides:
        raise ConfigError(f"report takes no config overrides: {' '.join(overrides)}")
    if args.num_images < 1:
        raise ConfigError(f"--num-images must be a positive integer, got {args.num_images}")
    from .inputs import output_folder

    output_folder(args.out, "report")
    page = Path(args.out) / "index.html"
    if page.exists() and not args.overwrite:
        raise ConfigError(f"{page} exists; use --overwrite to replace the report")
    metrics = None if args.metrics.strip().lower() in ("", "none") else args.metrics
    opts = EvalOptions(fid_method=args.fid_method, progress=False, cache_dir=args.cache_dir,
                       use_cache=not args.no_cache)
    net = None
    if metrics is not None:
        from ..metrics.evaluate import parse_metrics
        from ..metrics.features import load_feature_net
        from ..utils.device import pick_device

        metrics = parse_metrics(metrics)
        net = load_feature_net(args.feature_net, args.feature_size, device=pick_device(args.device))
    mixed = training_data_warning(args.runs, args.data)
    if mixed:
        print(f"warning: {mixed}", file=sys.stderr)
    path = write_comparison(args.runs, args.out, metrics, args.data, args.num_images, args.direction,
                            opts, net=net, title=args.title, device=args.device)
    if not args.quiet:
        print(f"report: {path}")
    return 0
