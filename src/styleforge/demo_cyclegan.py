"""``styleforge demo --cyclegan``: train a small CycleGAN on the bundled horse2zebra sample, translate
the held-out images both ways and write ``index.html`` (FID/KID on the held-out images, input |
translated | reconstructed per image, loss curves, the config) and the ``styleforge report`` page
of the run in ``report/``. Running it again resumes an unfinished run, or reuses a
finished one, and rewrites the page."""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import config as C
from .data.bundled import bundled_data

PRESET = "cyclegan/demo"


def _scores_section(run: Path, out: Path, data: Path, device=None) -> dict:
    """FID and KID of the trained model on the held-out images, through ``styleforge report``
    (its page goes to ``out/report/``); a few seconds next to the training. FID by the exact
    low-rank route: the reference sqrtm takes about a minute per value on 2 CPU cores."""
    import html

    from .errors import EvaluationError
    from .metrics.evaluate import EvalOptions
    from .report import write_comparison

    opts = EvalOptions(fid_method="lowrank", progress=False)
    try:
        write_comparison([run], out / "report", ("fid", "kid"), data, num_images=4, opts=opts, device=device,
                         title="styleforge demo: report")
    except EvaluationError as e:  # no FID Inception installed: the report without scores
        print(f"note: no scores ({e})")
        write_comparison([run], out / "report", None, data, num_images=4, opts=opts, device=device,
                         title="styleforge demo: report")
        return {"title": "Scores", "html": f"<p>No scores: {html.escape(str(e))}. "
                                           "<a href='report/index.html'>The report</a>.</p>"}
    res = json.loads((out / "report" / "metrics.json").read_text())
    (m,) = res.values()
    fid, kid = m["metrics"]["fid"]["value"], m["metrics"]["kid"]
    print(f"held-out scores ({m['direction']}, {m['n_fake']} images): FID {fid:.1f}, "
          f"KID x100 {kid['mean']:.2f} ± {kid['std']:.2f}")
    return {"title": "Scores", "html": (
        f"<p>{m['direction']} translations of the {m['n_fake']} test images against the {m['n_real']} real "
        f"ones: FID {fid:.1f}, KID&times;100 {kid['mean']:.2f} &plusmn; {kid['std']:.2f} (so few images give "
        "biased, noisy values: compare only runs scored the same way). "
        "<a href='report/index.html'>The report</a> has the metric table, side-by-side translations and "
        "loss curves; <code>styleforge report RUN_DIR...</code> compares several runs.</p>")}


def run_cyclegan_demo(out: Path, data=None, overrides=(), device=None) -> Path:
    import styleforge

    from .data.images import list_images, load_rgb
    from .data.transforms import to_tensor
    from .pipeline import as_picture, sized
    from .report import plot_losses, write_index
    from .runs import RunFolder
    from .training.trainer import Trainer
    from .utils.images import save_image_atomic

    data = Path(data) if data else bundled_data()
    cfg = C.resolve(PRESET, overrides=list(overrides))
    cfg["data"]["root"] = str(data)
    if device:
        cfg["train"]["device"] = device
    out = Path(out)
    run = RunFolder(out / "run")
    t0 = time.time()
    if (run.model_dir / "config.json").is_file():
        print(f"using the model trained earlier in {run.root} (delete {out} to train again)")
    else:
        resume = run.is_run()  # with or without a checkpoint yet: the run's own config
        if resume:
            print(f"resuming the unfinished demo run in {run.root}")
            cfg = C.resolve(config_file=run.config_file)
            if device:
                cfg["train"]["device"] = device
        Trainer(cfg, run.root, resume=resume).fit()
    train_s = time.time() - t0
    pipe = styleforge.load(run.model_dir, device=device)
    size = cfg["data"]["crop_size"]
    sections = []
    for src, fwd, back in (("A", "AtoB", "BtoA"), ("B", "BtoA", "AtoB")):
        folder = data / f"test{src}"
        rows, labels = [], []
        for f in list_images(folder):
            # the longer side at the training crop size (translate --size), padded by the pipeline
            x = to_tensor(sized(load_rgb(f), size))[None]
            y = pipe.run_tensor(x, direction=fwd)[0]["image"]
            r = pipe.run_tensor(y, direction=back)[0]["image"]
            row = []
            for kind, t in (("input", x), ("translated", y), ("reconstructed", r)):
                rel = f"images/{src}/{f.stem}_{kind}.png"
                save_image_atomic(as_picture(t[0]), out / rel)
                row.append(rel)
            rows.append(row)
            labels.append(f.name)
        sections.append({"title": f"test{src}: {fwd} and back",
                         "columns": ["input", "translated", "reconstructed"],
                         "rows": rows, "labels": labels})
    if plot_losses(run.root, out / "losses.png"):
        sections.append({"title": "Training losses", "image": "losses.png"})
    sections.insert(0, _scores_section(run.root, out, data, device))
    counts = pipe.method.parameter_counts()
    notes = [f"CycleGAN ({cfg['model']['netG']}, ngf {cfg['model']['ngf']}) trained on {data} at "
             f"{size} px; parameters: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
             f"training run: {run.root} (took {train_s:.0f} s this time)"]
    return write_index(out, "styleforge demo: CycleGAN horse <-> zebra", sections,
                       run.config_file.read_text(), notes)
