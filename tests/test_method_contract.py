"""The shared tests every registered method gets from its ``tiny/<name>`` preset, with no test
written for it: save/load round trip, a few steps on one batch lower the loss, exact resume,
ONNX export equal to PyTorch, ``styleforge translate`` through its declared inputs and a web API
call. The proof at the bottom registers a method inside this file (a style-image input, a
number input, N outputs) and checks every front end serves it with no line changed elsewhere.

Real images: the bundled sample of each data kind (data/horse2zebra, data/facades,
data/style_transfer, data/animals). Every input a method declares gets a real value: a style
painting for a reference image, class images for a K-image input, a half-image mask."""
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge.checkpoint import load_model, save_model
from styleforge.methods.base import Input, Method, Output, Phase
from styleforge.pipeline import Pipeline
from styleforge.registry import METHODS, available_methods, build_method, register_method

SAMPLE = Path(__file__).resolve().parents[1] / "data"
DATA = {"unpaired": SAMPLE / "horse2zebra", "paired_ab": SAMPLE / "facades",
        "content_style": SAMPLE / "style_transfer", "class_folders": SAMPLE / "animals"}
# methods the shared tests cannot build from a preset alone, and where their own tests cover the same
NOT_SHARED = {"fewshot_groups": "built from a trained Photo2Cartoon run (model.base_model); "
                                "tests/methods/test_fewshot_groups.py covers save/load, training, export, --group"}
PACKAGE_METHODS = [m for m in available_methods()
                   if METHODS[m].__module__.startswith("styleforge.") and m not in NOT_SHARED]


def tiny_cfg(name: str, root=None, **over) -> dict:
    cfg = C.resolve(f"tiny/{name}", overrides=[f"{k}={v}" for k, v in over.items()])
    if cfg["model"].get("faceid_weight") and not cfg["model"].get("facenet_weights"):
        cfg["model"]["faceid_weight"] = 0.0  # the face-ID term needs a weight file (its own tests give one)
    kind = cfg["data"]["dataset"] or METHODS[cfg["method"]].data_kind
    cfg["data"]["root"] = str(root or DATA[kind])
    return cfg


def tiny_method(name: str) -> Method:
    torch.manual_seed(0)
    cfg = tiny_cfg(name)
    return build_method(cfg["method"], **cfg["model"]).eval()


def _has_groups(method) -> bool:
    try:
        return bool(method.optimizer_groups())
    except NotImplementedError:
        return False


def _mask_file(tmp: Path) -> Path:
    m = np.zeros((64, 64), np.uint8)
    m[:, :32] = 255
    path = tmp / "mask.png"
    Image.fromarray(m).save(path)
    return path


def sample_values(pipe, tmp: Path) -> dict:
    """A real value for every declared input that has no default (and for image inputs)."""
    styles = sorted((SAMPLE / "style_transfer" / "style").iterdir())
    classes = sorted(d for d in (SAMPLE / "animals").iterdir() if d.is_dir())
    values = {}
    for inp in pipe.inputs[1:]:
        if inp.kind == "reference":
            values[inp.name] = styles[:2] if inp.multiple else styles[0]
        elif inp.kind == "images":
            k = max(1, int(inp.min or 1))
            values[inp.name] = sorted(classes[0].iterdir())[:max(k, 2)]
        elif inp.kind == "mask":
            values[inp.name] = [_mask_file(tmp)] * 2 if inp.multiple else _mask_file(tmp)
        elif inp.kind == "floats" and inp.default is None and inp.required:
            values[inp.name] = [0.5, 0.5]
    if any(i.kind == "reference" and i.multiple for i in pipe.inputs) and any(
            i.name == "weights" and i.kind == "floats" for i in pipe.inputs):
        values["weights"] = [0.5, 0.5]
    return values


