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
import math
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


def test_declared_data_options_reach_the_training_set_and_the_trainer_names_none():
    """A method's data needs are its declaration (``Method.data_options``: FUNIT's pairs), read by
    the trainer's dataset builder; the contract's hooks are class members, never probed."""
    from styleforge.training.trainer import build_datasets

    sections = C.SECTIONS["data"]
    for m in PACKAGE_METHODS:
        assert set(METHODS[m].data_options) <= set(sections), (m, METHODS[m].data_options)
    assert METHODS["funit"].data_options == ("pairs",)
    for pairs in (True, False):
        cfg = tiny_cfg("funit", DATA["class_folders"], **{"data.pairs": pairs})
        train, _ = build_datasets(cfg)
        assert train.pairs is pairs and ("class_image" in train[0]) is pairs
    src = Path(__file__).resolve().parents[1] / "src" / "styleforge"
    trainer = (src / "training" / "trainer.py").read_text()
    assert '"pairs"' not in trainer and "class_folders" not in trainer
    probed = [f"{f.relative_to(src)}: {name}" for f in src.rglob("*.py") for name in
              ("export_module", "model_follows_data", "data_options", "data_kind")
              if f"getattr(cls, \"{name}\"" in f.read_text() or f"getattr(method, \"{name}\"" in f.read_text()]
    assert not probed, probed


def test_every_trainable_method_declares_fit_terms_it_logs():
    """A method that trains names the terms the loss test reads (``Method.fit_terms``)."""
    missing = [m for m in PACKAGE_METHODS if METHODS[m].not_trainable is None and not METHODS[m].fit_terms]
    assert not missing, f"trainable methods that declare no fit_terms: {missing}"


