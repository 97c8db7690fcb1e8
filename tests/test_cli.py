"""The styleforge command: translate on files, folders, globs and odd sizes; one-line errors."""
import subprocess
import sys

import pytest
import torch
from PIL import Image

from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.registry import build_method


def run(*args):
    return subprocess.run([sys.executable, "-m", "styleforge", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def one_line_error(r, *needles):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_translate_folder_keeps_names_and_sizes(tiny_cyclegan_dir, h2z, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    files = sorted((h2z / "testA").iterdir())[:3]
    sizes = [(37, 53), (128, 128), (101, 64)]  # odd sizes are padded then cropped back
    for f, s in zip(files, sizes):
        Image.open(f).convert("RGB").resize(s).save(src / f.name)
    assert main(["translate", str(tiny_cyclegan_dir), str(src), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    outs = sorted((tmp_path / "out").iterdir())
    assert [o.name for o in outs] == [f.name for f in files]
    assert [Image.open(o).size for o in outs] == sizes


def test_translate_matches_the_python_api(tiny_cyclegan_dir, h2z, tmp_path):
    import styleforge
    from styleforge.data.images import load_rgb

    f = sorted((h2z / "testB").iterdir())[0]
    r = run("translate", tiny_cyclegan_dir, f, "--out", tmp_path / "o", "--direction", "BtoA")
    assert r.returncode == 0, r.stderr
    from styleforge.utils.images import save_image_atomic

    out_name = f.stem + ".png" if f.suffix.lower() not in (".jpg", ".jpeg", ".png") else f.name
    # the API's image, encoded the same way the CLI encodes it (JPEG keeps JPEG, quality 95)
    save_image_atomic(styleforge.load(tiny_cyclegan_dir)(load_rgb(f), direction="BtoA"), tmp_path / out_name)
    import numpy as np

    got = np.asarray(Image.open(tmp_path / "o" / out_name), dtype=int)
    want = np.asarray(Image.open(tmp_path / out_name), dtype=int)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_translate_glob_and_overwrite_rules(tiny_cyclegan_dir, h2z, tmp_path):
    pattern = str(h2z / "testA" / "*.jpg")
    assert main(["translate", str(tiny_cyclegan_dir), pattern, "--out", str(tmp_path / "o"), "--quiet"]) == 0
    n = len(list((tmp_path / "o").iterdir()))
    assert n == len(list((h2z / "testA").glob("*.jpg")))
    # a second run refuses to overwrite, unless told
    r = run("translate", tiny_cyclegan_dir, pattern, "--out", tmp_path / "o")
    one_line_error(r, "already exist", "--overwrite")
    r = run("translate", tiny_cyclegan_dir, pattern, "--out", tmp_path / "o", "--overwrite")
    assert r.returncode == 0


def test_translate_skips_unreadable_files_in_a_folder(tiny_cyclegan_dir, h2z, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    good = sorted((h2z / "testA").iterdir())[0]
    (src / good.name).write_bytes(good.read_bytes())
    (src / "broken.jpg").write_bytes(good.read_bytes()[:300])
    (src / "notes.png").write_text("not an image")
    r = run("translate", tiny_cyclegan_dir, src, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout + r.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == [good.name]


@pytest.mark.parametrize("case", ["missing_input", "corrupt_single", "bad_direction", "not_a_model",
                                  "pth_file", "wrong_kind"])
def test_translate_bad_input_is_one_line(case, tiny_cyclegan_dir, tmp_path):
    args = {"missing_input": [tiny_cyclegan_dir, tmp_path / "nope.jpg"],
            "corrupt_single": [tiny_cyclegan_dir, tmp_path / "c.jpg"],
            "bad_direction": [tiny_cyclegan_dir, tmp_path / "ok.png", "--direction", "CtoD"],
            "not_a_model": [tmp_path, tmp_path / "ok.png"],
            "pth_file": [tmp_path / "w.pth", tmp_path / "ok.png"],
            "wrong_kind": [tmp_path / "other", tmp_path / "ok.png"]}[case]
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff garbage")
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "w.pth").write_bytes(b"x")
    (tmp_path / "other").mkdir(exist_ok=True)
    (tmp_path / "other" / "config.json").write_text('{"format": "something-else"}')
    needle = {"missing_input": "input not found", "corrupt_single": "cannot read image",
              "bad_direction": "--direction must be one of AtoB, BtoA, got 'CtoD'", "not_a_model": "no config.json",
              "pth_file": "styleforge import", "wrong_kind": "not a styleforge model config"}[case]
    one_line_error(run("translate", *args, "--out", tmp_path / "out"), needle)


@pytest.mark.parametrize("args,needle", [
    (["train", "--preset", "nope", "--data", "x"], "unknown preset 'nope'"),
    (["train", "--preset", "tiny/cyclegan", "--data", "/no/such/dir"], "/no/such/dir"),
    (["train", "--preset", "tiny/cyclegan"], "--data"),
    (["train", "--preset", "tiny/cyclegan", "--data", ".", "model.ngff=3"], "model.ngf"),
    (["train", "--preset", "tiny/cyclegan", "--data", ".", "--bogus"], "--bogus"),
    (["train", "--resume", "/no/run"], "cannot resume"),
    (["import", "cyclegan", "/no/file.pth", "out"], "checkpoint not found"),
    (["import", "nomethod", "f", "out"], "no importer"),
    (["import", "pix2pix", "/no/file.pth", "out", "--reverse", "g.pth"], "import pix2pix takes no --reverse"),
    (["import", "ugatit", "/no/file.pt", "out", "--direction", "BtoA"], "import ugatit takes no --direction"),
])
def test_train_and_import_bad_input_is_one_line(args, needle):
    one_line_error(run(*args), needle)


def test_dry_run_prints_config_and_exact_parameter_counts():
    r = run("train", "--preset", "cyclegan", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "lambda_identity: 0.5" in r.stdout
    assert "G_A: 11,378,179" in r.stdout and "D_A: 2,764,737" in r.stdout


def test_every_command_has_help():
    for cmd in ([], ["train"], ["translate"], ["import"], ["demo"], ["presets"]):
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "usage: styleforge" in r.stdout


@pytest.mark.parametrize("light", [True, False])
def test_translate_heatmaps_written_beside_outputs(light, h2z, tmp_path):
    """--heatmaps: NAME_heatmap.EXT of the output's size, equal to the API's coloured CAM map
    (full U-GAT-IT resizes to its fixed size and back, light pads: both paths)."""
    import numpy as np

    import styleforge
    from styleforge.data.images import load_rgb
    from styleforge.data.transforms import to_pil, to_tensor

    torch.manual_seed(0)
    model = tmp_path / "ug"
    save_model(model, build_method("ugatit", light=light, img_size=64, ch=4, n_res=1))
    src = tmp_path / "in"
    src.mkdir()
    f = sorted((h2z / "testA").iterdir())[0]
    Image.open(f).convert("RGB").resize((70, 50)).save(src / "a.png")
    assert main(["translate", str(model), str(src), "-o", str(tmp_path / "out"), "--heatmaps", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a_heatmap.png"]
    heat = np.asarray(Image.open(tmp_path / "out" / "a_heatmap.png"))
    assert heat.shape == (50, 70, 3)
    y, h = styleforge.load(model).translate_tensor(to_tensor(load_rgb(src / "a.png")), return_heatmap=True)
    assert np.array_equal(heat, np.asarray(to_pil(h)))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), np.asarray(to_pil(y)))
    # jet colouring of a map scaled to [0, 1]: green only in the middle of the range, blue at the
    # low end, red at the high end; both ends are reached somewhere
    assert heat[..., 2].max() > 100 and heat[..., 0].max() > 100 and not np.array_equal(heat[..., 0], heat[..., 2])


def test_translate_heatmaps_refused_for_models_without_them(tiny_cyclegan_dir, h2z, tmp_path):
    f = sorted((h2z / "testA").iterdir())[0]
    r = run("translate", tiny_cyclegan_dir, f, "-o", tmp_path / "o", "--heatmaps")
    one_line_error(r, "--heatmaps: no such option", "model's inputs: --direction")
    assert not (tmp_path / "o").exists()


def test_interrupted_job_outside_train_ends_in_one_line(monkeypatch, capsys):
    """demo (and any command that runs the trainer) after SIGINT/SIGTERM: exit 130, one line that
    names the checkpoint, no 'internal error'."""
    import styleforge.demo
    from styleforge.training.trainer import Interrupted

    def interrupted(**kw):
        raise Interrupted(15, 7, "results/demo/run/checkpoints/step_00000007")

    monkeypatch.setattr(styleforge.demo, "run_demo", interrupted)
    assert main(["demo"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: interrupted by signal 15 at step 7")
    assert "step_00000007" in err[0] and "resumes" in err[0]


@pytest.mark.parametrize("flag,value", [("--size", "-5"), ("--size", "0"), ("--block-size", "-3"),
                                        ("--batch-size", "0"), ("--workers", "-1")])
def test_translate_refuses_nonsense_numbers(flag, value, tiny_cyclegan_dir, h2z, tmp_path, capsys):
    f = sorted((h2z / "testA").iterdir())[0]
    assert main(["translate", str(tiny_cyclegan_dir), str(f), "-o", str(tmp_path / "o"), flag, value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {flag} must be an integer >=") and value in err[0]
    assert not any((tmp_path / "o").glob("*"))


def test_translate_mistyped_model_path_says_model_not_found(h2z, tmp_path, capsys):
    f = sorted((h2z / "testA").iterdir())[0]
    assert main(["translate", str(tmp_path / "no_such_model"), str(f), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: model not found: {tmp_path / 'no_such_model'}") and err.count("\n") == 1


@pytest.mark.parametrize("override,needle", [
    ("data.num_samples=null", "data.num_samples"),
    ("data.crop_size=8", "data.crop_size=8 is too small for cyclegan"),
    ("model.ngf=abc", "model.ngf must be a whole number"),
])
def test_train_bad_config_exits_2_before_the_run_folder_exists(override, needle, h2z, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny/cyclegan", "--data", str(h2z), "--out", str(out), override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists()


def test_ctrl_c_while_the_command_line_is_built_is_exit_130_without_a_traceback(monkeypatch, capsys):
    """SIGINT in the first seconds (commands' modules importing torch): it escaped main as a
    KeyboardInterrupt traceback."""
    import styleforge.cli as cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        code = main(["translate", "m", "x.jpg", "-o", "o"])
    except KeyboardInterrupt:  # (not re-raised: it would stop the whole test session)
        pytest.fail("KeyboardInterrupt escaped main")
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted"]
