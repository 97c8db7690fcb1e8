"""styleforge models: every catalogue entry with its status, size and licence, non-commercial
ones said plainly; a pulled model shows as here."""
import json

from styleforge.cli import main


def test_models_lists_licences_plainly_and_what_is_here(model_server, tmp_path, capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cyclegan/horse2zebra"]["status"] == "not pulled"
    assert rows["unit/gta2city"]["non_commercial"] is True and rows["johnson/candy"]["non_commercial"] is False
    assert rows["cin/multistyle26"]["status"] in ("installable", "here", "not installed")
    # a model directory put where pull writes counts as here
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    save_model(tmp_path / "weights" / "models" / "johnson" / "candy",
               build_method("johnson", ngf=4, n_blocks=1, vgg_weights="random"))
    assert main(["models", "johnson"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("  johnson/")]
    assert len(lines) == 4 and "here" in lines[0].split() and "not pulled" in lines[1]
    assert main(["models", "unit"]) == 0
    out = capsys.readouterr().out
    assert "NON-COMMERCIAL cc-by-nc-sa-4.0" in out and "CC BY-NC-SA 4.0" in out


def test_models_with_a_filter_that_matches_nothing_is_one_line_and_exit_2(capsys):
    """It printed an empty 'Licences' heading and '0 models', exit 0."""
    assert main(["models", "cyclegan/horse2zebr_"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no model name contains 'cyclegan/horse2zebr_'; did you "
                                               "mean cyclegan/horse2zebra")
    assert err[0].endswith("('styleforge models' lists all 39)")


def test_models_filter_of_one_model_says_1_model_not_1_models(capsys):
    assert main(["models", "funit"]) == 0
    out = capsys.readouterr().out
    assert "\n1 model, " in out and "1 models" not in out
    assert main(["models", "johnson"]) == 0
    assert "\n4 models, " in capsys.readouterr().out
