"""The pipeline refuses, with one line, what the networks cannot take: images smaller than a
method's ``min_side`` and codes that are not finite or far outside N(0, 1) (issue 20)."""
import pytest
import torch
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.errors import ConfigError
from styleforge.registry import build_method


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    for name in ("cyclegan", "adain", "munit"):
        torch.manual_seed(0)
        cfg = C.resolve(f"tiny/{name}")
        save_model(root / name, build_method(cfg["method"], **cfg["model"]))
    return root


def _image(tmp_path, w, h, name="in.png"):
    path = tmp_path / name
    Image.new("RGB", (w, h), (120, 80, 40)).save(path)
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "internal error" not in err[0], err
    return err[0]


# (method, the largest size it cannot take (w, h), the smallest size it takes, min side)
SIZES = [("cyclegan", (4, 4), (5, 5), 5), ("cyclegan", (300, 3), (300, 5), 5),
         ("adain", (8, 8), (9, 9), 9), ("adain", (300, 7), (300, 9), 9)]


@pytest.mark.parametrize("name,small,least,side", SIZES)
def test_an_image_below_min_side_is_one_error_naming_the_smallest_size(name, small, least, side, saved, tmp_path,
                                                                       capsys):
    pipe = styleforge.load(saved / name)
    extra = {"style": _image(tmp_path, 32, 32, "style.png")} if name == "adain" else {}
    with pytest.raises(ConfigError, match=f"at least {side} px") as e:
        pipe(Image.new("RGB", small), **extra)
    assert "\n" not in str(e.value)
    assert pipe(Image.new("RGB", least), **extra).size == least  # the smallest size still runs

    flags = ["--style", str(extra["style"])] if extra else []
    assert main(["translate", str(saved / name), str(_image(tmp_path, *small)), "--out", str(tmp_path / "o"),
                 "--quiet", *flags]) == 2
    assert f"at least {side} px" in _one_error_line(capsys)


def test_a_too_small_image_is_a_4xx_in_the_web_app(saved):
    import io
    import warnings

    from styleforge.webapp import Limits, create_app, load_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    with TestClient(create_app(load_models([saved / "cyclegan"]), Limits())) as client:
        r = client.post("/api/translate", files={"image": ("x.png", buf.getvalue(), "image/png")})
    assert r.status_code == 422 and "at least 5 px" in r.json()["error"]


BAD_CODES = {"nan": "nan", "inf": "inf", "-inf": "-inf", "1e30": "1e+30", "1e5": "100000"}


@pytest.mark.parametrize("bad", list(BAD_CODES))
def test_a_non_finite_or_absurd_code_is_refused_naming_the_input(bad, saved, tmp_path, capsys):
    pipe = styleforge.load(saved / "munit")
    size = pipe.input("style").size
    x = torch.zeros(1, 3, 16, 16)
    for given in ([0.0] * (size - 1) + [float(bad)], torch.full((1, size), float(bad))):
        with pytest.raises(ConfigError, match="style") as e:
            pipe(x, style=given)
        assert "\n" not in str(e.value) and BAD_CODES[bad] in str(e.value)
    flag = "--style=" + ",".join(["0"] * (size - 1) + [bad])
    assert main(["translate", str(saved / "munit"), str(_image(tmp_path, 16, 16)), "--out", str(tmp_path / "o"),
                 "--quiet", flag]) == 2
    assert "--style" in _one_error_line(capsys)
    assert pipe(x, style=[0.5] * size).shape == x.shape  # an ordinary code still runs


def test_a_non_finite_number_input_is_refused(saved):
    pipe = styleforge.load(saved / "adain")
    for bad in ("nan", "inf", float("inf")):
        with pytest.raises(ConfigError, match="finite"):
            pipe(torch.zeros(1, 3, 16, 16), style=torch.zeros(1, 3, 16, 16), alpha=bad)


