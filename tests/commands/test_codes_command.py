"""``styleforge codes`` (a model's latent codes of a folder, with a t-SNE map per class) and
``styleforge interpolate`` (a strip along the line between two codes), for FUNIT's class code
and MUNIT's style code; FUNIT's ``class_code`` input, which stands for its K class images."""
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
from styleforge.metrics.codes import class_colors, load_codes
from styleforge.registry import build_method

SAMPLE = Path(__file__).resolve().parents[2] / "data"
ANIMALS = SAMPLE / "animals"


def _run(capsys, *argv):
    rc = main([*map(str, argv)])
    return rc, capsys.readouterr()


def _tiny(name: str, tmp_path_factory):
    torch.manual_seed(0)
    cfg = C.resolve(f"tiny/{name}")
    return save_model(tmp_path_factory.mktemp(name) / "model", build_method(cfg["method"], **cfg["model"]).eval())


@pytest.fixture(scope="module")
def funit_dir(tmp_path_factory):
    return _tiny("funit", tmp_path_factory)


@pytest.fixture(scope="module")
def munit_dir(tmp_path_factory):
    return _tiny("munit", tmp_path_factory)


def _square(path, side=32) -> torch.Tensor:
    with Image.open(path) as im:  # the sample's images are square: resizing is all the pipeline does
        a = np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.BICUBIC), np.float32)
    return torch.from_numpy(a).permute(2, 0, 1)[None] / 127.5 - 1


