"""The styleforge command's flags as a new user meets them: presets shown, mistyped flags,
help text, the same option names everywhere, import's output folder."""
import argparse
import re
from pathlib import Path

import pytest
import yaml

from styleforge import config as C
from styleforge.cli import CYCLEGAN_DEMO_DURATION, DEMO_DURATION, build_parser, main, plain_text

REPO = Path(__file__).resolve().parents[1]


def _error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _parsers():
    def walk(parser):
        yield parser
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    yield from walk(sp)
    return list(walk(build_parser()))


def test_presets_lists_user_presets_and_the_tiny_ones_only_with_all(capsys):
    tiny = [n for n in C.list_presets() if n.startswith("tiny/")]
    assert tiny and "cyclegan" in C.list_presets()
    assert main(["presets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "cyclegan" in names and not any(n.startswith("tiny/") for n in names)
    assert main(["presets", "--all"]) == 0
    names_all = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert sorted(names_all) == sorted(C.list_presets())


@pytest.mark.parametrize("argv, needle", [
    (["report", "run", "-o", "x", "--overwirte"], "report: unknown option --overwirte; did you mean --overwrite?"),
    (["evaluate", "--real", "a", "--fake", "b", "--metirc", "fid"], "did you mean --metrics?"),
    (["prepare", "faces", "a", "b", "--retry-rejectd"], "prepare faces: unknown option --retry-rejectd; "
                                                         "did you mean --retry-rejected?"),
    (["report", "run", "-o", "x", "train.lr=1"], "report: unexpected argument 'train.lr=1'"),
    (["train", "--preset", "tiny/cyclegan", "--dry-runn"], "'--dry-runn'; did you mean --dry-run?"),
])
def test_a_mistyped_flag_is_one_line_with_the_closest_flag(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in _error_line(capsys)


def test_train_still_takes_overrides_in_both_spellings(capsys):
    argv = ["train", "--preset", "tiny/cyclegan", "--dry-run", "train.lr=0.0007", "--train.steps", "3",
            "--model.ngf=5"]
    assert main(argv) == 0
    cfg = yaml.safe_load(capsys.readouterr().out.split("# parameters")[0])
    assert (cfg["train"]["lr"], cfg["train"]["steps"], cfg["model"]["ngf"]) == (0.0007, 3, 5)


def test_every_option_has_help_and_no_help_text_has_rest_markup():
    for parser in _parsers():
        for t in (parser.description, parser.epilog):
            assert not t or ("``" not in t and not re.search(r":[a-z]+:`", t)), (parser.prog, t)
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            assert a.help, f"{parser.prog} {a.option_strings or a.dest} has no help"
            assert "``" not in a.help, (parser.prog, a.help)


def test_plain_text_removes_rest_markup():
    assert plain_text("writes ``NAME.png`` (see :func:`~styleforge.faces.whiten`)") == \
        "writes NAME.png (see styleforge.faces.whiten)"


def test_commands_that_write_take_out_o_and_overwrite():
    """(export's flags are built from the model it loads: tests/commands/test_export_command.py)"""
    by_prog = {p.prog: p for p in _parsers()}
    for cmd in ("train", "import", "report", "evaluate", "demo"):
        opts = by_prog[f"styleforge {cmd}"]._option_string_actions
        assert "--out" in opts and "-o" in opts, cmd
    for cmd in ("import", "report", "evaluate"):
        assert "--overwrite" in by_prog[f"styleforge {cmd}"]._option_string_actions, cmd
    for cmd in ("report", "evaluate", "demo"):
        assert "--device" in by_prog[f"styleforge {cmd}"]._option_string_actions, cmd


def test_the_demo_duration_is_said_the_same_way_everywhere():
    assert DEMO_DURATION in build_parser()._subparsers._group_actions[0].choices["demo"].description
    assert DEMO_DURATION in (REPO / "README.md").read_text()
    assert DEMO_DURATION in (REPO / "scripts" / "demo.sh").read_text()
    cyclegan = build_parser()._subparsers._group_actions[0].choices["demo"]._option_string_actions["--cyclegan"]
    assert CYCLEGAN_DEMO_DURATION in cyclegan.help and CYCLEGAN_DEMO_DURATION in (REPO / "README.md").read_text()
    assert CYCLEGAN_DEMO_DURATION in C.resolve("cyclegan/demo")["description"]


def test_import_writes_to_out_given_either_way(tmp_path, capsys):
    import torch

    from styleforge.checkpoint import load_model
    from styleforge.registry import build_method

    torch.manual_seed(0)
    g = build_method("cyclegan", ngf=4, netG="resnet_6blocks").G_A
    torch.save(g.state_dict(), tmp_path / "latest_net_G_A.pth")
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), "-o", str(tmp_path / "m1"),
                 "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    m = load_model(tmp_path / "m1")
    assert torch.equal(m.G_A.state_dict()["model.1.weight"], g.state_dict()["model.1.weight"])
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "m2")]) == 0
    assert (tmp_path / "m2" / "model.safetensors").is_file()
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "m3"),
                 "--out", str(tmp_path / "m4")]) == 2
    assert "two output folders" in _error_line(capsys)
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth")]) == 2
    assert "give the model directory to write" in _error_line(capsys)
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), "-o", str(tmp_path / "m1")]) == 2
    assert "use --overwrite" in _error_line(capsys)


