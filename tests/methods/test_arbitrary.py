"""Ghiasi et al.'s arbitrary style transfer (Magenta's arbitrary_image_stylization) on a tiny
seeded model: α interpolates the style vector with the content's own, blend weights mix style
vectors, a mask splits two styles, fine-tuning starts from a base model; training and export are
the shared contract tests (tests/test_method_contract.py, ``-k arbitrary``); the import from the
wheel: test_arbitrary_import.py."""
from pathlib import Path

import pytest
import torch
from PIL import Image

from styleforge.checkpoint import save_model
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.arbitrary import ArbitraryStyleTransfer

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "style_transfer"


def image(kind, name, size):
    img = Image.open(DATA / kind / f"{name}.jpg").convert("RGB")
    return to_tensor(img.resize(size, Image.Resampling.BICUBIC))[None]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ArbitraryStyleTransfer(bottleneck=8, predictor_width=0.25, channels=[4, 8, 16, 8, 4], num_residual=2,
                               style_size=32)
    with torch.no_grad():  # as a trained model: style vectors that tell images apart, γ near 1
        for c in m.predictor.modules():
            if isinstance(c, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(c.weight, nonlinearity="relu")
                c.bias.normal_(0, 0.1)
        for norm in m.transformer.norms():
            norm.gamma.weight.mul_(2)
            norm.gamma.bias.fill_(1)
    return m.eval()


@pytest.fixture(scope="module")
def photos():
    return (image("content", "chicago", (64, 48)), image("style", "starry_night", (40, 40)),
            image("style", "wave", (48, 36)))


def run(m, x, cond):
    with torch.no_grad():
        return m.transformer((x + 1) / 2, cond) * 2 - 1


def tr(m, x, **kw):
    with torch.no_grad():
        return m.translate(x, **kw)


def test_alpha_zero_gives_the_content_images_own_style(model, photos):
    x, s, _ = photos
    own = tr(model, x, style=[x])  # the content image as its own style
    assert torch.equal(tr(model, x, style=[s], alpha=0.0), own)
    assert (tr(model, x, style=[s]) - own).abs().mean() > 0.02


def test_alpha_interpolates_the_style_vector_with_the_contents(model, photos):
    x, s, _ = photos
    with torch.no_grad():
        vs, vc = model.style_vector(s), model.style_vector(x)
    got = tr(model, x, style=[s], alpha=0.3)
    assert torch.allclose(got, run(model, x, 0.3 * vs + 0.7 * vc), atol=1e-6)
    # not a blend of the output images: the vector is interpolated, then T runs once
    ends = 0.3 * tr(model, x, style=[s]) + 0.7 * tr(model, x, style=[s], alpha=0.0)
    assert (got - ends).abs().max() > 1e-3


def test_blend_weights_mix_the_style_vectors(model, photos):
    x, s1, s2 = photos
    with torch.no_grad():
        v1, v2 = model.style_vector(s1), model.style_vector(s2)
    assert torch.allclose(tr(model, x, style=[s1, s2], weights=[3, 1]), run(model, x, (3 * v1 + v2) / 4), atol=1e-6)
    assert torch.allclose(tr(model, x, style=[s1, s2], weights=[1, 0]), tr(model, x, style=[s1]), atol=1e-6)
    assert torch.allclose(tr(model, x, style=[s1, s2]), run(model, x, (v1 + v2) / 2), atol=1e-6)


def test_a_mask_puts_the_first_style_inside_and_the_second_outside(model, photos):
    x, s1, s2 = photos
    ones, zeros = torch.ones(1, 1, *x.shape[-2:]), torch.zeros(1, 1, *x.shape[-2:])
    one, two = tr(model, x, style=[s1]), tr(model, x, style=[s2])
    # 1e-3: the per-pixel γ, β sum rounds differently from the plain one (~1e-6 a norm, grown
    # through the untrained network); the two styles differ by ~0.1
    assert torch.allclose(tr(model, x, style=[s1, s2], mask=ones), one, atol=1e-3)
    assert torch.allclose(tr(model, x, style=[s1, s2], mask=zeros), two, atol=1e-3)
    assert (one - two).abs().mean() > 0.02
    half = ones.clone()
    half[..., :, 32:] = 0
    with torch.no_grad():
        v1, v2 = model.style_vector(s1), model.style_vector(s2)
    # every conditional norm gets both vectors and the mask (per-pixel mixing: tests/nn/test_norms_predicted.py)
    assert torch.allclose(tr(model, x, style=[s1, s2], mask=half),
                          run(model, x, (torch.stack([v1, v2], 1), torch.cat([half, 1 - half], 1))), atol=1e-6)
    # one style and a mask: the style inside, the content's own vector outside
    assert torch.allclose(tr(model, x, style=[s1], mask=zeros), tr(model, x, style=[x]), atol=1e-3)


def test_bad_inputs_are_one_line_errors(model, photos):
    x, s, _ = photos
    for kw, words in (({"style": [s], "alpha": 1.5}, "alpha must be in [0, 1]"),
                      ({"style": [s, s], "weights": [1.0]}, "1 blend weight(s) for 2 style image(s)"),
                      ({"style": [s], "weights": [-1.0]}, "blend weights must be >= 0"),
                      ({"style": None}, "a style image is required")):
        with pytest.raises(ConfigError, match=None) as e:
            tr(model, x, **kw)
        assert words in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="style_size must be at least 32"):
        ArbitraryStyleTransfer(style_size=16)
    with pytest.raises(ConfigError, match="channels must be 5 positive integers"):
        ArbitraryStyleTransfer(channels=[4, 8, 16])