FIT_STEPS = 20


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_a_few_steps_on_one_batch_lower_every_declared_fit_term(name, train_steps):
    """20 steps on one fixed real batch at the tiny preset's (the authors') learning rates, with
    the same random draws at every step (noise, prior codes, pools): each term the method
    declares in ``fit_terms`` (reconstruction, cycle, content: bounded below, not adversarial)
    falls by at least 1% between its first and last logged values, within the stage that logs it
    (MIXGAN's stage 1 and stage 2 terms are compared each with itself). A frozen network gives
    the same value at every step; a sign error or a detached term makes it rise or stay."""
    from styleforge.training.trainer import build_optimizers

    method = tiny_method(name)
    if not _has_groups(method):
        pytest.skip(f"{name} trains no network (it optimises the image)")
    cfg = tiny_cfg(name)
    method.train()
    opts = build_optimizers(method, cfg["train"])
    batch = _fixed_batch(cfg)

    def same_draws(step):  # called just before each step: a term changes only as the weights do
        torch.manual_seed(0)
        return batch

    logs, _ = train_steps(method, same_draws, FIT_STEPS, optimizers=opts)
    assert method.fit_terms
    for term in method.fit_terms:
        series = [r[term] for r in logs if term in r]
        assert len(series) >= 4, f"{term} logged at {len(series)} of {FIT_STEPS} steps (logged: {sorted(logs[0])})"
        k = min(3, len(series) // 2)
        first, last = np.mean(series[:k]), np.mean(series[-k:])
        assert last < 0.99 * first, f"{term}: {first:.4g} -> {last:.4g}: {np.round(series, 4).tolist()}"


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


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_each_image_of_a_batch_gets_the_output_it_gets_alone(name, tmp_path, monkeypatch):
    """``--runtime auto`` batches equal-size images only where every image of a batch of 2 and 4
    distinct images (the sample and its mirror images) gets its own output within fp32 tolerance:
    no batch statistics, no random code drawn per batch. Every larger batch counts as faster
    here, so only that check can keep a method at batch 1."""
    from styleforge import accel

    monkeypatch.setattr(accel, "BATCH_MIN_GAIN", -math.inf)
    pipe = Pipeline(tiny_method(name), "cpu")
    choice = pipe.choose_batch(content_image(pipe), size=48, images=accel.BATCH_MIN_IMAGES,
                               **sample_values(pipe, tmp_path))
    if not pipe.method.exportable:  # an optimisation per image: each image alone, nothing measured
        assert choice.size is None
        return
    assert choice.size == 4 and None not in choice.per_image.values(), choice.note


# ---- front ends: the CLI and the web API give the Python API's pixels ----------------------
# Every declared input gets a value (a non-default one for numbers, choices and flags), as the
# files or text its front end takes; the CLI's output files and the web API's PNGs must equal
# styleforge.load(...).run(...) on the same PNG inputs exactly: PNG is lossless and both front
# ends call the same pipeline, so there is nothing to round (the web API's max_side, 1024 by
# default, does not scale these 48 px images).
CONTENT_SIDE = 48


def _png(src, path: Path, side: int) -> Path:
    img = (src if isinstance(src, Image.Image) else Image.open(src)).convert("RGB")
    s = side / max(img.size)
    img.resize((max(8, round(img.size[0] * s)), max(8, round(img.size[1] * s))), Image.BICUBIC).save(path)
    return path


@pytest.fixture(scope="module")
def input_files(tmp_path_factory):
    """Small PNGs of the bundled sample: style paintings, class images (animals), and a content
    image per data kind with two complementary masks at its size."""
    d = tmp_path_factory.mktemp("inputs")
    styles = [_png(f, d / f"style{i}.png", 40) for i, f in enumerate(sorted((SAMPLE / "style_transfer" / "style").iterdir())[:2])]
    cls = sorted(c for c in (SAMPLE / "animals").iterdir() if c.is_dir())[0]
    classes = [_png(f, d / f"class{i}.png", 32) for i, f in enumerate(sorted(cls.iterdir())[:2])]
    return {"dir": d, "styles": styles, "classes": classes}


def _content_png(pipe, files) -> tuple[Path, list[Path]]:
    """(content PNG, [left-half mask, right-half mask]) for the method's data kind."""
    kind = getattr(pipe.method, "data_kind", "unpaired")
    d = files["dir"]
    path = d / f"content_{kind}.png"
    if not path.exists():
        _png(content_image(pipe), path, CONTENT_SIDE)
    w, h = Image.open(path).size
    masks = []
    for i, half in enumerate((slice(0, w // 2), slice(w // 2, w))):
        m = np.zeros((h, w), np.uint8)
        m[:, half] = 255
        masks.append(d / f"mask_{kind}_{i}.png")
        Image.fromarray(m).save(masks[-1])
    return path, masks


def _number_value(inp):
    """A value for a number input that differs from its default and stays in range."""
    lo, hi, d = inp.min, inp.max, inp.default
    if inp.kind == "int":
        v = 2 if d is None else (d // 2 if d > 8 else d + 1)
    elif d is None:
        v = (lo or 0) + 0.5
    elif hi is not None and d != hi:
        v = (d + hi) / 2
    else:
        v = d / 2 if d else (lo or 0) + 0.5
    v = max(lo, v) if lo is not None else v
    return min(hi, v) if hi is not None else v


def declared_calls(pipe, files) -> list[dict]:
    """The values of one or two calls that give every declared input a value: [every input
    given (codes as numbers)] + [drawn codes left to the seed, and a code that stands for
    another input (FUNIT's class_code) given instead of it], the second where it differs."""
    content, masks = _content_png(pipe, files)
    n_styles = 2
    values = {}
    for inp in pipe.inputs[1:]:
        if inp.kind == "reference":
            v = files["styles"][:n_styles] if inp.multiple else files["styles"][0]
        elif inp.kind == "images":
            v = files["classes"][:max(2, int(inp.min or 1))]
        elif inp.kind == "mask":
            v = masks[:n_styles] if inp.multiple else masks[0]
        elif inp.kind == "code":
            g = torch.Generator().manual_seed(7)
            v = [round(float(x), 3) for x in torch.randn(int(inp.size), generator=g)]
        elif inp.kind in ("float", "int"):
            v = _number_value(inp)
        elif inp.kind == "floats":
            k = int(inp.size) if isinstance(inp.size, int) else n_styles
            v = [round(0.2 + 0.6 * i / max(1, k - 1), 3) for i in range(k)]
        elif inp.kind == "choice":
            if len(inp.choices) < 2:
                continue
            v = inp.choices[-1] if inp.choices[-1] != inp.default else inp.choices[0]
        elif inp.kind == "flag":
            v = not inp.default
        elif inp.kind == "seed":
            v = 3
        else:
            raise AssertionError(f"{inp.name}: the shared tests give no value to kind {inp.kind!r}")
        values[inp.name] = v
    first = {k: v for k, v in values.items() if not pipe.input(k).replaces}
    second = {k: v for k, v in values.items() if not pipe.input(k).drawn}
    for inp in pipe.inputs:
        if inp.replaces:
            second.pop(inp.replaces, None)
    return [first] + ([second] if second != first else [])


def _num_outputs(pipe, values) -> int:
    # two outputs where the call draws something (a code or dropout noise), else one
    return 2 if pipe.random_inputs(pipe.check_call(values)) else 1


@pytest.fixture(scope="module")
def api_outputs(saved, input_files):
    """{name: [(values, content PNG, [output arrays of the Python API])] per declared call}."""
    cache = {}

    def get(name):
        if name not in cache:
            pipe = styleforge.load(saved(name), device="cpu")
            content, _ = _content_png(pipe, input_files)
            runs = []
            for values in declared_calls(pipe, input_files):
                n = _num_outputs(pipe, values)
                out = pipe.run(content, num_outputs=n, **values)
                runs.append((values, content, [np.asarray(o["image"]) for o in out]))
            cache[name] = runs
        return cache[name]

    return get


def _flags(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
            continue
        out.append(flag)
        out += [str(x) for x in v] if isinstance(v, list) else [str(v)]
    return out


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_translate_command_output_equals_the_python_api_pixel_for_pixel(name, saved, api_outputs, tmp_path):
    """``styleforge translate MODEL content.png --<every declared input>``: a flag that is not
    passed on (or converted otherwise than the Python API converts it) changes a pixel."""
    from styleforge.cli import main

    d = saved(name)
    for i, (values, content, want) in enumerate(api_outputs(name)):
        out = tmp_path / f"out{i}"
        extra = ["--num-outputs", str(len(want))] if len(want) > 1 else []
        assert main(["translate", str(d), str(content), "-o", str(out), "--quiet", "--workers", "0",
                     *_flags(values), *extra]) == 0
        names = [f"{content.stem}.png"] if len(want) == 1 else [f"{content.stem}_{k}.png" for k in range(len(want))]
        assert sorted(p.name for p in out.iterdir()) == names
        for fname, ref in zip(names, want):
            got = np.asarray(Image.open(out / fname))
            assert got.shape == ref.shape and np.array_equal(got, ref), \
                (values, fname, int(np.abs(got.astype(int) - ref).max()))
        assert np.ptp(want[0]) > 2  # not a constant image: the comparison means something
        if len(want) > 1:
            assert not np.array_equal(want[0], want[1])  # the seeds of the two outputs differ


@pytest.mark.parametrize("name", PACKAGE_METHODS)
def test_web_api_output_equals_the_python_api_pixel_for_pixel(name, saved, api_outputs):
    """POST /api/translate with every declared input as an upload or a form field: a field the
    form does not pass on (or converts otherwise) changes a pixel."""
    import base64

    from styleforge.webapp import create_app, load_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    models = load_models([saved(name)], device="cpu")
    model = next(iter(models.values()))
    with TestClient(create_app(models)) as c:
        listed = c.get("/api/models").json()["models"][0]
        assert [i["name"] for i in listed["inputs"]] == [i.name for i in model.pipe.inputs[1:]]
        for values, content, want in api_outputs(name):
            files = [("image", (content.name, content.read_bytes()))]
            data = {"num_outputs": str(len(want))}
            for k, v in values.items():
                items = v if isinstance(v, list) else [v]
                if isinstance(items[0], Path):
                    files += [(k, (f.name, f.read_bytes())) for f in items]
                else:
                    data[k] = " ".join(str(x).lower() if isinstance(x, bool) else str(x) for x in items)
            r = c.post("/api/translate", files=files, data=data)
            assert r.status_code == 200, r.text
            if len(want) == 1:
                pngs = [r.content]
            else:
                pngs = [base64.b64decode(s["image"].split(",", 1)[1]) for s in r.json()["samples"]]
            assert len(pngs) == len(want)
            for k, (png, ref) in enumerate(zip(pngs, want)):
                got = np.asarray(Image.open(io.BytesIO(png)))
                assert got.shape == ref.shape and np.array_equal(got, ref), \
                    (values, k, int(np.abs(got.astype(int) - ref).max()))


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