def test_out_of_the_one_file_commands_says_file_and_refuses_a_folder(tiny_cyclegan_dir, h2z, tmp_path, capsys):
    """The README's rule: --out is a folder, except for export, evaluate and interpolate, which
    write one file: their help says FILE and a folder is a one-line error naming the command."""
    by_prog = {p.prog: p for p in _parsers()}
    for prog in ("styleforge evaluate", "styleforge interpolate"):
        out = by_prog[prog]._option_string_actions["--out"]
        assert out.metavar == "FILE" and "file" in out.help, prog
    folder = tmp_path / "results"
    folder.mkdir()
    assert main(["export", str(tiny_cyclegan_dir), "-o", str(folder), "--quiet"]) == 2
    assert "--out " + str(folder) + " is a folder; export writes one file" in _error_line(capsys)
    assert main(["export", str(tiny_cyclegan_dir), "--help"]) == 0
    assert "-o FILE" in capsys.readouterr().out
    assert main(["evaluate", "--real", str(h2z / "testA"), "--fake", str(h2z / "testB"), "-o", str(folder),
                 "--overwrite"]) == 2
    assert "is a folder; evaluate writes one file" in _error_line(capsys)
    assert main(["interpolate", str(tiny_cyclegan_dir), str(next((h2z / "testA").iterdir())), "--from", "0",
                 "--to", "1", "-o", str(tmp_path / "new") + "/"]) == 2
    assert "is a folder; interpolate writes one file" in _error_line(capsys)
    assert list(folder.iterdir()) == []


def test_out_of_the_folder_commands_refuses_an_existing_file(tiny_cyclegan_dir, h2z, tmp_path, capsys):
    f = tmp_path / "out.png"
    f.write_bytes(b"keep")
    assert main(["translate", str(tiny_cyclegan_dir), str(next((h2z / "testA").iterdir())), "-o", str(f)]) == 2
    assert f"--out {f} is a file; translate writes into a folder" in _error_line(capsys)
    assert f.read_bytes() == b"keep"


def test_evaluate_seed_is_named_kid_seed_and_the_old_name_says_so(h2z, tmp_path, capsys):
    by_prog = {p.prog: p for p in _parsers()}
    assert "KID" in by_prog["styleforge evaluate"]._option_string_actions["--kid-seed"].help
    assert main(["evaluate", "--real", str(h2z / "testA"), "--fake", str(h2z / "testB"), "--seed", "3"]) == 2
    assert "evaluate --seed is now --kid-seed 3" in _error_line(capsys)
    tsne = by_prog["styleforge codes"]._option_string_actions["--tsne-seed"]
    assert by_prog["styleforge codes"]._option_string_actions["--seed"] is tsne  # the old name still works


