"""The promise of the method contract: a method defined here, in a test file and nowhere else
(its own networks, a declared style image, a drawn code and a number), trains and resumes through
the CLI, translates through the CLI, the batch job, the web API and an exported ONNX file, and
is evaluated, with no file of the package touched. A front end or the trainer that knew the
package's methods by name, or read something a method does not declare, fails here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch import nn

import styleforge
from styleforge.methods.base import Input, Method, Phase
from styleforge.registry import METHODS, register_method

DATA = Path(__file__).resolve().parents[1] / "data" / "style_transfer"
CODE = 4


def _stats(f: torch.Tensor) -> torch.Tensor:
    return torch.cat([f.mean(dim=(2, 3)), f.std(dim=(2, 3)) + 1e-5], dim=1)


@register_method("toy_test_method")
class ToyMethod(Method):
    """A style image's channel statistics, a code and a number ``gain`` modulate a two-layer
    encoder-decoder: each input changes the picture, so a front end that drops one is seen."""

    data_kind = "content_style"
    inference_modules = ("enc", "dec", "mlp")
    fit_terms = ("rec",)

    def __init__(self, width: int = 8, lr_scale: float = 1.0):
        super().__init__()
        self.enc = nn.Conv2d(3, width, 3, padding=1)
        self.dec = nn.Conv2d(width, 3, 3, padding=1)
        self.mlp = nn.Linear(2 * width + CODE, 2 * width)

    def optimizer_groups(self):
        return {"G": list(self.parameters())}

    def inference_options(self):
        return [Input("style", "reference", required=True, size=32, help="the style image"),
                Input("z", "code", size=CODE, help="a style code (drawn when not given)"),
                Input("gain", "float", default=0.5, min=0.0, max=1.0, help="how much of the style"),
                Input("seed", "seed", default=0, help="seed of the drawn code")]

    def translate(self, x, direction=None, style=None, z=None, gain=0.5, seed=0):
        # (seed: the pipeline draws z from it; every declared input reaches translate)
        self.check_direction(direction)
        h = torch.relu(self.enc(x))
        s = self.enc(style if style is not None else x)
        z = torch.zeros(x.shape[0], CODE) if z is None else z
        scale, shift = self.mlp(torch.cat([_stats(s).expand(x.shape[0], -1), z], 1)).chunk(2, dim=1)
        h = h * (1 + gain * scale[..., None, None]) + gain * shift[..., None, None]
        return torch.tanh(self.dec(h))

    def training_step(self, batch):
        content, style = batch["content"], batch["style"]
        z = torch.randn(content.shape[0], CODE)
        out = self.translate(content, style=style, z=z, gain=0.5)
        plain = self.translate(content, style=content, z=torch.zeros_like(z), gain=0.0)
        yield Phase("G", {"rec": F.l1_loss(plain, content),
                          "style": 0.1 * F.l1_loss(_stats(out), _stats(style))})

    @torch.no_grad()
    def visuals(self, batch):
        out = self.translate(batch["content"], style=batch["style"], z=torch.zeros(batch["content"].shape[0], CODE))
        return {"content": batch["content"], "style": batch["style"], "stylized": out}


def _config(tmp_path: Path, steps: int) -> Path:
    cfg = {"method": "toy_test_method", "model": {"width": 8},
           "data": {"root": str(DATA), "load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0},
           "train": {"steps": steps, "steps_decay": 0, "lr": 2e-3, "log_every": 1, "sample_every": 0,
                     "checkpoint_every": 3, "tensorboard": False, "progress": False}}
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _log(run: Path) -> list[dict]:
    from styleforge.training.logging import read_log

    return [{k: v for k, v in r.items() if k not in ("time", "epoch")} for r in read_log(run)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run folder of an uninterrupted 6-step CLI run, one cut at step 3 and resumed by the CLI)."""
    from styleforge.cli import main
    from styleforge.training.trainer import Trainer
    from styleforge import config as C

    tmp = tmp_path_factory.mktemp("toy")
    cfg_file = _config(tmp, 6)
    assert main(["train", "--config", str(cfg_file), "--out", str(tmp / "full"), "--device", "cpu"]) == 0
    Trainer(C.resolve(config_file=cfg_file), tmp / "cut").fit(stop_at=3)
    assert main(["train", "--resume", str(tmp / "cut"), "--device", "cpu"]) == 0
    return tmp / "full", tmp / "cut"