def test_numpy_images_are_accepted_and_given_back_as_arrays(tiny_cyclegan_dir, h2z):
    import numpy as np

    pipe = styleforge.load(tiny_cyclegan_dir, device="cpu")
    img = Image.open(sorted((h2z / "testA").iterdir())[0]).convert("RGB")
    want = np.asarray(pipe(img))
    got = pipe(np.asarray(img))  # H×W×3 uint8
    assert got.dtype == np.uint8 and got.shape == want.shape and np.array_equal(got, want)
    got = pipe(np.asarray(img).astype(np.float64) / 255)  # H×W×3 float in [0, 1]
    assert got.dtype == np.float32 and np.array_equal(np.rint(got * 255).astype(np.uint8), want)
    assert np.array_equal(np.asarray(pipe.run(np.asarray(img))[0]["image"]), want)


@pytest.mark.parametrize("bad,needle", [
    ("float255", "a float numpy image holds values in [0, 1], found 0 .. 255"),
    ("two_channels", "a numpy image must be H×W×3 (or H×W), got shape"),
    ("int16", "an integer numpy image holds values in 0..255"),
])
def test_numpy_images_of_another_shape_or_range_are_one_line_errors(bad, needle, tiny_cyclegan_dir):
    import numpy as np

    pipe = styleforge.load(tiny_cyclegan_dir, device="cpu")
    a = np.arange(32 * 32 * 3).reshape(32, 32, 3) % 256
    a = {"float255": a.astype(np.float32), "two_channels": a[..., :2].astype(np.uint8),
         "int16": (a * 4).astype(np.int16)}[bad]
    with pytest.raises(ConfigError) as e:
        pipe(a)
    assert str(e.value).startswith("image: ") and needle in str(e.value) and "\n" not in str(e.value)


def test_a_tensor_outside_its_declared_range_is_refused_naming_the_conversion(tiny_cyclegan_dir, h2z):
    from styleforge.data.transforms import to_tensor

    pipe = styleforge.load(tiny_cyclegan_dir, device="cpu")
    x = to_tensor(Image.open(sorted((h2z / "testA").iterdir())[0]).convert("RGB"))[None]  # [-1, 1]
    assert pipe(x).shape == x.shape
    with pytest.raises(ConfigError, match=r"^image: a tensor image holds values in \[-1, 1\], found .* "
                       r"\(a 0\.\.255 image: x / 127\.5 - 1\)$"):
        pipe((x + 1) * 127.5)
    with pytest.raises(ConfigError, match=r"\(a 0\.\.1 image: x \* 2 - 1\)$"):
        pipe((x + 1) / 2 + 0.01)  # 0..1 (shifted off 0 so that no value is negative)
    with pytest.raises(ConfigError, match="NaN"):
        pipe(torch.full_like(x, float("nan")))


def test_a_few_pixel_reference_is_a_config_error_naming_it_not_a_crash():
    """Reflection padding on a 3×3 style image (AdaIN's style_size 3, MUNIT's style encoder):
    the user's input, said in one line (the web app answers 422, was 500)."""
    from PIL import Image

    from styleforge import config as C
    from styleforge.errors import ConfigError
    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method

    img = Image.new("RGB", (64, 64), (100, 50, 20))
    for preset, kw, label in [("adain", {"style": img, "style_size": 3}, "style[0]: the image is 3×3"),
                              ("munit", {"style": Image.new("RGB", (3, 3))}, "style: the image is 3×3")]:
        cfg = C.resolve(f"tiny/{preset}")
        pipe = Pipeline(build_method(cfg["method"], **cfg["model"]), "cpu")
        with pytest.raises(ConfigError, match=label.replace("[", r"\[").replace("]", r"\]") + ".*too small"):
            pipe(img, **kw)


def test_load_of_a_directory_with_runtime_int8_names_the_export_that_makes_the_file(saved):
    with pytest.raises(ConfigError, match="styleforge export .* --int8 --calibrate") as e:
        styleforge.load(saved / "cyclegan", runtime="int8")
    assert "--format int8" not in str(e.value)