def test_train_takes_bf16_as_translate_does(capsys):
    assert main(["train", "--preset", "tiny/cyclegan", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out.split("# parameters")[0])["train"]["amp"] is False
    assert main(["train", "--preset", "tiny/cyclegan", "--bf16", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out.split("# parameters")[0])["train"]["amp"] is True


def test_an_interrupted_translate_says_how_to_resume(tiny_cyclegan_dir, h2z, tmp_path, monkeypatch, capsys):
    import styleforge.batch

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(styleforge.batch, "translate_files", interrupted)
    argv = ["translate", str(tiny_cyclegan_dir), str(h2z / "testA"), "-o", str(tmp_path / "o"), "--overwrite"]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted; the outputs written so far are kept") and err.count("\n") == 0
    assert err.endswith(f"styleforge translate {tiny_cyclegan_dir} {h2z / 'testA'} -o {tmp_path / 'o'} --resume")


def test_presets_piped_into_a_reader_that_stops_early_ends_quietly():
    import subprocess
    import sys

    # a reader that takes one line and leaves, as 'styleforge presets --all | head -1'
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m styleforge presets --all | head -1"],
                       capture_output=True, text=True, timeout=120)
    assert len(r.stdout.splitlines()) == 1 and r.stderr == "", r.stderr
    assert r.returncode in (0, 141)  # 141: stopped by the closed pipe, as a Unix tool is


def test_import_flags_are_made_from_each_importers_signature_and_declared_help(tmp_path, capsys):
    """Every keyword an importer takes is an ``import`` flag whose help names that importer and
    says what it declared; cli.py writes none by hand. A flag the chosen importer does not take
    is one line listing the ones it does, and a number is read as its default's type."""
    import inspect

    import torch

    from styleforge.checkpoint import load_model
    from styleforge.registry import IMPORTER_OPTIONS, IMPORTERS, build_method, importer_options

    im = build_parser("import")._subparsers._group_actions[0].choices["import"]
    opts = importer_options()
    for name, fn in IMPORTERS.items():
        for p in list(inspect.signature(fn).parameters.values())[1:]:
            if p.kind == p.VAR_KEYWORD:
                continue
            action = im._option_string_actions.get("--" + p.name.replace("_", "-"))
            assert action is not None, f"import has no flag for {name}'s {p.name}"
            assert IMPORTER_OPTIONS[name].get(p.name), f"importer {name} declares no help for {p.name}"
            assert f"{name}: {IMPORTER_OPTIONS[name][p.name]}" in action.help
    cli_source = (REPO / "src" / "styleforge" / "cli.py").read_text()
    assert "reverse" in opts and not re.search(r"add_argument\(\s*\"--(reverse|direction|vgg)\"", cli_source)
    # other commands do not load the importers (every method module) to build their parser
    assert "--reverse" not in build_parser("train")._subparsers._group_actions[0].choices["import"]._option_string_actions

    torch.manual_seed(0)
    m = build_method("cyclegan", ngf=4, netG="resnet_6blocks")
    torch.save(m.G_A.state_dict(), tmp_path / "latest_net_G_A.pth")
    torch.save(m.G_B.state_dict(), tmp_path / "latest_net_G_B.pth")
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "both"),
                 "--reverse", str(tmp_path / "latest_net_G_B.pth"), "--quiet"]) == 0
    assert torch.equal(load_model(tmp_path / "both").G_B.state_dict()["model.1.weight"],
                       m.G_B.state_dict()["model.1.weight"])
    assert main(["import", "cyclegan", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "x"),
                 "--direction", "BtoA"]) == 2
    assert _error_line(capsys) == "error: import cyclegan takes no --direction (its options: reverse, norm)"
    assert main(["import", "funit", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "y"),
                 "--num-classes", "many"]) == 2
    assert _error_line(capsys) == "error: --num-classes takes an integer, got 'many'"