def test_a_method_defined_in_a_test_trains_and_resumes_exactly_through_the_cli(trained):
    full, cut = trained
    a, b = _log(full), _log(cut)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 7))
    assert a == b  # every logged value of every step
    assert a[-1]["rec"] < a[0]["rec"]  # it learned something


def _model(run: Path):
    return styleforge.load(run, device="cpu")


def _inputs(tmp: Path) -> tuple[Path, Path]:
    content = sorted((DATA / "content").iterdir())[0]
    style = sorted((DATA / "style").iterdir())[0]
    c, s = tmp / "content.png", tmp / "style.png"
    Image.open(content).convert("RGB").resize((40, 32)).save(c)
    Image.open(style).convert("RGB").resize((32, 32)).save(s)
    return c, s


def test_its_declared_inputs_reach_the_cli_batch_web_and_onnx_with_equal_pixels(trained, tmp_path):
    from fastapi.testclient import TestClient

    from styleforge.cli import main
    from styleforge.export import export_model
    from styleforge.webapp import create_app, load_models

    run, _ = trained
    content, style = _inputs(tmp_path)
    pipe = _model(run)
    assert [i.name for i in pipe.inputs] == ["image", "direction", "style", "z", "gain", "seed"]
    want = [np.asarray(o["image"]) for o in pipe.run(content, style=style, gain=0.8, seed=5, num_outputs=2)]
    assert not np.array_equal(want[0], want[1])  # the drawn code reaches the picture
    other = np.asarray(pipe.run(content, style=style, gain=0.2, seed=5)[0]["image"])
    assert not np.array_equal(other, want[0])  # and the number does

    # the CLI, one file and a folder (the batch job), with flags made from the declaration
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "content.png").write_bytes(content.read_bytes())
    (folder / "broken.png").write_bytes(b"not an image")
    for src, out in ((content, tmp_path / "one"), (folder, tmp_path / "many")):
        assert main(["translate", str(run), str(src), "-o", str(out), "--style", str(style), "--gain", "0.8",
                     "--seed", "5", "--num-outputs", "2", "--quiet", "--workers", "0", "--device", "cpu"]) == 0
        for k in range(2):
            assert np.array_equal(np.asarray(Image.open(out / f"content_{k}.png")), want[k])
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["content_0.png", "content_1.png"]

    # the web API: a field per input, by its declared name
    models = load_models([run], device="cpu")
    with TestClient(create_app(models)) as client:
        r = client.post("/api/translate", data={"model": next(iter(models)), "gain": "0.8", "seed": "5"},
                        files={"image": ("content.png", content.read_bytes()), "style": ("style.png", style.read_bytes())})
    assert r.status_code == 200, r.text
    import io

    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")), want[0])

    # an exported ONNX file: the style image and the code are graph inputs, the number is fixed
    res = export_model(run, tmp_path / "toy.onnx", "onnx", gain=0.8)
    assert list(res.inputs) == ["image", "style", "z"]
    onnx_pipe = styleforge.load(res.path, runtime="onnx")
    got = np.asarray(onnx_pipe.run(content, style=style, seed=5)[0]["image"], dtype=int)
    assert np.abs(got - want[0]).max() <= 2


def test_it_is_evaluated_on_its_content_style_layout(trained, tmp_path, tiny_feature_net, capsys):
    from styleforge.cli import main

    run, _ = trained
    out = tmp_path / "res.json"
    assert main(["evaluate", str(run), "--data", str(DATA), "--metrics", "fid,diversity", "--out", str(out),
                 "--feature-net", str(tiny_feature_net), "--feature-size", "32", "--quiet", "--no-cache",
                 "--device", "cpu"]) == 0
    res = json.loads(out.read_text())
    n_content = len(list((DATA / "content").iterdir()))
    assert res["n_fake"] >= n_content and np.isfinite(res["metrics"]["fid"]["value"])


def test_nothing_of_the_package_names_the_toy_method():
    src = Path(styleforge.__file__).parent
    assert not [p for p in src.rglob("*.py") if "toy_test_method" in p.read_text()]
    assert METHODS["toy_test_method"] is ToyMethod
