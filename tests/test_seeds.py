"""A seed gives the same picture whatever the batch: an output's random code (MUNIT's style,
MIXGAN's z) or noise (Pix2Pix's test-time dropout) is drawn from a generator seeded by the seed
and the output's index k alone (output k of ``--num-outputs`` uses seed + k; Gatys' noise
start too), never by the
image's place in a batch, the batch size, the order of the inputs or the other images.

A broken draw (one N×size block per batch, image i taking row i; dropout masks from one global
stream for the whole batch) fails these tests: before the fix, MUNIT's outputs at batch size 3
or 8 differed from batch size 1 by up to 200 levels, and two copies of one image in a batch got
different styles."""
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.methods.base import draw_code
from styleforge.registry import build_method

SAMPLE = Path(__file__).resolve().parents[1] / "data"

# model -> the flags that make its outputs random (MIXGAN's code is used in mode=sample)
RANDOM_FLAGS = {"munit": [], "mixgan": ["--mode", "sample"], "pix2pix": []}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for name in RANDOM_FLAGS:
        torch.manual_seed(0)
        cfg = C.resolve(f"tiny/{name}")
        method = build_method(cfg["method"], **cfg["model"]).eval()
        out[name] = save_model(tmp_path_factory.mktemp(name) / "model", method)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Seven PNGs (lossless, so a compared pixel is the network's) of two sizes, interleaved, so
    that batches and size groups differ with the batch size and the order."""
    d = tmp_path_factory.mktemp("inputs")
    files = sorted((SAMPLE / "horse2zebra" / "testA").iterdir())[:7]
    for k, f in enumerate(files):
        size = (40, 32) if k % 3 == 1 else (32, 32)
        with Image.open(f) as im:
            im.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(d / f"img{k}.png")
    return d


def _translate(model, inputs, out, *flags):
    rc = main(["translate", str(model), *map(str, inputs), "-o", str(out), "--quiet", "--workers", "0", *flags])
    assert rc == 0
    return out


def _px(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def assert_same_picture(a, b):
    """Equal up to a last-bit rounding flip of a batched convolution (a batch of 3 computes an
    image's float32 values in another order than a batch of 1: measured ~3e-6, one level in a
    handful of pixels)."""
    x, y = _px(a), _px(b)
    assert x.shape == y.shape
    d = np.abs(x - y)
    assert d.max() <= 1 and (d > 0).mean() < 0.01, f"{Path(a).name}: max {d.max()}, {(d > 0).mean():.2%} differ"


@pytest.mark.parametrize("name", list(RANDOM_FLAGS))
def test_each_outputs_noise_depends_on_the_seed_and_its_index_not_on_batch_order_or_neighbours(name, models, folder,
                                                                                               tmp_path):
    model, flags = models[name], [*RANDOM_FLAGS[name], "--seed", "3", "--num-outputs", "2"]
    ref = _translate(model, [folder], tmp_path / "b1", "--batch-size", "1", *flags)
    names = sorted(p.name for p in ref.iterdir())
    assert len(names) == 14
    # the two outputs of an image differ (the noise is there: a test of nothing would pass too)
    assert np.abs(_px(ref / "img0_0.png") - _px(ref / "img0_1.png")).mean() > 0.5
    for bs in ("3", "8"):
        out = _translate(model, [folder], tmp_path / f"b{bs}", "--batch-size", bs, *flags)
        assert sorted(p.name for p in out.iterdir()) == names
        for n in names:
            assert_same_picture(ref / n, out / n)
    # another order, given file by file, with two copies of img2 next to each other in one batch
    files = sorted(folder.iterdir())
    random.Random(0).shuffle(files)
    twin = tmp_path / "twin" / "img2_twin.png"
    twin.parent.mkdir()
    shutil.copy(folder / "img2.png", twin)
    at = files.index(folder / "img2.png")
    files.insert(at + 1, twin)
    out = _translate(model, files, tmp_path / "shuffled", "--batch-size", "8", *flags)
    for n in names:
        assert_same_picture(ref / n, out / n)
    for k in (0, 1):
        assert_same_picture(out / f"img2_{k}.png", out / f"img2_twin_{k}.png")
    # output k is made with seed + k: NAME_1 of seed 3 is the output of seed 4
    one = _translate(model, [folder / "img1.png"], tmp_path / "seed4", *RANDOM_FLAGS[name], "--seed", "4")
    assert_same_picture(ref / "img1_1.png", one / "img1.png")


@pytest.mark.parametrize("name", ["munit", "mixgan"])
def test_interpolate_from_seed_n_ends_equal_translate_seed_n_in_a_batch(name, models, folder, tmp_path):
    model = models[name]
    out = _translate(model, [folder], tmp_path / "t", "--batch-size", "8", "--seed", "3", "--num-outputs", "2",
                     *RANDOM_FLAGS[name])
    strip = tmp_path / "strip.png"
    assert main(["interpolate", str(model), str(folder / "img4.png"), "--from", "seed:3", "--to", "seed:4",
                 "--steps", "3", "--out", str(strip), "--quiet"]) == 0
    a = _px(strip)
    w = a.shape[1] // 3
    frames = [a[:, k * w:(k + 1) * w] for k in range(3)]
    for frame, file in ((frames[0], "img4_0.png"), (frames[2], "img4_1.png")):
        d = np.abs(frame - _px(out / file))
        assert d.max() <= 1 and (d > 0).mean() < 0.01


def test_the_drawn_code_is_one_function_of_the_seed_for_every_image_and_caller(models):
    """The pipeline, the method's own draw (MUNIT's translate without a code) and ``seed:N`` draw
    the same code: the first numbers of a CPU N(0, 1) stream seeded with N, one row for all."""
    pipe = styleforge.load(models["munit"], device="cpu")
    inp = pipe.input("style")
    code = pipe.draw_code(inp, 5, 7)
    assert code.shape == (5, 8) and torch.equal(code, code[:1].expand(5, -1))
    assert torch.equal(code[:1], draw_code(8, 7)) and torch.equal(draw_code(8, 7), pipe.draw_code(inp, 1, 7))
    assert not torch.equal(draw_code(8, 7), draw_code(8, 8))
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        by_method = pipe.method.translate(x, "AtoB", seed=7)
        by_code = pipe.method.translate(x, "AtoB", style=draw_code(8, 7, 3))
    assert torch.equal(by_method, by_code)


def test_pix2pix_dropout_noise_of_an_image_is_its_own_in_any_batch(models):
    """Each image draws its dropout masks from its own generator seeded with the seed: an image
    alone and the same image third in a batch (beside other images) get the same noise; another
    seed, other noise; no seed, fresh noise from the global generator (left as it was)."""
    m = styleforge.load(models["pix2pix"], device="cpu").method
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        batch = m.translate(x, seed=5)
        for i in range(4):
            torch.testing.assert_close(m.translate(x[i:i + 1], seed=5), batch[i:i + 1], rtol=0, atol=1e-5)
        assert (m.translate(x[:1], seed=6) - batch[:1]).abs().max() > 1e-3
        state = torch.get_rng_state()
        m.translate(x[:1], seed=5)
        assert torch.equal(state, torch.get_rng_state())
        assert not torch.equal(m.translate(x[:1]), m.translate(x[:1]))


def test_gatys_noise_start_of_an_image_is_the_seeds_whatever_its_place_in_the_batch():
    """The optimisation's noise start is drawn from the seed alone (it was seed + the image's
    index in the batch: a batch of 8 on a GPU gave other pictures than one image at a time)."""
    torch.manual_seed(0)
    cfg = C.resolve("tiny/gatys")
    m = build_method(cfg["method"], **cfg["model"]).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    style = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    alone, _ = m.stylize(x, style=[style], init="noise", seed=3, iterations=2)
    pair, _ = m.stylize(torch.cat([x, x]), style=[style], init="noise", seed=3, iterations=2)
    torch.testing.assert_close(pair[1:], alone, rtol=0, atol=1e-5)
    other, _ = m.stylize(x, style=[style], init="noise", seed=4, iterations=2)
    assert (other - alone).abs().max() > 1e-3
