"""Every importer of the authors' checkpoints turns an empty, truncated or foreign file into a
one-line styleforge error (never an internal IndexError / EOFError traceback)."""
import pytest
import torch

from styleforge.cli import main
from styleforge.errors import StyleforgeError, first_line
from styleforge.registry import IMPORTERS, _load_all

_load_all()
NAMES = sorted(IMPORTERS)


def _files(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.pth"
    torch.save({"model.1.weight": torch.zeros(8, 3, 7, 7)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    foreign = tmp_path / "foreign.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, foreign)
    text = tmp_path / "notes.txt"
    text.write_text("not weights\n")
    return {"empty": empty, "truncated": truncated, "foreign": foreign, "text": text}


def test_every_importer_is_covered():
    # the registry is walked: a new importer is in these tests the moment it registers
    assert {"cyclegan", "pix2pix", "adain", "johnson", "munit", "unit", "funit", "ugatit"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_bad_file_is_a_styleforge_error_with_a_message(name, tmp_path):
    for kind, path in _files(tmp_path).items():
        with pytest.raises(StyleforgeError) as e:
            IMPORTERS[name](path)
        msg = str(e.value)
        assert msg.strip() and "\n" not in msg, (kind, msg)


@pytest.mark.parametrize("name", ["cyclegan", "adain"])
def test_cli_import_of_an_empty_file_is_one_line_and_exit_2(name, tmp_path, capsys):
    empty = _files(tmp_path)["empty"]
    assert main(["import", name, str(empty), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "internal error" not in err[0]
    assert not (tmp_path / "out").exists()


def test_first_line_of_an_empty_message_names_the_exception():
    assert first_line(EOFError()) == "EOFError"
    assert first_line(ValueError("bad\nmore")) == "bad"
    assert first_line(RuntimeError("  \n")) == "RuntimeError"
