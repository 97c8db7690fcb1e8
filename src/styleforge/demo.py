"""The README's main job: train a small CycleGAN on the bundled horse2zebra sample, translate
the held-out images both ways and write ``index.html`` (input | translated | reconstructed per
image, loss curves, the config). Running it again resumes an unfinished run, or reuses a
finished one, and rewrites the page."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from . import config as C
from .errors import DataError

PRESET = "cyclegan/demo"


def bundled_data(name: str = "horse2zebra") -> Path:
    """The sample shipped in the repository's ``data/`` (found from a checkout or the cwd)."""
    for base in (Path(__file__).resolve().parents[2] / "data", Path.cwd() / "data"):
        if (base / name).is_dir():
            return base / name
    raise DataError(f"bundled sample data/{name} not found: run from the repository checkout or give --data DIR")


def run_demo(out: Path, data=None, overrides=(), device=None) -> Path:
    from .checkpoint import load_model
    from .data.images import list_images, load_rgb
    from .data.transforms import to_pil, to_tensor
    from .report import plot_losses, write_index
    from .training.trainer import Trainer
    from .utils.images import save_image_atomic

    data = Path(data) if data else bundled_data()
    cfg = C.resolve(PRESET, overrides=list(overrides))
    cfg["data"]["root"] = str(data)
    if device:
        cfg["train"]["device"] = device
    out = Path(out)
    run = out / "run"
    t0 = time.time()
    if (run / "model" / "config.json").is_file():
        print(f"using the model trained earlier in {run} (delete {out} to train again)")
    else:
        resume = (run / "checkpoints" / "latest").is_file()
        if resume:
            print(f"resuming the unfinished demo run in {run}")
            cfg = C.resolve(config_file=run / "config.yaml")
        Trainer(cfg, run, resume=resume).fit()
    train_s = time.time() - t0
    method = load_model(run / "model")
    size = cfg["data"]["crop_size"]
    sections = []
    with torch.inference_mode():
        for src, fwd, back in (("A", "AtoB", "BtoA"), ("B", "BtoA", "AtoB")):
            folder = data / f"test{src}"
            rows, labels = [], []
            for f in list_images(folder):
                img = load_rgb(f).resize((size, size))
                x = to_tensor(img)[None]
                y = method.translate(x, fwd)
                r = method.translate(y, back)
                row = []
                for kind, t in (("input", x), ("translated", y), ("reconstructed", r)):
                    rel = f"images/{src}/{f.stem}_{kind}.png"
                    save_image_atomic(to_pil(t[0]), out / rel)
                    row.append(rel)
                rows.append(row)
                labels.append(f.name)
            sections.append({"title": f"test{src}: {fwd} and back",
                             "columns": ["input", "translated", "reconstructed"],
                             "rows": rows, "labels": labels})
    if plot_losses(run, out / "losses.png"):
        sections.append({"title": "Training losses", "image": "losses.png"})
    counts = method.parameter_counts()
    notes = [f"CycleGAN ({cfg['model']['netG']}, ngf {cfg['model']['ngf']}) trained on {data} at "
             f"{size} px; parameters: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
             f"training run: {run} (took {train_s:.0f} s this time)"]
    return write_index(out, "styleforge demo: CycleGAN horse <-> zebra", sections,
                       (run / "config.yaml").read_text(), notes)
