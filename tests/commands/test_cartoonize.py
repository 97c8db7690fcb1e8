"""``styleforge cartoonize`` with a tiny randomly initialised U-GAT-IT light model."""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.registry import build_method


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cartoon") / "model"
    torch.manual_seed(0)
    save_model(d, build_method("ugatit", light=True, img_size=64, ch=4, n_res=1))
    return d


@pytest.fixture
def photos(shared_data, tmp_path):
    testA = shared_data("photo2cartoon") / "testA"
    d = tmp_path / "in"
    d.mkdir()
    with Image.open(testA / "AM1982.jpg") as im:
        im.convert("RGB").save(d / "face.png")  # lossless, so paste-back can be compared exactly
    shutil.copy(shared_data("facades") / "test" / "1.jpg", d / "facade.jpg")
    return d


def test_cartoonize_writes_whitened_crops_and_reports_the_faceless_image(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["cartoonize", str(model_dir), str(photos), "-o", str(out), "--crop-size", "64", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0
    assert f"no face found in {photos / 'facade.jpg'}" in cap.err
    assert "cartoonized 1 face(s) in 1 image(s)" in cap.out and "no face in 1: facade.jpg" in cap.out
    assert sorted(p.name for p in out.iterdir()) == ["face.png"]
    with Image.open(out / "face.png") as im:
        y = np.asarray(im.convert("RGB"))
    assert y.shape == (64, 64, 3)
    assert (y[:4, :4] >= 250).all() and (y[:4, -4:] >= 250).all()  # background white again
    assert y[20:44, 20:44].std() > 1  # the face is the model's output, not blank
    # existing outputs are not replaced without --overwrite
    assert main(["cartoonize", str(model_dir), str(photos / "face.png"), "-o", str(out), "--crop-size", "64"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cartoonize_paste_back_keeps_the_photo_size_and_background(model_dir, photos, tmp_path):
    out = tmp_path / "pasted"
    rc = main(["cartoonize", str(model_dir), str(photos / "face.png"), "-o", str(out), "--crop-size", "64",
               "--paste-back", "--no-whiten", "--quiet"])
    assert rc == 0
    with Image.open(photos / "face.png") as a, Image.open(out / "face.png") as b:
        x, y = np.asarray(a), np.asarray(b.convert("RGB"))
    assert y.shape == x.shape
    assert (y[:8, :8] == x[:8, :8]).all()  # far from the face: the photo itself
    c = x.shape[0] // 2
    assert np.abs(y[c - 20:c + 20, c - 20:c + 20].astype(int) - x[c - 20:c + 20, c - 20:c + 20]).mean() > 10


def test_cartoonize_all_faces_writes_one_file_per_face(model_dir, shared_data, tmp_path):
    testA = shared_data("photo2cartoon") / "testA"
    pair = Image.new("RGB", (700, 350), "white")
    for i, n in enumerate(("AM1987.jpg", "AM1988.jpg")):
        with Image.open(testA / n) as im:
            pair.paste(im.convert("RGB"), (350 * i, 0))
    pair.save(tmp_path / "two.png")
    out = tmp_path / "all"
    assert main(["cartoonize", str(model_dir), str(tmp_path / "two.png"), "-o", str(out), "--crop-size", "64",
                 "--all-faces", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["two_0.png", "two_1.png"]


def test_cartoonize_fails_when_no_image_has_a_face(model_dir, photos, tmp_path, capsys):
    rc = main(["cartoonize", str(model_dir), str(photos / "facade.jpg"), "-o", str(tmp_path / "o"), "--quiet"])
    assert rc == 1
    assert "no face found in" in capsys.readouterr().err


def test_cartoonize_group_picks_the_few_shot_branch(model_dir, photos, tmp_path, capsys):
    torch.manual_seed(0)
    m = build_method("fewshot_groups", group="men", light=True, img_size=64, ch=4)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # stand-in for a trained branch: move its tensors
        for p in m.branches["men"].parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    fs = tmp_path / "fewshot"
    save_model(fs, m)
    face = str(photos / "face.png")
    outs = {}
    for name, extra in (("default", []), ("base", ["--group", "base"]), ("men", ["--group", "men"])):
        assert main(["cartoonize", str(fs), face, "-o", str(tmp_path / name), "--crop-size", "64",
                     "--no-whiten", "--quiet", *extra]) == 0
        with Image.open(tmp_path / name / "face.png") as im:
            outs[name] = np.asarray(im.convert("RGB"))
    assert np.array_equal(outs["default"], outs["base"])  # no --group: the base group
    assert np.abs(outs["men"].astype(int) - outs["base"]).mean() > 1  # the branch is used
    capsys.readouterr()
    assert main(["cartoonize", str(fs), face, "-o", str(tmp_path / "x"), "--group", "women"]) == 2
    err = capsys.readouterr().err
    assert "group" in err and "'women'" in err and "men" in err  # names the option, the value, the choices
    # a model that declares no group has no --group flag: the one-line error of translate's flags
    assert main(["cartoonize", str(model_dir), face, "-o", str(tmp_path / "y"), "--group", "men"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --group: no such option; this ugatit model's inputs: --direction"]


def test_inputs_that_would_write_one_output_name_are_each_named_in_one_line(model_dir, photos, tmp_path, capsys):
    (tmp_path / "b").mkdir()
    shutil.copy(photos / "face.png", tmp_path / "b" / "face.png")
    rc = main(["cartoonize", str(model_dir), str(photos / "face.png"), str(tmp_path / "b" / "face.png"),
               "-o", str(tmp_path / "out"), "--crop-size", "64", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"{photos / 'face.png'} and {tmp_path / 'b' / 'face.png'} would both write face.png" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
