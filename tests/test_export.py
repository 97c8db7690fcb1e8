"""Export: every registered method's generator to ONNX and TorchScript, run back on real images
(onnxruntime / torch.jit vs PyTorch within 1e-4), fixed-size networks, atomic writes, errors."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge.checkpoint import save_model
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.export import export_model, read_metadata
from styleforge.registry import build_method

TINY = [p for p in C.list_presets() if p.startswith("tiny/")]
# the image-only methods here, in both formats and both directions; every method (style images,
# codes, K images) is exported through its declared inputs by tests/test_method_contract.py
IMAGE_ONLY = ("cyclegan", "pix2pix", "ugatit", "photo2cartoon", "fewshot_groups", "unit")
# (preset, format) pairs: every tiny preset in both formats, except the Photo2Cartoon family
# (hourglass generators, slow to trace: 5 s quiet, up to 55 s on a busy 2-core box), which goes
# to ONNX only; the TorchScript path is the same code for every method
SLOW_TO_TRACE = ("photo2cartoon", "fewshot_groups")
CASES = [(p, f) for p in TINY for f in ("onnx", "torchscript") if C.resolve(p)["method"] in IMAGE_ONLY
         and not (f == "torchscript" and C.resolve(p)["method"] in SLOW_TO_TRACE)]
DETERMINISTIC = {"pix2pix": {"dropout": False}}


def tiny_method(preset):
    cfg = C.resolve(preset)
    torch.manual_seed(0)
    return build_method(cfg["method"], **cfg["model"]).eval()


def real_images(sample, n=2, size=(112, 80)):
    """Real photos (bundled horse2zebra, or facades label maps), W×H not square."""
    files = sorted((sample / "horse2zebra" / "testA").glob("*.jpg"))[:n]
    out = []
    for f in files:
        with Image.open(f) as im:
            out.append(to_tensor(im.convert("RGB").resize(size, Image.BICUBIC)))
    return torch.stack(out)


@pytest.fixture(scope="module")
def sample():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("preset,fmt", CASES)
def test_exported_file_equals_pytorch_on_real_images(tmp_path, sample, preset, fmt):
    method = tiny_method(preset)
    model_dir = save_model(tmp_path / "model", method)
    torch_pipe = styleforge.load(model_dir, device="cpu")
    x = real_images(sample)
    # required K-image inputs (FUNIT's class images): the real images themselves
    given = {i.name: x for i in method.inference_inputs()[1:] if i.required and i.kind == "images"}
    opts = {**DETERMINISTIC.get(method.method_name, {}), **given}
    for direction in method.directions[:1]:  # the other direction: the CLI test below
        r = export_model(model_dir, tmp_path / f"{direction}.{fmt}", fmt, direction)
        assert r.dynamic == (method.fixed_size is None)
        assert (r.note is not None) == (method.fixed_size is not None)
        pipe = styleforge.load(r.path, runtime=fmt)
        assert pipe.directions == (direction,)
        with torch.no_grad():
            ref = torch_pipe.translate_tensor(x, direction, **opts)
        y = pipe.translate_tensor(x, direction, **given)  # padded / resized by the same pipeline code
        assert y.shape == ref.shape == x.shape
        torch.testing.assert_close(y, ref, rtol=0, atol=1e-4)
        assert ref.std() > 1e-3  # not a constant image: the comparison means something


def test_onnx_axes_dynamic_or_fixed_as_the_network_allows(tmp_path):
    import onnx

    for preset, fixed in (("tiny/cyclegan", None), ("tiny/ugatit", 96)):
        r = export_model(tiny_method(preset), tmp_path / "g.onnx", "onnx")
        dims = onnx.load(str(r.path)).graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
        if fixed:
            assert [d.dim_value for d in dims[1:]] == [3, fixed, fixed]
            assert "fixed size 96×96" in r.note and "\n" not in r.note
        else:
            assert [d.dim_param for d in dims[2:]] == ["height", "width"]
        assert read_metadata(r.path)[1]["fixed_size"] == fixed


def test_a_file_holds_only_the_network_of_its_direction(tmp_path):
    m = tiny_method("tiny/cyclegan")
    n_g = sum(p.numel() for p in m.G_B.parameters())
    r = export_model(m, tmp_path / "g.pt", "torchscript", "BtoA")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's notice
        ts = torch.jit.load(str(r.path))
    assert sum(p.numel() for p in ts.parameters()) == n_g  # G_B only: no G_A, no discriminators
    with torch.no_grad():
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        torch.testing.assert_close(ts(x), m.G_B(x), rtol=0, atol=1e-5)


def test_pix2pix_export_is_the_generator_without_dropout_noise(tmp_path, sample):
    m = tiny_method("tiny/pix2pix")
    r = export_model(m, tmp_path / "p.onnx", "onnx", "BtoA")
    pipe = styleforge.load(r.path)
    x = real_images(sample, size=(128, 64))
    y1, y2 = pipe.translate_tensor(x), pipe.translate_tensor(x)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(y1, m.translate(x, dropout=False), rtol=0, atol=1e-4)
        assert (m.translate(x) - y1).abs().max() > 1e-3  # the method's default keeps the noise
    from styleforge.nn.generators import TestTimeDropout

    drops = [d for d in m.G.modules() if isinstance(d, TestTimeDropout)]
    assert drops and all(d.active for d in drops)  # export left the test-time switch as it was


def test_export_writes_atomically_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import styleforge.export as E

    out = tmp_path / "g.onnx"
    out.write_bytes(b"previous export")
    bad = lambda data: (lambda x: x + 1)  # a runtime that departs from PyTorch
    monkeypatch.setattr(E, "onnx_runner", bad)
    with pytest.raises(CheckpointError, match="departs from PyTorch"):
        export_model(tiny_method("tiny/cyclegan"), out, "onnx")
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]  # no temporary left behind
    monkeypatch.undo()
    r = export_model(tiny_method("tiny/cyclegan"), out, "onnx")
    assert read_metadata(out)[1]["method"] == "cyclegan" and r.path == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_bad_exported_files_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(os.urandom(64))
    for path in (junk, tmp_path / "missing.onnx"):
        with pytest.raises(CheckpointError) as e:
            styleforge.load(path, runtime="onnx")
        assert "\n" not in str(e.value) and str(path) in str(e.value)
    with pytest.raises(ConfigError, match="runtime"):
        styleforge.load(tmp_path, runtime="tflite")


@pytest.fixture(scope="module")
def cyclegan_dir(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("m") / "model", tiny_method("tiny/cyclegan"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "styleforge", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_export_bad_format_is_one_line_and_writes_nothing(cyclegan_dir, tmp_path):
    r = _cli("export", cyclegan_dir, "-o", tmp_path / "x.onnx", "--format", "tflite")
    assert r.returncode == 2 and "unknown export format 'tflite'" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and not (tmp_path / "x.onnx").exists()
    with pytest.raises(ConfigError, match="direction 'sideways'"):
        export_model(cyclegan_dir, tmp_path / "x.onnx", "onnx", "sideways")
    with pytest.raises(ConfigError, match="styleforge export"):  # a directory is not a file to run
        styleforge.load(cyclegan_dir, runtime="onnx")


def test_cli_translate_runtime_onnx_matches_the_pytorch_api(cyclegan_dir, sample, tmp_path):
    import numpy as np

    r = _cli("export", cyclegan_dir, "--format", "onnx", "-o", tmp_path / "g.onnx", "--direction", "BtoA")
    assert r.returncode == 0, r.stderr
    assert "exported BtoA as onnx" in r.stdout and "H and W free" in r.stdout
    src = tmp_path / "in"  # PNG in, PNG out: JPEG re-encoding would magnify 1e-4 differences
    src.mkdir()
    for f in sorted((sample / "horse2zebra" / "testB").glob("*.jpg"))[:3]:
        with Image.open(f) as im:
            im.convert("RGB").crop((0, 0, 128, 100)).save(src / (f.stem + ".png"))
    r = _cli("translate", tmp_path / "g.onnx", src, "-o", tmp_path / "o", "--runtime", "onnx",
             "--direction", "BtoA", "--quiet")
    assert r.returncode == 0, r.stderr
    pipe = styleforge.load(cyclegan_dir, device="cpu")
    names = sorted(p.name for p in src.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "o").iterdir())
    for n in names:
        with Image.open(src / n) as a, Image.open(tmp_path / "o" / n) as b:
            ref = np.asarray(pipe(a, "BtoA"), np.int16)
            diff = np.abs(np.asarray(b, np.int16) - ref)
        assert diff.max() <= 1  # 1e-4 in [-1, 1] can still cross a rounding step


def _edited_onnx(src, dst, meta=None, graph=None):
    """A copy of an exported ONNX file with its styleforge metadata replaced by ``meta`` (a
    string, written as is) or its graph edited by ``graph(proto.graph)``."""
    import onnx

    proto = onnx.load(str(src))
    if meta is not None:
        for p in proto.metadata_props:
            if p.key == "styleforge":
                p.value = meta
    if graph is not None:
        graph(proto.graph)
    onnx.save(proto, str(dst))
    return dst


def _fake_torchscript(dst, meta: str):
    import zipfile

    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("model/extra/styleforge.json", meta)
        z.writestr("model/data.pkl", b"not a pickle")
    return dst


def test_exported_files_with_bad_metadata_or_graphs_are_one_line_errors_naming_the_file(cyclegan_dir, tmp_path):
    """Edited, truncated or forged exported files: each a CheckpointError naming the file and
    what is wrong, never a KeyError/TypeError or onnxruntime's own exception, from the API and
    from `translate`."""
    import json

    good = tmp_path / "good.onnx"
    export_model(cyclegan_dir, good, "onnx", "AtoB", check=False)
    meta = json.loads(dict((p.key, p.value) for p in __import__("onnx").load(str(good)).metadata_props)["styleforge"])

    def with_(**changes):
        m = {k: v for k, v in meta.items() if k not in changes or changes[k] is not ...}
        m.update({k: v for k, v in changes.items() if v is not ...})
        return json.dumps(m)

    def drop_first_node(g):
        del g.node[0]

    cases = {
        "not_json": (dict(meta="{not json"), "not valid JSON"),
        "no_method": (dict(meta=with_(method=...)), "'method'"),
        "text_multiple": (dict(meta=with_(size_multiple="4")), "'size_multiple'"),
        "negative_side": (dict(meta=with_(fixed_size=-3)), "'fixed_size'"),
        "inputs_not_list": (dict(meta=with_(inputs="image")), "'inputs'"),
        "unknown_kind": (dict(meta=with_(inputs=[{"name": "image", "kind": "video"}])), "'inputs'"),
        "undeclared_graph_input": (dict(meta=with_(graph_inputs=["image", "style"])), "style"),
        "bad_input_field": (dict(meta=with_(inputs=[{"name": "image", "kind": "image", "choices": 5}])),
                            "inputs"),
        "broken_graph": (dict(graph=drop_first_node), "graph cannot be loaded"),
    }
    for name, (edit, expected) in cases.items():
        f = _edited_onnx(good, tmp_path / f"{name}.onnx", **edit)
        try:
            styleforge.load(f, runtime="onnx")(torch.zeros(1, 3, 32, 32))
        except CheckpointError as e:
            message = str(e)
        else:
            pytest.fail(f"{name}: no error")
        assert str(f) in message and expected in message and "\n" not in message, (name, message)
    fake = _fake_torchscript(tmp_path / "fake.pt", json.dumps(meta))
    bad_json = _fake_torchscript(tmp_path / "badjson.pt", "{")
    for f, expected in ((fake, "graph cannot be loaded"), (bad_json, "not valid JSON")):
        with pytest.raises(CheckpointError, match=expected):
            styleforge.load(f)
    photo = sorted((Path(__file__).resolve().parents[1] / "data" / "horse2zebra" / "testA").glob("*.jpg"))[0]
    for f in (tmp_path / "no_method.onnx", tmp_path / "broken_graph.onnx", fake):
        r = _cli("translate", f, photo, "-o", tmp_path / "out")
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and str(f) in r.stderr, r.stderr
        assert "internal error" not in r.stderr