def test_fine_tuning_starts_from_the_base_models_networks(model, tmp_path, photos):
    x, s, _ = photos
    save_model(tmp_path / "base", model)
    tuned = ArbitraryStyleTransfer(base_model=str(tmp_path / "base"), style_size=32).eval()  # sizes from the base
    assert tuned.config["channels"] == [4, 8, 16, 8, 4] and tuned.config["base_model"] is None
    assert torch.equal(tr(tuned, x, style=[s]), tr(model, x, style=[s]))
    (tmp_path / "cin").mkdir()
    (tmp_path / "cin" / "config.json").write_text('{"method": "cin", "config": {}, "format": 1}')
    with pytest.raises(CheckpointError):
        ArbitraryStyleTransfer(base_model=str(tmp_path / "cin"))


def test_an_exported_file_crops_portrait_and_landscape_styles_as_pytorch(model, tmp_path, photos):
    """The style's centre square is cut in the graph from the style's own shape: the exporter
    traces a square/landscape example, and a portrait painting must not get that crop."""
    pytest.importorskip("onnxruntime")
    from styleforge.export import export_model
    from styleforge.runtime import onnx_runner

    x, _, _ = photos
    path = export_model(model, tmp_path / "arbitrary.onnx").path
    run_file = onnx_runner(path)
    painting = image("style", "starry_night", (64, 48))  # landscape, 64 wide, 48 high
    outs = []
    for s in (painting, painting.transpose(2, 3), painting[..., :40, :40]):  # landscape, portrait, square
        outs.append(tr(model, x, style=[s]))
        d = (run_file(x, s) - outs[-1]).abs().max()
        assert d < 1e-3, (tuple(s.shape), d)  # the exporter's own check's bound
    assert min((outs[0] - outs[1]).abs().mean(), (outs[0] - outs[2]).abs().mean()) > 0.01  # crops differ


# ---- activation_quant int8 (the int8 files' rounding; its import: test_arbitrary_import.py) ----
TINY = dict(bottleneck=8, predictor_width=0.25, channels=[4, 8, 16, 8, 4], num_residual=2, style_size=32)


def test_activation_quant_is_none_or_int8_and_int8_needs_the_files_scales(photos):
    x, s, _ = photos
    with pytest.raises(ConfigError, match="activation_quant must be one of"):
        ArbitraryStyleTransfer(**TINY, activation_quant="fp8")
    fresh = ArbitraryStyleTransfer(**TINY, activation_quant="int8")
    with pytest.raises(ConfigError, match="rounding points have no scale") as e:
        tr(fresh, x, style=[s])
    assert "\n" not in str(e.value)


def test_int8_rounds_onto_each_points_grid_and_trains_straight_through(model, photos):
    from styleforge.nn.quant import INT8, quant_points

    x, s, _ = photos
    m = ArbitraryStyleTransfer(**TINY, activation_quant="int8")
    m.load_state_dict(model.state_dict(), strict=False)  # the float model's weights
    points = quant_points(m)
    seen = {}
    hooks = [p.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, float(i[0].abs().max())))
             for n, p in points.items()]
    for p in points.values():  # calibration: a grid so fine and wide that nothing is rounded
        p.set(1e-9, 0, (-2 ** 60, 2 ** 60))
    with torch.no_grad():
        assert torch.allclose(tr(m, x, style=[s]), tr(model, x, style=[s]), atol=5e-3)
    for h in hooks:
        h.remove()
    for n, p in points.items():  # then 8 bits: about 100 steps over each point's range
        p.set(max(seen[n], 1e-3) / 100, 0, INT8)
    m.transformer.expand["conv3"].q_act.set(1 / 256, -128, INT8)  # the files' output rounding
    code = m.predictor((s + 1) / 2)
    step = m.predictor.q_out.scale
    assert torch.allclose(code / step, (code / step).round(), atol=1e-3)  # S on its point's grid
    y = m.transformer((x + 1) / 2, code)
    assert torch.equal(y * 256, (y * 256).round()) and 0 <= y.min() and y.max() <= 255 / 256
    with torch.no_grad():
        assert (y - (tr(model, x, style=[s]) + 1) / 2).abs().max() > 1 / 256  # rounded: not the float net
    y.sum().backward()  # rounding has no gradient: every conv still gets one, passed straight through
    for name, w in m.named_parameters():
        if name.endswith("conv.weight"):
            assert w.grad is not None and w.grad.abs().sum() > 0, name
