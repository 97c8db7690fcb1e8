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


def test_export_fixes_inputs_with_the_flags_translate_makes_for_them():
    """export's flags for the numbers, choices and flags it fixes in the file are made by the
    builder translate's are (``commands.add_declared_flags``): the same option, nargs, metavar,
    help and destination for every such input of every exportable tiny model."""
    from styleforge import config as C
    from styleforge.commands.export import _parser
    from styleforge.commands.translate import _full_parser
    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method

    kinds = set()
    for preset in (p for p in C.list_presets() if p.startswith("tiny/")):
        cfg = C.resolve(preset)
        method = build_method(cfg["method"], **cfg["model"])
        if not method.exportable:
            continue
        pipe = Pipeline(method, device="cpu")
        export, labels, fixable = _parser(pipe, "styleforge export M")
        translate, translate_labels = _full_parser("styleforge translate M", pipe, True)
        for inp in fixable:
            assert labels[inp.name] == translate_labels[inp.name]
            a = export._option_string_actions[labels[inp.name]]
            b = translate._option_string_actions[labels[inp.name]]
            assert (type(a), a.nargs, a.metavar, a.help, a.dest) == (type(b), b.nargs, b.metavar, b.help, b.dest), \
                f"{preset} {labels[inp.name]}"
            kinds.add(inp.kind)
        assert export.model_flags == tuple(f for f in translate.model_flags if f in export.model_flags)
    assert {"float", "floats", "int", "choice", "flag"} <= kinds


def test_export_help_without_a_model_names_int8_and_where_every_option_is(capsys):
    """The README's 'export MODEL --int8 --calibrate DIR' was nowhere in 'styleforge export --help'."""
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "[--int8 --calibrate DIR]" in out and "styleforge export MODEL --help" in out
