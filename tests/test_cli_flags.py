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
