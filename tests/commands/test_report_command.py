"""``styleforge report``: an existing page is kept unless --overwrite."""
from styleforge.cli import main


def test_report_refuses_an_existing_page_without_overwrite(tiny_cyclegan_dir, h2z, tmp_path, capsys):
    out = tmp_path / "page"
    out.mkdir()
    (out / "index.html").write_text("the user's own page")
    argv = ["report", str(tiny_cyclegan_dir), "-o", str(out), "--data", str(h2z), "--metrics", "none",
            "--num-images", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out / 'index.html'} exists; use --overwrite to replace the report"
    assert (out / "index.html").read_text() == "the user's own page"
    assert main(argv + ["--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    html = (out / "index.html").read_text()
    assert html != "the user's own page" and "<html" in html.lower()


def _fake_run(root, model_dir, data_root):
    """A run folder as the trainer leaves it, as far as report reads it: config.yaml + model/."""
    import shutil

    shutil.copytree(model_dir, root / "model")
    (root / "config.yaml").write_text(f"method: cyclegan\ndata:\n  dataset: unpaired\n  root: {data_root}\n")
    return root


def test_report_says_when_runs_were_trained_on_different_data(tiny_cyclegan_dir, h2z, tmp_path, capsys):
    a = _fake_run(tmp_path / "a", tiny_cyclegan_dir, h2z)
    b = _fake_run(tmp_path / "b", tiny_cyclegan_dir, tmp_path / "other_data")
    same = _fake_run(tmp_path / "same", tiny_cyclegan_dir, h2z)
    common = ["--metrics", "none", "--num-images", "1", "--quiet"]
    assert main(["report", str(a), str(same), "-o", str(tmp_path / "p1"), *common]) == 0
    assert capsys.readouterr().err == "" and "different data" not in (tmp_path / "p1" / "index.html").read_text()
    assert main(["report", str(a), str(b), "-o", str(tmp_path / "p2"), *common]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: these runs were trained on different data")
    assert f"a: {h2z.resolve()}" in err[0] and f"b: {(tmp_path / 'other_data').resolve()}" in err[0]
    assert "trained on different data" in (tmp_path / "p2" / "index.html").read_text()