def test_codes_writes_every_images_class_code_with_its_class_and_a_tsne_map(funit_dir, tmp_path, capsys):
    data = tmp_path / "animals"
    shutil.copytree(ANIMALS, data)
    (data / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    rc, res = _run(capsys, "codes", funit_dir, data, "--out", tmp_path / "out")
    assert rc == 0, res.err
    assert "skipped (DATA): cannot read image" in res.err and "skipped 1 unreadable" in res.out
    codes, labels, names = load_codes(tmp_path / "out" / "codes.npz")
    assert names == sorted(d.name for d in ANIMALS.iterdir() if d.is_dir())
    files = [f for c in names for f in sorted((ANIMALS / c).iterdir())]
    assert codes.shape == (len(files), 8)
    assert list(labels) == [names.index(f.parent.name) for f in files]
    m = styleforge.load(funit_dir, device="cpu").method
    with torch.no_grad():  # each row is gen_test's class code of that image
        want = torch.cat([m.class_codes(_square(f)) for f in files]).numpy()
    assert np.abs(codes - want).max() < 1e-5
    with Image.open(tmp_path / "out" / "tsne.png") as im:
        assert im.format == "PNG"
        px = np.asarray(im.convert("RGB"), dtype=int).reshape(-1, 3)
    # every class's points are drawn in its own colour (~35 pixels a point with its legend entry;
    # a class left out would have none)
    for k, rgb in enumerate(class_colors(len(names))):
        assert (np.abs(px - np.round(np.asarray(rgb) * 255)).max(1) <= 8).sum() >= 15 * (labels == k).sum()
    # nothing overwritten without --overwrite; a method with no code says so in one line
    rc, res = _run(capsys, "codes", funit_dir, data, "--out", tmp_path / "out")
    assert rc == 2 and res.err.strip().endswith("codes.npz exists; use --overwrite to replace it")


def test_codes_of_a_model_without_a_code_and_of_an_empty_folder_are_one_line_errors(tiny_cyclegan_dir, funit_dir,
                                                                                    tmp_path, capsys):
    rc, res = _run(capsys, "codes", tiny_cyclegan_dir, ANIMALS, "--out", tmp_path / "o")
    assert rc == 2 and "cyclegan has no latent code that images give" in res.err and res.err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    rc, res = _run(capsys, "codes", funit_dir, tmp_path / "empty", "--out", tmp_path / "o")
    assert rc == 2 and "no images in" in res.err
    rc, res = _run(capsys, "codes", funit_dir, ANIMALS, "--out", tmp_path / "o", "--input", "class_images")
    assert rc == 2 and "--input class_images: not a code of funit that images give" in res.err


def test_a_class_code_stands_for_the_class_images_it_was_made_from(funit_dir, tmp_path, capsys):
    """The mean of a class's exported codes, given as --class-code, translates as its K images do."""
    _run(capsys, "codes", funit_dir, ANIMALS, "--out", tmp_path / "codes", "--no-plot")
    codes, labels, names = load_codes(tmp_path / "codes" / "codes.npz")
    cat = codes[labels == names.index("cat")].mean(0)
    pipe = styleforge.load(funit_dir, device="cpu")
    content = sorted((ANIMALS / "dog").iterdir())[0]
    by_images = np.asarray(pipe.run(content, class_images=ANIMALS / "cat")[0]["image"], dtype=int)
    by_code = np.asarray(pipe.run(content, class_code=cat.tolist())[0]["image"], dtype=int)
    assert np.abs(by_images - by_code).max() <= 1
    other = np.asarray(pipe.run(content, class_images=ANIMALS / "wild")[0]["image"], dtype=int)
    assert np.abs(by_images - other).max() > 4  # the code carries the class (untrained: weakly)
    # the same through the command line, numbers separated by commas (both written as JPEG)
    code_flag = "--class-code=" + ",".join(map(str, cat.tolist()))
    for out, flags in ((tmp_path / "t_code", [code_flag]), (tmp_path / "t_img", ["--class-images", ANIMALS / "cat"])):
        rc, res = _run(capsys, "translate", funit_dir, content, *flags, "-o", out)
        assert rc == 0, res.err
    a, b = (np.asarray(Image.open(tmp_path / d / content.name), dtype=int) for d in ("t_code", "t_img"))
    assert np.abs(a - b).mean() < 0.5
    # a code is never drawn for FUNIT: no seed, one output, not a graph input unless asked;
    # without images or a code it is an error, not noise
    from styleforge.export import graph_inputs

    assert not pipe.stochastic and "seed" not in [i.name for i in pipe.inputs]
    assert [i.name for i in graph_inputs(pipe.method)] == ["image", "class_images"]
    with_code = graph_inputs(pipe.method, include=("class_code",))
    assert [i.name for i in with_code] == ["image", "class_images", "class_code"]
    rc, res = _run(capsys, "translate", funit_dir, content, "-o", tmp_path / "u")
    assert rc == 2 and "--class-images is required" in res.err


def _frames(path, steps):
    a = np.asarray(Image.open(path), dtype=int)
    w = a.shape[1] // steps
    assert a.shape[1] == w * steps
    return [a[:, k * w:(k + 1) * w] for k in range(steps)]


def test_interpolate_between_two_classes_starts_and_ends_at_their_translations(funit_dir, tmp_path, capsys):
    content = sorted((ANIMALS / "dog").iterdir())[0]
    out = tmp_path / "strip.png"
    rc, res = _run(capsys, "interpolate", funit_dir, content, "--from", ANIMALS / "cat", "--to", ANIMALS / "wild",
                   "--steps", "5", "--out", out)
    assert rc == 0, res.err
    frames = _frames(out, 5)
    pipe = styleforge.load(funit_dir, device="cpu")
    cat = np.asarray(pipe.run(content, class_images=ANIMALS / "cat")[0]["image"], dtype=int)
    wild = np.asarray(pipe.run(content, class_images=ANIMALS / "wild")[0]["image"], dtype=int)
    assert frames[0].shape == cat.shape
    assert np.abs(frames[0] - cat).max() <= 1 and np.abs(frames[-1] - wild).max() <= 1
    # the middle moves from one towards the other
    d_cat = [np.abs(f - cat).mean() for f in frames]
    assert d_cat[0] < d_cat[2] < d_cat[4]
    rc, res = _run(capsys, "interpolate", funit_dir, content, "--from", "seed:1", "--to", ANIMALS / "wild",
                   "--out", tmp_path / "x.png")
    assert rc == 2 and "class_code is not drawn from a seed" in res.err


def test_interpolate_between_two_drawn_styles_starts_and_ends_at_translate_with_those_seeds(munit_dir, tmp_path,
                                                                                         capsys):
    content = sorted((SAMPLE / "horse2zebra" / "testA").iterdir())[0]
    out = tmp_path / "strip.png"
    rc, res = _run(capsys, "interpolate", munit_dir, content, "--from", "seed:1", "--to", "seed:2", "--steps", "4",
                   "--out", out)
    assert rc == 0, res.err
    frames = _frames(out, 4)
    pipe = styleforge.load(munit_dir, device="cpu")
    for k, seed in ((0, 1), (3, 2)):
        want = np.asarray(pipe.run(content, seed=seed)[0]["image"], dtype=int)
        assert np.abs(frames[k] - want).max() <= 1
    assert np.abs(frames[0] - frames[3]).mean() > 0.5  # two styles, two images
    rc, res = _run(capsys, "interpolate", munit_dir, content, "--from", "1,2", "--to", "seed:2", "--out",
                   tmp_path / "y.png")
    assert rc == 2 and "style holds 8 numbers, got 2" in res.err
