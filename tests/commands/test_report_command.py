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