def content_image(pipe) -> Path:
    kind = getattr(pipe.method, "data_kind", "unpaired")
    if kind == "content_style":
        return sorted((SAMPLE / "style_transfer" / "content").iterdir())[0]
    if kind == "class_folders":
        return sorted(sorted(d for d in (SAMPLE / "animals").iterdir() if d.is_dir())[-1].iterdir())[0]
    if kind in ("paired_ab", "paired_folders"):
        with Image.open(sorted((SAMPLE / "facades" / "test").iterdir())[0]) as im:
            w, h = im.size
            return im.convert("RGB").crop((w // 2, 0, w, h)).resize((64, 64))
    return sorted((SAMPLE / "horse2zebra" / "testA").iterdir())[0]


def as_file(img, tmp: Path) -> Path:
    if isinstance(img, Path):
        return img
    path = tmp / "content.png"
    img.save(path)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved tiny model per method (randomly initialised, seed 0)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = save_model(tmp_path_factory.mktemp(name.replace("/", "_")) / "model", tiny_method(name))
        return cache[name]

    return get


def test_every_registered_method_has_a_tiny_preset():
    assert set(NOT_SHARED) <= set(available_methods())
    missing = [m for m in PACKAGE_METHODS if f"tiny/{m}" not in C.list_presets()]
    assert not missing, f"methods without a tiny/<name> preset (the shared tests need one): {missing}"


# ---- save / load ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_save_load_round_trip_gives_the_same_translation(name, saved, tmp_path):
    method = tiny_method(name)
    d = saved(name)
    meta = json.loads((d / "config.json").read_text())
    assert meta["method"] == name and meta["config"] == json.loads(json.dumps(method.config))
    loaded = load_model(d)
    assert type(loaded)(**loaded.config).config == loaded.config  # constructor arguments = saved config
    a, b = Pipeline(method, "cpu"), Pipeline(loaded, "cpu")
    img = content_image(a)
    values = sample_values(a, tmp_path)
    if a.stochastic:
        values["seed"] = 3  # the same noise (Pix2Pix's test-time dropout, drawn codes) on both sides
    ya = np.asarray(a.run(img, size=48, **values)[0]["image"], dtype=np.int16)
    yb = np.asarray(b.run(img, size=48, **values)[0]["image"], dtype=np.int16)
    assert np.abs(ya - yb).max() <= 1
    assert ya.std() > 1  # not a constant image: the comparison means something


# ---- training -------------------------------------------------------------------------------
def _fixed_batch(cfg):
    from styleforge.training.trainer import build_datasets

    train, _ = build_datasets(cfg)
    items = [train[i] for i in range(cfg["data"]["batch_size"])]
    return torch.utils.data.default_collate(items)


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_a_few_steps_on_one_batch_lower_the_loss(name):
    """20 steps on one fixed real batch: the summed loss of the last 3 steps is below that of
    the first 3 (every method can fit one batch; a sign error or a frozen network cannot)."""
    from styleforge.training.trainer import build_optimizers, run_phases

    method = tiny_method(name)
    if not _has_groups(method):
        pytest.skip(f"{name} trains no network (it optimises the image)")
    cfg = tiny_cfg(name)
    method.train()
    opts = build_optimizers(method, cfg["train"])
    batch = _fixed_batch(cfg)
    totals = []
    torch.manual_seed(0)
    for step in range(20):
        logs = run_phases(method, opts, batch, step=step + 1)
        totals.append(sum(v for k, v in logs.items() if not k.startswith(("D", "dis", "acc"))))
    assert np.mean(totals[-3:]) < np.mean(totals[:3]), totals


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_resume_reproduces_an_uninterrupted_run(name, tmp_path):
    from styleforge.training.logging import read_log
    from styleforge.training.trainer import Trainer

    if not _has_groups(tiny_method(name)):
        pytest.skip(f"{name} trains no network")
    over = {"train.steps": 6, "train.steps_decay": 0, "train.checkpoint_every": 3, "train.sample_every": 0}
    Trainer(tiny_cfg(name, **over), tmp_path / "full").fit()
    Trainer(tiny_cfg(name, **over), tmp_path / "cut").fit(stop_at=3)
    Trainer(tiny_cfg(name, **over), tmp_path / "cut", resume=True).fit()
    full, cut = read_log(tmp_path / "full"), read_log(tmp_path / "cut")
    assert [r["step"] for r in cut] == [r["step"] for r in full] == list(range(1, 7))
    for a, b in zip(full, cut):  # every logged value of every step (a method's stages log different ones)
        keys = sorted(k for k in a if k not in ("step", "epoch", "time") and not k.startswith("lr_"))
        assert keys == sorted(k for k in b if k not in ("step", "epoch", "time") and not k.startswith("lr_"))
        assert [a[k] for k in keys] == [b[k] for k in keys], (a["step"], keys)


# ---- front ends -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_onnx_export_equals_pytorch_through_the_declared_inputs(name, saved, tmp_path):
    from styleforge.export import export_model

    d = saved(name)
    torch_pipe = styleforge.load(d, device="cpu")
    if not torch_pipe.method.exportable:
        with pytest.raises(Exception, match="cannot be exported"):
            export_model(d, tmp_path / "m.onnx", "onnx")
        return
    # the file's graph inputs: the image, the required image inputs (one style image for a
    # several-style input), the codes; optional ones (a mask) only when asked with include=
    values = {k: (v[:1] if isinstance(v, list) and torch_pipe.input(k).kind == "reference" else v)
              for k, v in sample_values(torch_pipe, tmp_path).items() if torch_pipe.input(k).required}
    fixed = {i.name: False for i in torch_pipe.inputs if i.name == "dropout"}  # Pix2Pix: no noise
    r = export_model(d, tmp_path / "m.onnx", "onnx", **fixed)
    onnx_pipe = styleforge.load(r.path, runtime="onnx")
    # (a code the exported mode does not use, MIXGAN's z in mode=translate, is none of them)
    assert [i for i in r.inputs] == [i.name for i in torch_pipe.inputs if i.is_tensor and torch_pipe.used(i, fixed)
                                     and (i.kind == "image" or i.drawn or i.required)]
    import onnx

    assert [i.name for i in onnx.load(str(r.path)).graph.input] == list(r.inputs)  # what it says is in the file
    img = content_image(torch_pipe)
    seed = {"seed": 3} if torch_pipe.stochastic else {}
    y_t = np.asarray(torch_pipe.run(img, size=48, **values, **fixed, **seed)[0]["image"], dtype=np.int16)
    seed_o = seed if onnx_pipe.stochastic else {}  # Pix2Pix's file has no noise, so no seed
    y_o = np.asarray(onnx_pipe.run(img, size=48, **values, **seed_o)[0]["image"], dtype=np.int16)
    assert np.abs(y_t - y_o).max() <= 2


def _flags(pipe, values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        out.append("--" + k.replace("_", "-"))
        out += [str(x) for x in v] if isinstance(v, list) else [str(v)]
    return out


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_translate_command_takes_the_declared_inputs_as_flags(name, saved, tmp_path):
    from styleforge.cli import main

    d = saved(name)
    pipe = styleforge.load(d, device="cpu")
    values = sample_values(pipe, tmp_path)
    src = as_file(content_image(pipe), tmp_path)
    # two outputs where the call draws something (MIXGAN's default mode draws nothing: one, as
    # --num-outputs 2 there is an error rather than two equal files)
    n = 2 if pipe.random_inputs(pipe.check_call(values)) else 1
    extra = ["--num-outputs", "2"] if n > 1 else []
    assert main(["translate", str(d), str(src), "-o", str(tmp_path / "out"), "--size", "48", "--quiet",
                 *_flags(pipe, values), *extra]) == 0
    got = sorted(p.name for p in (tmp_path / "out").iterdir())
    stem = src.stem
    want = [f"{stem}.png"] if n == 1 else [f"{stem}_0.png", f"{stem}_1.png"]
    assert got == sorted(w if src.suffix == ".png" else w.replace(".png", src.suffix) for w in want), got
    ref = pipe.run(Image.open(src).convert("RGB"), size=48, num_outputs=n, **values, **({"seed": 0} if n > 1 else {}))
    first = np.asarray(Image.open(tmp_path / "out" / got[0]), dtype=np.int16)
    if src.suffix == ".png":
        assert np.abs(first - np.asarray(ref[0]["image"], dtype=np.int16)).max() <= 1


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_web_api_serves_the_declared_inputs(name, saved, tmp_path):
    from styleforge.webapp import Limits, create_app, load_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    d = saved(name)
    models = load_models([d], device="cpu")
    model = next(iter(models.values()))
    values = sample_values(model.pipe, tmp_path)
    src = as_file(content_image(model.pipe), tmp_path)
    files = [("image", (src.name, src.read_bytes()))]
    data = {}
    for k, v in values.items():
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, Path):
                files.append((k, (item.name, item.read_bytes())))
            else:
                data.setdefault(k, []).append(str(item))
    with TestClient(create_app(models, Limits(max_side=48))) as c:
        listed = c.get("/api/models").json()["models"][0]
        assert [i["name"] for i in listed["inputs"]] == [i.name for i in model.pipe.inputs[1:]]
        r = c.post("/api/translate", files=files, data={k: v if len(v) > 1 else v[0] for k, v in data.items()})
        assert r.status_code == 200, r.text
        out = Image.open(io.BytesIO(r.content))
        assert max(out.size) == 48


# ---- the proof: a method registered here reaches every front end ----------------------------
@register_method("contract_demo")
class ContractDemo(Method):
    """A test-only style method: out = (1 - α)·x + α·(x - μ(x) + μ(style)) + noise·σ(seed), i.e.
    it moves the image's per-channel mean to the style's by a fraction α, plus seeded noise; one
    learnable per-channel gain so that it trains. Inputs: a style image, α in [0, 1], a seed."""

    data_kind = "content_style"
    inference_modules = ("net",)

    def __init__(self, noise=0.1):
        super().__init__()
        self.net = torch.nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.net.weight.copy_(torch.eye(3)[:, :, None, None])
            self.net.bias.zero_()
        self.noise = noise

    def optimizer_groups(self):
        return {"G": list(self.net.parameters())}

    def training_step(self, batch):
        c, s = batch["content"], batch["style"]
        y = self.net(c)
        yield Phase("G", {"mean": ((y.mean((2, 3)) - s.mean((2, 3))) ** 2).mean()})

    def inference_options(self):
        return [Input("style", "reference", required=True, size=32, help="the style image"),
                Input("alpha", "float", 1.0, 0.0, 1.0, help="style strength"),
                Input("code", "code", size=3, help="noise colour")]

    def inference_outputs(self):
        return [Output("image")]

    def translate(self, x, direction=None, style=None, alpha=1.0, code=None):
        y = self.net(x)
        shift = style.mean((2, 3), keepdim=True) - y.mean((2, 3), keepdim=True)
        noise = self.noise * code[:, :, None, None]
        return (y + alpha * shift + noise).clamp(-1, 1)

    @torch.no_grad()
    def visuals(self, batch):
        return {"content": batch["content"], "out": self.translate(batch["content"], style=batch["style"],
                                                                      code=torch.zeros(len(batch["content"]), 3))}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("demo") / "model", ContractDemo())


def test_proof_method_gets_flags_grid_outputs_and_resume(demo_dir, tmp_path, capsys):
    from styleforge.cli import main

    contents = SAMPLE / "style_transfer" / "content"
    styles = SAMPLE / "style_transfer" / "style"
    out = tmp_path / "out"
    args = ["translate", str(demo_dir), str(contents), "--style", str(styles), "--alpha", "0.5",
            "--num-outputs", "2", "-o", str(out), "--quiet", "--workers", "0"]
    assert main(args) == 0
    cs, ss = sorted(contents.iterdir()), sorted(styles.iterdir())
    want = sorted(f"{c.stem}__{s.stem}_{k}{c.suffix}" for c in cs for s in ss for k in (0, 1))
    assert sorted(p.name for p in out.iterdir()) == want
    # each file is the API's output for that content × style pair and seed
    pipe = styleforge.load(demo_dir)
    c, s = cs[1], ss[2]
    for k in (0, 1):
        ref = pipe.run(c, style=s, alpha=0.5, seed=k)[0]["image"]
        got = Image.open(out / f"{c.stem}__{s.stem}_{k}{c.suffix}")
        assert np.abs(np.asarray(got, dtype=np.int16) - np.asarray(ref, dtype=np.int16)).mean() < 3
    # different seeds give different outputs; alpha moves the colour towards the style's
    a0 = np.asarray(Image.open(out / f"{c.stem}__{s.stem}_0{c.suffix}"), dtype=float)
    a1 = np.asarray(Image.open(out / f"{c.stem}__{s.stem}_1{c.suffix}"), dtype=float)
    assert np.abs(a0 - a1).mean() > 1
    # resume: delete some outputs, the rerun writes exactly those
    gone = sorted(out.iterdir())[::3]
    for p in gone:
        p.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(args + ["--resume"]) == 0
    assert sorted(p.name for p in out.iterdir()) == want
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in kept.items())
    # a bad value names the flag, in one line
    capsys.readouterr()
    assert main(["translate", str(demo_dir), str(cs[0]), "--style", str(ss[0]), "--alpha", "2",
                 "-o", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --alpha must be in [0, 1], got 2"]
    # a missing required input too
    with pytest.raises(Exception, match="--style is required"):
        from styleforge.commands.translate import _full_parser, input_values, run_translate

        p, labels = _full_parser("t", pipe, True)
        run_translate(pipe, p.parse_args([str(cs[0]), "-o", str(tmp_path / "none")]), labels, "translated")


def test_proof_method_in_the_web_form_and_api(demo_dir):
    from styleforge.webapp import create_app, load_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    c_file = sorted((SAMPLE / "style_transfer" / "content").iterdir())[0]
    s_file = sorted((SAMPLE / "style_transfer" / "style").iterdir())[0]
    with TestClient(create_app(load_models([demo_dir]))) as c:
        m = c.get("/api/models").json()["models"][0]
        assert [(i["name"], i["kind"]) for i in m["inputs"]] == [
            ("direction", "choice"), ("style", "reference"), ("alpha", "float"), ("code", "code"), ("seed", "seed")]
        assert m["stochastic"] is True
        r = c.post("/api/translate", files=[("image", (c_file.name, c_file.read_bytes())),
                                            ("style", (s_file.name, s_file.read_bytes()))],
                   data={"alpha": "0.5", "num_outputs": "3", "seed": "4"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
        samples = r.json()["samples"]
        assert len(samples) == 3 and all(s["image"].startswith("data:image/png;base64,") for s in samples)
        assert len({s["image"] for s in samples}) == 3  # three seeds, three images
        r = c.post("/api/translate", files=[("image", (c_file.name, c_file.read_bytes()))], data={"alpha": "0.5"})
        assert r.status_code == 422 and "style is required" in r.json()["error"]
        r = c.post("/api/translate", files=[("image", (c_file.name, c_file.read_bytes())),
                                            ("style", (s_file.name, s_file.read_bytes()))], data={"alpha": "7"})
        assert r.status_code == 422 and "alpha must be in [0, 1]" in r.json()["error"]


def test_proof_method_exports_with_style_and_code_as_graph_inputs(demo_dir, tmp_path):
    import onnx

    from styleforge.export import export_model

    r = export_model(demo_dir, tmp_path / "demo.onnx", "onnx", alpha=0.5)
    proto = onnx.load(str(r.path))
    assert [i.name for i in proto.graph.input] == ["image", "style", "code"]
    onnx_pipe = styleforge.load(r.path)
    torch_pipe = styleforge.load(demo_dir)
    c_file = sorted((SAMPLE / "style_transfer" / "content").iterdir())[0]
    s_file = sorted((SAMPLE / "style_transfer" / "style").iterdir())[1]
    for seed in (0, 5):  # the code is drawn outside the graph, from the seed
        a = torch_pipe.run(c_file, style=s_file, alpha=0.5, seed=seed)[0]["image"]
        b = onnx_pipe.run(c_file, style=s_file, seed=seed)[0]["image"]
        assert np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max() <= 1
    with pytest.raises(Exception, match="exported with alpha=0.5"):
        onnx_pipe.run(c_file, style=s_file, alpha=0.9)


def test_proof_method_trains_resumes_and_evaluates(tmp_path, tiny_feature_net):
    from styleforge.metrics.evaluate import EvalOptions, evaluate_model
    from styleforge.metrics.features import load_feature_net
    from styleforge.training.logging import read_log
    from styleforge.training.trainer import Trainer

    cfg = {"method": "contract_demo", "model": {"noise": 0.1},
           "data": {"dataset": "content_style", "root": str(SAMPLE / "style_transfer"), "load_size": 40,
                    "crop_size": 32, "batch_size": 2, "num_workers": 0, "num_samples": 2},
           "train": {"steps": 6, "steps_decay": 0, "lr": 1e-2, "checkpoint_every": 3, "sample_every": 0,
                     "log_every": 1, "tensorboard": False, "progress": False}}
    full = C.resolve(overrides=cfg)
    Trainer(full, tmp_path / "full").fit()
    Trainer(C.resolve(overrides=cfg), tmp_path / "cut").fit(stop_at=3)
    model = Trainer(C.resolve(overrides=cfg), tmp_path / "cut", resume=True).fit()
    assert [r["mean"] for r in read_log(tmp_path / "full")] == [r["mean"] for r in read_log(tmp_path / "cut")]
    net = load_feature_net(tiny_feature_net, 299)
    res = evaluate_model(model, SAMPLE / "style_transfer", None, "fid,kid", net,
                         EvalOptions(progress=False, kid_subset_size=6, kid_subsets=5), styles=2)
    n_c = len(list((SAMPLE / "style_transfer" / "content").iterdir()))
    n_s = len(list((SAMPLE / "style_transfer" / "style").iterdir()))
    assert res["n_fake"] == n_c * n_s * 2 and res["n_real"] == n_s
    assert res["metrics"]["fid"]["value"] > 0
