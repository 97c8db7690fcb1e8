"""The model card (styleforge.card): every model directory styleforge writes (train, import,
pull) carries README.md with front matter the Hugging Face Hub reads, written by one function."""
import hashlib

import torch

from styleforge.card import card_text, read_card
from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.registry import build_method


def test_card_front_matter_is_what_the_hub_reads_and_names_the_paper():
    card = card_text("cyclegan", {"how": "imported", "licence": "BSD-2-Clause (x)", "licence_id": "bsd-2-clause",
                                  "source": "http://example/h.pth", "imported": True})
    assert card.startswith("---\n")
    front = read_card_text(card)
    assert front["library_name"] == "styleforge" and front["license"] == "bsd-2-clause"
    assert "cyclegan" in front["tags"] and front["pipeline_tag"] == "image-to-image"
    own = front["styleforge"]
    assert own["method"] == "cyclegan" and own["paper"].startswith("Zhu, Park, Isola, Efros")
    assert own["source"] == "http://example/h.pth" and "1e-5" in own["equality_check"]
    # nothing known: the Hub's "other" with a name, and no invented licence
    bare = read_card_text(card_text("johnson"))
    assert bare["license"] == "other" and bare["license_name"] == "not-recorded"
    assert "licence" not in bare["styleforge"] and "equality_check" not in bare["styleforge"]


def read_card_text(text: str) -> dict:
    import yaml

    return yaml.safe_load(text[4:].partition("\n---")[0])


def test_save_model_writes_the_card_of_its_method(tmp_path):
    save_model(tmp_path / "m", build_method("johnson", ngf=4, n_blocks=1, vgg_weights="random"))
    card = read_card(tmp_path / "m")
    assert card["styleforge"]["method"] == "johnson" and "1603.08155" in card["styleforge"]["paper_url"]


def test_cli_import_card_records_the_file_and_its_sha256(tmp_path):
    m = build_method("cyclegan", ngf=4, netG="resnet_6blocks")
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(m.G_A.state_dict(), path)  # laid out as the authors' ResnetGenerator (tests/methods/test_cyclegan.py)
    assert main(["import", "cyclegan", str(path), str(tmp_path / "out"), "--quiet"]) == 0
    own = read_card(tmp_path / "out")["styleforge"]
    assert own["how"] == "imported with 'styleforge import cyclegan latest_net_G_A.pth'"
    assert own["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and own["file"] == path.name
    assert "ResnetGenerator" in own["equality_check"]


def test_a_trained_model_card_says_how_it_was_trained(tmp_path, h2z):
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny/cyclegan", "--data", str(h2z), "--out", str(out),
                 "train.steps=2", "train.steps_decay=0"]) == 0
    own = read_card(out / "model")["styleforge"]
    assert own["how"].startswith("trained with 'styleforge train' for 2 steps on the data folder 'horse2zebra'")
    # the folder names, never this machine's paths (the card is meant to be shared)
    assert "'run'" in own["how"] and str(tmp_path) not in (out / "model" / "README.md").read_text()
    assert own["method"] == "cyclegan"
