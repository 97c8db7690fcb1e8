"""``styleforge stylize`` (commands/translate.py): the options that reach the method."""
from pathlib import Path

import pytest

from styleforge.cli import main
from styleforge.data.images import load_rgb
from styleforge.errors import ConfigError
from styleforge.methods.gatys import GatysStyleTransfer

ROOT = Path(__file__).resolve().parents[2] / "data" / "style_transfer"


def test_stylize_size_is_the_gatys_optimisation_size(tmp_path, monkeypatch):
    """--size N: the image is optimised at N px (longer side), not at the preset's size (tiny/gatys:
    32 px); the output keeps the photo's size."""
    seen = []
    orig = GatysStyleTransfer.optimise

    def spy(self, content, start, *a, **k):
        seen.append(tuple(start.shape[-2:]))
        return orig(self, content, start, *a, **k)

    monkeypatch.setattr(GatysStyleTransfer, "optimise", spy)
    content, style = ROOT / "content" / "golden_gate.jpg", ROOT / "style" / "starry_night.jpg"
    out = tmp_path / "out"
    base = ["stylize", str(content), "--style", str(style), "--method", "tiny/gatys", "--iterations", "1", "--quiet"]
    assert main(base + ["--out", str(out), "--size", "20"]) == 0
    assert max(seen[-1]) == 20
    written = next(out.iterdir())
    assert load_rgb(written).size == load_rgb(content).size
    assert main(base + ["--out", str(tmp_path / "out2")]) == 0
    assert max(seen[-1]) == 32  # the preset's own size without --size


def test_stylize_size_below_the_optimisation_floor_is_one_line(tmp_path, capsys):
    content, style = ROOT / "content" / "golden_gate.jpg", ROOT / "style" / "starry_night.jpg"
    for preset in ("tiny/gatys", "tiny/photo"):
        assert main(["stylize", str(content), "--style", str(style), "--method", preset, "--size", "4",
                     "--out", str(tmp_path / "out"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: --size: the optimisation needs at least 8 px (longer side), got 4"], preset
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_inputs_that_would_write_one_output_name_are_each_named_in_one_line_before_any_runtime_line(
        tiny_cyclegan_dir, h2z, tmp_path, capsys, monkeypatch):
    """a/chicago.jpg and b/chicago.jpg both write chicago.jpg; a/other.gif (not writable as GIF) and
    b/other.png both write other.png: one error line naming the inputs of each, exit 2, nothing
    written, no runtime measured or said."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    photo = sorted((h2z / "testA").iterdir())[0].read_bytes()
    for rel in ("a/chicago.jpg", "b/chicago.jpg", "a/other.gif", "b/other.png"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(photo)
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["translate", str(tiny_cyclegan_dir), str(a), str(b), "-o", str(tmp_path / "o"), "--runtime", "auto"]
    assert main(args + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {a / 'chicago.jpg'} and {b / 'chicago.jpg'} would both write chicago.jpg; "
                   f"{a / 'other.gif'} and {b / 'other.png'} would both write other.png: rename one, or "
                   "translate them into different folders"]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert not (tmp_path / "cache").exists()  # no runtime measured (auto caches what it measures)


@pytest.mark.parametrize("n_bad", [1, 2])
def test_a_job_of_only_unreadable_inputs_fails_in_one_line_before_any_runtime_line(n_bad, tiny_cyclegan_dir,
                                                                                 tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bad = [tmp_path / "bad.jpg", tmp_path / "notes.png"][:n_bad]
    for f in bad:
        f.write_text("not an image")
    args = ["translate", str(tiny_cyclegan_dir), *map(str, bad), "-o", str(tmp_path / "o"), "--runtime", "auto"]
    assert main(args + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(str(f) in err[0] for f in bad) and "not an image" in err[0]
    assert not (tmp_path / "cache").exists()  # nothing measured


def test_a_job_with_a_readable_input_skips_each_unreadable_one_in_one_line(tiny_cyclegan_dir, h2z, tmp_path,
                                                                           capsys):
    good = sorted((h2z / "testA").iterdir())[0]
    bad = [tmp_path / "bad.jpg", tmp_path / "notes.png"]
    for f in bad:
        f.write_text("not an image")
    assert main(["translate", str(tiny_cyclegan_dir), *map(str, bad), str(good), "-o", str(tmp_path / "o"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert sorted(err) == sorted(f"skipped: cannot read image {f}: not an image (unrecognised file format)"
                                 for f in bad)
    assert [p.name for p in (tmp_path / "o").iterdir()] == [good.name]


def test_stylize_quiet_turns_off_the_optimisers_own_progress_bar(tmp_path, monkeypatch, capsys):
    """The full gatys/photo presets set progress: true; --quiet removed the batch bar only and the
    optimiser's tqdm bar (one per image, the loss) still filled stderr."""
    from styleforge import config as C

    resolve = C.resolve

    def with_progress(name, *a, **k):  # the tiny presets turn it off; the full ones have it on
        cfg = resolve(name, *a, **k)
        cfg["model"]["progress"] = True
        return cfg

    monkeypatch.setattr(C, "resolve", with_progress)
    content, style = ROOT / "content" / "golden_gate.jpg", ROOT / "style" / "starry_night.jpg"
    for preset in ("tiny/gatys", "tiny/photo"):
        out = tmp_path / preset.replace("/", "_")
        assert main(["stylize", str(content), "--style", str(style), "--method", preset, "--size", "16",
                     "--out", str(out), "--quiet"]) == 0
        assert capsys.readouterr().err == "", preset
        assert len(list(out.iterdir())) == 1


def test_stylize_error_at_the_first_image_leaves_no_empty_out_folder(tmp_path, capsys):
    """A --vgg that is not a weights file is read when the first image is optimised, after the
    batch made --out: the error line left an empty folder behind."""
    content, style = ROOT / "content" / "golden_gate.jpg", ROOT / "style" / "starry_night.jpg"
    junk = tmp_path / "vgg.pth"
    junk.write_text("junk\n")
    out = tmp_path / "new" / "out"
    assert main(["stylize", str(content), "--style", str(style), "--method", "tiny/gatys", "--vgg", str(junk),
                 "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: cannot read {junk} as a PyTorch checkpoint: not a file torch.save writes (neither a zip archive "
        "nor a pickle)"]
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder that was there before is the user's: kept, even empty
    assert main(["stylize", str(content), "--style", str(style), "--method", "tiny/gatys", "--vgg", str(junk),
                 "--out", str(kept), "--quiet"]) == 2
    assert kept.is_dir()
