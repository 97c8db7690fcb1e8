"""``styleforge export``: an existing file is kept unless --overwrite."""
from styleforge.cli import main


def _run(capsys, *argv):
    rc = main(["export", *map(str, argv)])
    return rc, capsys.readouterr()


def test_export_refuses_an_existing_file_without_overwrite(tiny_cyclegan_dir, tmp_path, capsys):
    out = tmp_path / "g.onnx"
    rc, res = _run(capsys, tiny_cyclegan_dir, "-o", out, "--no-check")
    assert rc == 0 and out.stat().st_size > 0 and "exported AtoB as onnx" in res.out
    out.write_bytes(b"a file the user keeps")
    rc, res = _run(capsys, tiny_cyclegan_dir, "-o", out, "--no-check")
    assert rc == 2 and res.err.strip() == f"error: {out} exists; use --overwrite to replace it"
    assert out.read_bytes() == b"a file the user keeps"
    rc, res = _run(capsys, tiny_cyclegan_dir, "-o", out, "--no-check", "--overwrite", "--quiet")
    assert rc == 0 and res.out == "" and out.read_bytes() != b"a file the user keeps"
    assert out.read_bytes()[:2] != b"a "  # an ONNX protobuf now


def test_export_default_path_is_protected_too(tiny_cyclegan_dir, capsys):
    default = tiny_cyclegan_dir / "cyclegan-BtoA.pt"
    default.unlink(missing_ok=True)
    try:
        assert _run(capsys, tiny_cyclegan_dir, "--format", "torchscript", "--direction", "BtoA", "--no-check")[0] == 0
        before = default.read_bytes()
        rc, res = _run(capsys, tiny_cyclegan_dir, "--format", "torchscript", "--direction", "BtoA", "--no-check")
        assert rc == 2 and "use --overwrite" in res.err and default.read_bytes() == before
    finally:
        default.unlink(missing_ok=True)
