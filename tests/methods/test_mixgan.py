"""MIXGAN: parameter counts of the authors' TF networks, TF 'SAME' geometry, the two training
stages and which networks each trains, inference modes."""
import numpy as np
import pytest
import torch

from styleforge.data.datasets import UnpairedDataset
from styleforge.data.transforms import Transform
from styleforge.errors import ConfigError
from styleforge.methods.mixgan import MIXGAN, SameConv, SameUpConv

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(image_size=32, z_dim=8, ngf=4, ndf=4, n_res=2)


def tiny(**kw) -> MIXGAN:
    torch.manual_seed(0)
    return MIXGAN(**{**TINY, **kw})


def tf_variable_counts(S=64, z=2048, g=32, d=64, c=1, o=3, n_res=6):
    """Trainable variables of their module.py at main.py's defaults, layer by layer: convs
    without bias, instance norm scale+offset, batch norm gamma+beta, linear Matrix+bias."""
    hw = (S // 16) ** 2
    conv = lambda k, i, j: k * k * i * j  # noqa: E731
    lin = lambda i, j: i * j + j  # noqa: E731
    enc = (conv(7, c, g) + conv(3, g, 2 * g) + conv(3, 2 * g, 4 * g) + conv(3, 4 * g, 4 * g) + conv(3, 4 * g, 8 * g)
           + 2 * (2 * g + 4 * g + 4 * g + 8 * g)
           + lin(8 * g * hw, 4 * g * hw) + lin(4 * g * hw, 4 * g * hw) + lin(4 * g * hw, 2 * g * hw) + lin(2 * g * hw, z)
           + 2 * (4 * g * hw + 4 * g * hw + 2 * g * hw))
    dec = (lin(z, 2 * g * hw) + lin(2 * g * hw, 4 * g * hw) + lin(4 * g * hw, 4 * g * hw) + lin(4 * g * hw, 8 * g * hw)
           + 2 * (2 * g * hw + 4 * g * hw + 4 * g * hw)
           + 2 * 8 * g + conv(3, 8 * g, 8 * g) + 2 * 8 * g + conv(3, 8 * g, 4 * g) + 2 * 4 * g
           + n_res * 2 * (conv(3, 4 * g, 4 * g) + 2 * 4 * g)
           + conv(3, 4 * g, 2 * g) + 2 * 2 * g + conv(3, 2 * g, g) + 2 * g + conv(7, g, c))
    gen = conv(3, g + c, 2 * g) + 2 * 2 * g + conv(7, 3 * g + c, o)
    dis = conv(4, o, d) + conv(2, d, 2 * d) + 2 * 2 * d + conv(1, 2 * d, 4 * d) + 2 * 4 * d + conv(4, 4 * d, 1)
    dz = (lin(z, g * 32 * 32) + conv(4, g, d) + conv(4, d, 2 * d) + 2 * 2 * d + conv(4, 2 * d, 4 * d) + 2 * 4 * d
          + conv(4, 4 * d, 8 * d) + 2 * 8 * d + lin(8 * d * 4, 1))
    return {"E": enc, "Gc": dec, "Gm": gen, "Dz": dz, "Dp": dis}


def test_parameter_counts_equal_the_authors_tf_variables(monkeypatch):
    monkeypatch.setattr("styleforge.methods.mixgan.tf_init", lambda net: None)  # slow on meta tensors
    with torch.device("meta"):
        m = MIXGAN()
    assert m.parameter_counts() == tf_variable_counts()
    with torch.device("meta"):
        small = MIXGAN(**TINY, content_nc=3)
    assert small.parameter_counts() == tf_variable_counts(32, 8, 4, 4, 3, 3, 2)


def test_same_padding_geometry_of_tensorflow():
    x = torch.randn(2, 3, 16, 16)
    conv = SameConv(3, 5, 3, 2)
    assert conv(x).shape == (2, 5, 8, 8)
    # TF pads 'SAME' stride-2 3×3 convs only at the bottom/right: the first output sees x[0:3]
    want = (conv.conv.weight[:, :, :, :] * x[:, None, :, 0:3, 0:3]).sum((2, 3, 4))
    assert torch.allclose(conv(x)[:, :, 0, 0], want, atol=1e-5)
    # conv2d_transpose 'SAME' is the adjoint of that conv (TF computes it as its gradient)
    up = SameUpConv(5, 3, 3, 2)
    up.conv.weight.data.copy_(conv.conv.weight.data)
    y = torch.randn(2, 5, 8, 8)
    assert up(y).shape == x.shape
    assert torch.allclose((conv(x) * y).sum(), (x * up(y)).sum(), atol=1e-4)
    assert SameConv(3, 4, 4)(x).shape == (2, 4, 16, 16) and SameConv(3, 4, 2)(x).shape == (2, 4, 16, 16)


def test_grey_content_and_network_shapes():
    m = tiny().eval()
    # their initialisers: truncated N(0, 0.02) convs, N(1, 0.02) instance-norm scales
    w = m.Gc.up[2].conv.weight
    assert w.abs().max() <= 0.04 and 0.015 < w.std() < 0.02
    assert abs(float(m.E.convs[3].weight.detach().mean()) - 1) < 0.02 and m.E.convs[3].bias.abs().max() == 0
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    grey = m.content(x)
    assert grey.shape == (3, 1, 32, 32)
    assert torch.allclose(grey[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-6)
    z = m.E(grey)
    rec, feat = m.Gc(z)
    assert z.shape == (3, 8) and rec.shape == (3, 1, 32, 32) and feat.shape == (3, 5, 32, 32)
    assert torch.equal(feat[:, 4:], rec)  # the features end with the content image itself
    assert m.Gm(feat).shape == (3, 3, 32, 32) and m.Dp(x).shape == (3, 1, 32, 32) and m.Dz(z).shape == (3, 1)


@pytest.fixture
def batch(h2z):
    ds = UnpairedDataset(h2z, transform=Transform(36, 32, "resize_and_crop"), seed=0)
    items = [ds[i] for i in range(4)]
    return {"A": torch.stack([i["A"] for i in items]), "B": torch.stack([i["B"] for i in items])}


LRS = {"Dz": 2e-5, "AE": 1e-3, "Dp": 1e-4, "G": 1e-3}  # the preset's ratios (lr/50, lr, lr/10, lr) at 5×


@pytest.fixture
def run_steps(train_steps):
    """``run_steps(m, batch, n)``: ``n`` trainer steps at the authors' learning rates per
    network; the logs list each step's terms in the order its phases ran."""
    def run(m, batch, n):
        opts = {k: torch.optim.Adam(v, lr=LRS[k], betas=(0.5, 0.999)) for k, v in m.optimizer_groups().items()}
        return train_steps(m, batch, n, optimizers=opts)[0]

    return run


def snapshot(m):
    return {name: [p.detach().clone() for p in getattr(m, name).parameters()] for name in ("E", "Gc", "Gm", "Dz", "Dp")}


def changed(before, m):
    return {name for name, ps in before.items()
            if any(not torch.equal(a, b) for a, b in zip(ps, getattr(m, name).parameters()))}


def test_stage_one_trains_the_adversarial_autoencoder_and_lowers_its_reconstruction(batch, run_steps):
    m = tiny(stage1_steps=20)
    m.train()
    before = snapshot(m)
    logs = run_steps(m, batch, 20)
    assert all(list(r) == ["Dz", "E_adv", "AE_rec"] for r in logs)  # the Dz phase, then the AE phase
    assert changed(before, m) == {"E", "Gc", "Dz"}  # the content decoder trains (the paper)
    rec = [r["AE_rec"] for r in logs]
    assert np.mean(rec[-5:]) < 0.7 * np.mean(rec[:3])


def test_stage_two_trains_the_mixture_generator_against_the_patch_discriminator(batch, run_steps):
    m = tiny(stage1_steps=2)
    m.train()
    run_steps(m, batch, 2)
    before = snapshot(m)
    logs = run_steps(m, batch, 20)
    assert all(list(r) == ["Dp", "G_adv", "G_rec"] for r in logs)  # the Dp phase, then the G phase
    assert changed(before, m) == {"Gm", "Gc", "Dp"}
    dp = [r["Dp"] for r in logs]
    assert np.mean(dp[-5:]) < 0.9 * np.mean(dp[:3])
    # the released code's loop: Gm alone in stage 2, the content decoder untouched
    m = tiny(stage1_steps=0, joint_content_decoder=False)
    m.train()
    before = snapshot(m)
    logs = run_steps(m, batch, 2)
    assert list(logs[0]) == ["Dp", "G_adv"] and changed(before, m) == {"Gm", "Dp"}


def test_the_stage_counter_is_training_state_for_an_exact_resume(batch, run_steps):
    m = tiny(stage1_steps=3)
    run_steps(m, batch, 2)
    state = m.training_extra_state()
    other = tiny(stage1_steps=3)
    other.load_training_extra_state(state)
    assert other.stage == 1
    logs = run_steps(other, batch, 2)
    assert [list(r) for r in logs] == [["Dz", "E_adv", "AE_rec"], ["Dp", "G_adv", "G_rec"]]


def test_translate_encodes_the_content_image_and_sample_decodes_a_code():
    m = tiny().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = m.translate(x)
        assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
        assert torch.allclose(y, m.generate(m.encode("z", x)), atol=1e-6)
        z = torch.randn(2, 8)
        s = m.translate(x, mode="sample", z=z)
        assert torch.equal(s, m.translate(torch.zeros_like(x), mode="sample", z=z))  # x only sets N
        assert (s - m.translate(x, mode="sample", z=z + 1)).abs().max() > 1e-4
    names = [i.name for i in m.inference_inputs()]
    assert names == ["image", "direction", "mode", "z", "seed"]
    with pytest.raises(ConfigError, match="z is used only with mode=sample"):  # not silently ignored
        m.translate(x, z=z)
    with pytest.raises(ConfigError, match="mode"):
        m.translate(x, mode="mix")
    with pytest.raises(ConfigError, match="8 values"):
        m.translate(x, mode="sample", z=torch.randn(2, 5))
    with pytest.raises(ConfigError, match="multiple of 16"):
        MIXGAN(image_size=40)
    with pytest.raises(ConfigError, match="prior"):
        MIXGAN(prior="laplace")


def test_export_has_the_graph_inputs_it_says_and_named_output_axes(tmp_path):
    """Before: the default export (mode=translate) printed "inputs: image, z" but the file had only
    ``image`` (z is unused there), and the output's height axis was named "batch". A code unused in
    the exported mode is no graph input (asking for it is an error); mode=sample takes it."""
    import onnx

    from styleforge.export import export_model
    from styleforge.pipeline import load

    m = tiny().eval()

    def axes(values):
        return [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values]

    r = export_model(m, tmp_path / "t.onnx", "onnx")
    proto = onnx.load(str(r.path))
    assert r.inputs == ("image",) and [i.name for i in proto.graph.input] == ["image"]
    assert axes(proto.graph.output) == [["batch", 3, 32, 32]]
    pipe = load(r.path)
    assert not pipe.stochastic  # no seed or code to give it: one output per input
    r = export_model(m, tmp_path / "s.onnx", "onnx", mode="sample")
    proto = onnx.load(str(r.path))
    assert r.inputs == ("image", "z") and [i.name for i in proto.graph.input] == ["image", "z"]
    assert axes(proto.graph.input) == [["batch", 3, 32, 32], ["batch", 8]]
    assert axes(proto.graph.output) == [["batch", 3, 32, 32]]
    x = torch.rand(1, 3, 48, 40) * 2 - 1
    a = load(r.path).run_tensor(x, num_outputs=2, seed=3)
    b = load(tmp_path / "s.onnx").run_tensor(x, seed=4)[0]["image"]
    assert (a[0]["image"] - a[1]["image"]).abs().max() > 1e-3 and torch.allclose(a[1]["image"], b, atol=1e-5)
    with pytest.raises(ConfigError, match="--with z: mixgan uses it only with --mode sample"):
        export_model(m, tmp_path / "w.onnx", "onnx", include=("z",))
