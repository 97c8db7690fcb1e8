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


def test_interpolate_between_two_given_style_codes_passes_through_their_mean(munit_dir, tmp_path, capsys):
    content = sorted((SAMPLE / "horse2zebra" / "testA").iterdir())[0]
    a, b = np.linspace(-1, 1, 8), np.linspace(2, -2, 8)
    out = tmp_path / "strip.png"
    rc, res = _run(capsys, "interpolate", munit_dir, content, "--from=" + ",".join(map(str, a)),
                   "--to=" + ",".join(map(str, b)), "--steps", "3", "--out", out)
    assert rc == 0, res.err
    frames = _frames(out, 3)
    pipe = styleforge.load(munit_dir, device="cpu")
    for k, code in enumerate((a, (a + b) / 2, b)):
        style = torch.tensor(code, dtype=torch.float32)[None]
        want = np.asarray(pipe.run(content, style=style)[0]["image"], dtype=int)
        assert np.abs(frames[k] - want).max() <= 1, k


# ---- MIXGAN: a code of 2048 (here 8) numbers that an encoder with fully-connected layers gives ----
@pytest.fixture(scope="module")
def mixgan_dir(tmp_path_factory):
    return _tiny("mixgan", tmp_path_factory)  # 32 px: the sample's 64 px images are not its size


def _mixgan_code(m, path) -> torch.Tensor:
    """E of the image brought to the model's 32×32 as the main image is (bicubic on the tensor)."""
    from styleforge.pipeline import resize_square

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), np.float32)
    x = torch.from_numpy(a).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        return m.E(m.content(resize_square(x, 32)))


def test_mixgan_codes_of_images_of_another_size_are_the_encoders_codes_of_the_resized_images(mixgan_dir, tmp_path,
                                                                                            capsys):
    """Before: "internal error: mat1 and mat2 shapes cannot be multiplied" (a 64 px image fed to
    linear layers sized for 32 px). The code input declares encoder_size and the pipeline resizes."""
    rc, res = _run(capsys, "codes", mixgan_dir, ANIMALS, "--out", tmp_path / "out")
    assert rc == 0, res.err
    codes, labels, names = load_codes(tmp_path / "out" / "codes.npz")
    files = [f for c in names for f in sorted((ANIMALS / c).iterdir())]
    assert codes.shape == (len(files), 8)
    m = styleforge.load(mixgan_dir, device="cpu").method
    want = torch.cat([_mixgan_code(m, f) for f in files]).numpy()
    scale = np.abs(want).max()  # an untrained encoder's codes are small (~1e-4): compare relatively
    assert np.abs(codes - want).max() < 1e-4 * scale
    assert np.abs(codes[0] - codes[-1]).max() > 0.1 * scale  # images give different codes
    # a direct call with the wrong size is a one-line error, not a shape mismatch inside
    from styleforge.errors import ConfigError

    with pytest.raises(ConfigError, match="the encoder takes 32×32 images"):
        m.encode("z", torch.zeros(1, 3, 64, 64))


def test_mixgan_z_from_an_image_selects_sample_mode_and_equals_what_translate_mode_encodes(mixgan_dir, tmp_path,
                                                                                          capsys):
    content = sorted((ANIMALS / "dog").iterdir())[0]  # 64 px
    other = sorted((ANIMALS / "cat").iterdir())[0]
    out = {}
    for key, flags in (("z_other", ["--z", other]), ("sample_other", ["--mode", "sample", "--z", other]),
                       ("z_self", ["--z", content]), ("plain", [])):
        rc, res = _run(capsys, "translate", mixgan_dir, content, *flags, "-o", tmp_path / key, "--quiet")
        assert rc == 0, res.err
        out[key] = np.asarray(Image.open(tmp_path / key / content.name), dtype=int)
    # --z alone selects mode=sample (the only mode that uses it)
    assert np.array_equal(out["z_other"], out["sample_other"])
    # the code of the image itself gives what mode=translate makes of it (the same resize, the same E)
    assert np.abs(out["z_self"] - out["plain"]).max() <= 1
    assert np.abs(out["z_other"] - out["plain"]).mean() > 0.5  # another image: another code
    # a code the chosen mode would ignore, and N outputs of a mode that draws nothing: one-line errors
    rc, res = _run(capsys, "translate", mixgan_dir, content, "--mode", "translate", "--z", other, "-o", tmp_path / "e")
    assert rc == 2 and res.err.count("\n") == 1 and "--z is used only with --mode sample" in res.err
    rc, res = _run(capsys, "translate", mixgan_dir, content, "--num-outputs", "3", "-o", tmp_path / "e")
    assert rc == 2 and res.err.count("\n") == 1
    assert "mixgan with --mode translate gives one output per input" in res.err
    assert not (tmp_path / "e").exists()
    rc, res = _run(capsys, "translate", mixgan_dir, content, "--mode", "sample", "--num-outputs", "3",
                   "-o", tmp_path / "three", "--quiet")
    assert rc == 0, res.err
    three = [np.asarray(Image.open(tmp_path / "three" / f"{content.stem}_{k}{content.suffix}"), dtype=int)
             for k in range(3)]
    assert min(np.abs(three[i] - three[j]).mean() for i, j in ((0, 1), (0, 2), (1, 2))) > 0.5


def test_interpolate_on_mixgan_moves_between_its_codes_and_ends_at_their_translations(mixgan_dir, tmp_path, capsys):
    """Before: 8 identical frames (the default mode ignores the code). A code selects mode=sample."""
    content = sorted((ANIMALS / "dog").iterdir())[1]
    a, b = sorted((ANIMALS / "cat").iterdir())[0], sorted((ANIMALS / "wild").iterdir())[0]
    pipe = styleforge.load(mixgan_dir, device="cpu")
    for spec_a, spec_b, want_a, want_b in (
            ("seed:1", "seed:2", dict(mode="sample", seed=1), dict(mode="sample", seed=2)),
            (a, b, dict(z=a), dict(z=b))):
        out = tmp_path / "strip.png"
        rc, res = _run(capsys, "interpolate", mixgan_dir, content, "--from", spec_a, "--to", spec_b, "--steps", "4",
                       "--out", out, "--overwrite")
        assert rc == 0, res.err
        frames = _frames(out, 4)
        for k, values in ((0, want_a), (3, want_b)):
            want = np.asarray(pipe.run(content, **values)[0]["image"], dtype=int)
            assert np.abs(frames[k] - want).max() <= 1
        steps = [np.abs(frames[k] - frames[k + 1]).mean() for k in range(3)]
        assert min(steps) > 0.1  # every step moves
        assert np.abs(frames[0] - frames[3]).mean() > 0.5
