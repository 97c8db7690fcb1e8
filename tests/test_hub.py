"""Hub model folders (styleforge.hub): push uploads a model directory with its card, load
("hf:org/name") reads through the hub library's own cache and honours HF_HUB_OFFLINE, and
without huggingface_hub both say in one line what to install. Never the network: the hub's
cache layout built here, HF_ENDPOINT on a closed port, the upload API patched at its boundary."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from styleforge.card import read_card
from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.errors import ConfigError
from styleforge.registry import build_method

hf = pytest.importorskip("huggingface_hub", reason="the hub extra (pip install 'styleforge[hub]') is not installed")
SRC = Path(__file__).resolve().parents[1] / "src"


def tiny_model(folder: Path) -> Path:
    save_model(folder, build_method("johnson", ngf=4, n_blocks=1, vgg_weights="random"))
    return folder


def hub_cache_with(cache: Path, repo_id: str, model: Path) -> None:
    """The hub library's cache layout: models--ORG--NAME/refs/main -> snapshots/COMMIT/files."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in model.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())


def run_offline(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_ENDPOINT="http://127.0.0.1:9",
               PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_load_hf_name_reads_the_hub_cache_offline_and_a_missing_one_is_one_line(tmp_path):
    model = tiny_model(tmp_path / "m")
    cache = tmp_path / "hf"
    hub_cache_with(cache, "someone/candy", model)
    code = ("import styleforge, torch, sys\n"
            "from styleforge.checkpoint import load_model\n"
            "p = styleforge.load('hf:someone/candy')\n"
            f"ref = load_model({str(model)!r})\n"
            "x = torch.rand(1, 3, 16, 16) * 2 - 1\n"
            "with torch.no_grad():\n"
            "    print(p.method.method_name, torch.equal(p.method.translate(x), ref.translate(x)))\n"
            "from styleforge.cli import main\n"
            "sys.exit(main(['export', 'hf:someone/missing', '--format', 'onnx']))\n")
    r = run_offline(code, cache)
    assert r.stdout.split() == ["johnson", "True"], r.stderr
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert err[0].startswith("error: hf:someone/missing is not in the Hugging Face cache and HF_HUB_OFFLINE is set")


def test_push_uploads_the_model_directory_with_its_card(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(hf.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))

    def upload_folder(self, **kw):
        calls.append(("upload", kw["repo_id"], sorted(p.name for p in Path(kw["folder_path"]).iterdir()), kw))
        return type("Info", (), {"commit_url": f"https://huggingface.co/{kw['repo_id']}/commit/1"})()

    monkeypatch.setattr(hf.HfApi, "upload_folder", upload_folder)
    model = tiny_model(tmp_path / "m")
    (model / "README.md").unlink()  # a directory written before cards: push writes one first
    assert main(["push", str(model), "me/candy", "--private"]) == 0
    (kind, repo, kw), (kind2, repo2, names, up) = calls
    assert (kind, repo, kw["private"], kw["exist_ok"]) == ("create", "me/candy", True, True)
    assert kind2 == "upload" and repo2 == "me/candy"
    assert names == ["README.md", "config.json", "model.safetensors"]
    assert set(up["allow_patterns"]) == {"README.md", "config.json", "model.safetensors"}
    assert read_card(model)["styleforge"]["method"] == "johnson"
    assert "hf:me/candy" in capsys.readouterr().out
    assert main(["push", str(model), "not-a-repo-id"]) == 2  # ORG/NAME, in one line


def test_without_huggingface_hub_both_ways_say_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as when not installed
    import styleforge

    with pytest.raises(ConfigError, match=r"pip install 'styleforge\[hub\]'"):
        styleforge.load("hf:someone/candy")
    assert main(["push", str(tiny_model(tmp_path / "m")), "me/candy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huggingface_hub" in err[0] and "styleforge[hub]" in err[0]