def test_translate_without_a_required_style_is_one_line_before_any_runtime_measurement(saved, h2z, tmp_path,
                                                                                      monkeypatch, capsys):
    """It measured the runtimes first (minutes where compile is tried: a video), printed the
    'runtime: auto took' line, then said '--style is required'."""
    from styleforge.pipeline import Pipeline

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    measured = []
    monkeypatch.setattr(Pipeline, "_measure", lambda self, *a, **k: measured.append(1) or [])
    img = sorted((h2z / "testA").iterdir())[0]
    assert main(["translate", str(saved / "adain"), str(img), "--out", str(tmp_path / "o"), "--runtime", "auto"]) == 2
    assert _one_error_line(capsys) == ("error: --style is required: " + styleforge.load(saved / "adain")
                                       .input("style").help)
    assert measured == [] and not any((tmp_path / "o").glob("*"))


@pytest.mark.parametrize("flags, line", [
    (["--batch-size", "0"], "error: --batch-size must be an integer >= 1, got 0"),
    (["--block-size", "0"], "error: --block-size must be an integer >= 1, got 0"),
    (["--resume", "--overwrite"], "error: --resume keeps finished outputs and --overwrite replaces them: give one"),
])
def test_translate_bad_batch_options_are_one_line_before_any_runtime_measurement(saved, h2z, tmp_path, monkeypatch,
                                                                                 capsys, flags, line):
    """--batch-size 0 measured the runtimes first (the 'runtime: auto took' line; minutes where
    compile is tried), then said the batch size was wrong."""
    from styleforge.pipeline import Pipeline

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    measured = []
    monkeypatch.setattr(Pipeline, "_measure", lambda self, *a, **k: measured.append(1) or [])
    img = sorted((h2z / "testA").iterdir())[0]
    assert main(["translate", str(saved / "cyclegan"), str(img), "--out", str(tmp_path / "o"), "--runtime", "auto",
                 *flags]) == 2
    assert _one_error_line(capsys) == line
    assert measured == [] and not (tmp_path / "o").exists()


def test_translate_of_an_unreadable_video_is_one_line_before_any_runtime_measurement(saved, tmp_path, monkeypatch,
                                                                                      capsys):
    """A text file named .mp4 (or a truncated download) had the runtimes measured on a synthetic
    image first (the 'runtime: auto took' line), then 'not a readable video'."""
    from styleforge.pipeline import Pipeline

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    measured = []
    monkeypatch.setattr(Pipeline, "_measure", lambda self, *a, **k: measured.append(1) or [])
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video\n")
    assert main(["translate", str(saved / "cyclegan"), str(fake), "--out", str(tmp_path / "o"),
                 "--runtime", "auto"]) == 2
    assert _one_error_line(capsys).startswith(f"error: cannot read video {fake}: not a readable video")
    assert measured == [] and not (tmp_path / "o").exists()


def test_a_mistyped_model_name_suggests_the_catalogue_names_close_to_it(tmp_path, monkeypatch):
    from styleforge.errors import CheckpointError

    monkeypatch.chdir(tmp_path)  # no folder of these names here
    with pytest.raises(CheckpointError, match=r"model not found: cyclegan/horse2zebr; did you mean "
                                              r"cyclegan/horse2zebra\?"):
        styleforge.load("cyclegan/horse2zebr")
    with pytest.raises(CheckpointError, match=r"did you mean cyclegan/horse2zebra\?"):
        styleforge.load("horse2zebra")
    with pytest.raises(CheckpointError) as e:  # a path in full is a path: no names offered
        styleforge.load(tmp_path / "cyclegan" / "horse2zebr")
    assert "did you mean" not in str(e.value)


def test_runtime_torch_on_an_onnx_file_says_what_runs_it(saved, tmp_path):
    """It said the file 'is a file; a styleforge model is a directory with config.json'."""
    from styleforge.export import export_model

    f = export_model(saved / "cyclegan", tmp_path / "g.onnx").path
    with pytest.raises(ConfigError, match=r"--runtime torch runs a model directory in PyTorch, and .*g\.onnx is an "
                                          r"ONNX file: leave --runtime out"):
        styleforge.load(f, runtime="torch")
    assert styleforge.load(f).runtime == "onnx"
