"""FID and KID of the demo's CycleGAN against two baselines: the first evidence that training helps.

    python benchmarks/demo_scores.py [--run results/demo-cyclegan/run] [--shared ../shared/data/horse2zebra]

Three generators translate the held-out horses (AtoB) and zebras (BtoA):

* ``trained``: the demo's model (``styleforge demo --cyclegan`` writes it to results/demo-cyclegan/run/model);
* ``untrained``: the same architecture freshly built and initialised by the trainer's seed;
* ``identity``: the input copied (a generator that does nothing).

Every image (inputs, outputs and the real targets) is brought to the demo's working resolution
(``data.crop_size`` = 64 px, Pillow bicubic, as the demo page does) before scoring, so the numbers
compare translation, not resolution. Sets: the bundled sample's test split (8 + 8 images: FID is
dominated by the small-sample bias, KID is unbiased but noisy) and, when present, the full
horse2zebra test split in ../shared/data (120 horses, 140 zebras; none of them in the sample's
training images). FID by the exact low-rank route (equal to the sqrtm reference; see
docs/evaluation.md), KID ×100 with 100 subsets of min(1000, n) images.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine  # noqa: E402


def main() -> None:
    import styleforge
    from styleforge import config as C
    from styleforge.data.images import list_images, load_rgb
    from styleforge.metrics.evaluate import EvalOptions, score_features
    from styleforge.metrics.features import extract_features, load_feature_net
    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(REPO / "results" / "demo-cyclegan" / "run"), help="the demo's run folder")
    ap.add_argument("--model", help="score this model directory or checkpoint instead of RUN/model "
                    "(e.g. RUN/checkpoints/step_00000600 of an unfinished run)")
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data" / "horse2zebra"))
    ap.add_argument("--shared-limit", type=int, default=0,
                    help="score only the first N images of each shared test folder (0: all)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    run = Path(args.run)
    model = Path(args.model) if args.model else run / "model"
    if not (model / "config.json").is_file():
        sys.exit(f"no trained demo model in {model}: run 'styleforge demo --cyclegan' first (or give --run/--model)")
    cfg = C.resolve(config_file=run / "config.yaml")
    size = cfg["data"]["crop_size"]
    trained = styleforge.load(model, device="cpu")
    print(f"trained model: {model}", file=sys.stderr)
    torch.manual_seed(cfg["train"]["seed"])
    untrained = Pipeline(build_method(cfg["method"], **cfg["model"]), "cpu")
    net = load_feature_net()
    opts = EvalOptions(fid_method="lowrank", progress=False)
    print(json.dumps(machine()))

    def small(f):
        return load_rgb(f).resize((size, size), Image.Resampling.BICUBIC)

    sets = [("sample (8 + 8)", REPO / "data" / "horse2zebra")]
    if Path(args.shared).is_dir():
        k = args.shared_limit
        sets.append((f"shared ({k} + {k})" if k else "shared (120 + 140)", Path(args.shared)))
    results = []
    for set_name, root in sets:
        for direction, src, tgt in (("AtoB", "testA", "testB"), ("BtoA", "testB", "testA")):
            t0 = time.time()
            limit = args.shared_limit if set_name.startswith("shared") and args.shared_limit else None
            inputs = [small(f) for f in list_images(root / src)[:limit]]
            real = extract_features(net, [small(f) for f in list_images(root / tgt)[:limit]], progress=False)
            gens = {"trained": lambda im: trained.translate_pil(im, direction),
                    "untrained": lambda im: untrained.translate_pil(im, direction),
                    "identity": lambda im: im}
            for gname, g in gens.items():
                fake = extract_features(net, [g(im) for im in inputs], progress=False)
                m = score_features(real, fake, ["fid", "kid"], opts)["metrics"]
                row = {"set": set_name, "direction": direction, "generator": gname, "n_fake": len(fake),
                       "n_real": len(real), "fid": round(m["fid"]["value"], 1),
                       "kid_x100": round(m["kid"]["mean"], 2), "kid_std": round(m["kid"]["std"], 2)}
                results.append(row)
                print(json.dumps(row), flush=True)
            print(f"  ({set_name} {direction}: {time.time() - t0:.0f} s)", file=sys.stderr)
    print()
    print("| set | direction | generator | FID | KID ×100 |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['set']} | {r['direction']} | {r['generator']} | {r['fid']} | "
              f"{r['kid_x100']} ± {r['kid_std']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
