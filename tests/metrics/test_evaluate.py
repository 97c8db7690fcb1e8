"""Scoring folders and models: metric parsing, warnings with counts, a model on a test split."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.errors import ConfigError, EvaluationError
from styleforge.metrics.evaluate import (EvalOptions, evaluate_folders, evaluate_model, format_table, parse_metrics,
                                         score_features)
from styleforge.metrics.features import Features, load_feature_net

OPTS = EvalOptions(progress=False, use_cache=False, kid_subset_size=100)


def test_parse_metrics():
    assert parse_metrics(None) == ["fid", "kid"]
    assert parse_metrics(" FID, kid,inception_score,kid ") == ["fid", "kid", "is"]
    with pytest.raises(ConfigError, match="unknown metric 'fdi'; choose from: fid, kid"):
        parse_metrics("kid,fdi")
    with pytest.raises(ConfigError, match="unknown metric"):
        parse_metrics(" , ")


def test_too_few_images_warn_with_the_counts_and_the_values_are_still_given():
    rng = np.random.default_rng(0)
    real, fake = Features(rng.standard_normal((30, 64))), Features(rng.standard_normal((20, 64)))
    res = score_features(real, fake, ["fid", "kid"], OPTS)
    assert res["metrics"]["fid"]["n_real"] == 30 and res["metrics"]["kid"]["subset_size"] == 20
    text = " | ".join(res["warnings"])
    assert "FID from 30 and 20 images: fewer than the 64 feature dimensions" in text
    assert "KID from 30 and 20 images: fewer than 50 per set" in text


def test_is_and_diversity_from_the_features_of_one_pass():
    logits = np.zeros((20, 4))
    logits[np.arange(20), np.arange(20) % 4] = 50
    fake = Features(np.eye(20), logits)
    res = score_features(None, fake, ["is", "diversity"], EvalOptions(is_splits=5), groups=[[0, 1], [2, 3]])
    assert res["metrics"]["is"]["mean"] == pytest.approx(4.0)
    assert res["metrics"]["diversity"]["unconditional"] == pytest.approx(1.0)
    assert res["metrics"]["diversity"]["conditional"] == pytest.approx(1.0)
    assert any("IS from 20 images" in w for w in res["warnings"])
    with pytest.raises(EvaluationError, match="fid needs a real image set"):
        score_features(None, fake, ["fid"])


def test_folders_identical_score_zero_and_differ_from_another_domain(h2z, tiny_feature_net):
    net = load_feature_net(tiny_feature_net, 32)
    same = evaluate_folders(h2z / "trainA", h2z / "trainA", "fid,kid", net, OPTS)
    other = evaluate_folders(h2z / "trainA", h2z / "trainB", "fid,kid", net, OPTS)
    assert abs(same["metrics"]["fid"]["value"]) < 1e-6
    assert other["metrics"]["fid"]["value"] > 0.01 and other["metrics"]["kid"]["mean"] > 0
    assert (same["n_real"], same["n_fake"]) == (60, 60)
    table = format_table(other)
    assert "FID" in table and "KID x100" in table and "60 generated vs 60 real" in table


def test_a_model_translates_the_unpaired_test_split_and_is_scored(tiny_cyclegan_dir, h2z, tiny_feature_net, tmp_path):
    net = load_feature_net(tiny_feature_net, 32)
    res = evaluate_model(tiny_cyclegan_dir, h2z, "AtoB", "fid,kid", net, OPTS, save_dir=tmp_path / "out")
    assert res["direction"] == "AtoB" and res["real"].endswith("testB")
    assert (res["n_fake"], res["n_real"]) == (8, 8)
    outs = sorted((tmp_path / "out").iterdir())
    assert [o.stem for o in outs] == sorted(f.stem for f in (h2z / "testA").iterdir())
    # the saved outputs score exactly as the in-memory ones (same 8-bit rounding)
    again = evaluate_folders(h2z / "testB", tmp_path / "out", "fid", net, OPTS)
    assert again["metrics"]["fid"]["value"] == pytest.approx(res["metrics"]["fid"]["value"], rel=1e-9)
    back = evaluate_model(tiny_cyclegan_dir, h2z, "BtoA", "kid", net, OPTS)
    assert back["real"].endswith("testA")


def test_a_model_on_a_paired_test_split(tiny_cyclegan_dir, facades, tiny_feature_net):
    res = evaluate_model(tiny_cyclegan_dir, facades, "AtoB", "kid", load_feature_net(tiny_feature_net, 32), OPTS)
    assert res["n_fake"] == res["n_real"] == 8 and "paired_ab" in res["real"]


def test_k_shot_evaluation_of_a_model_saves_one_folder_per_class_that_the_fewshot_metrics_read(
        tmp_path, tiny_feature_net):
    """FUNIT's test protocol: each class's first K images are its class images, the first image
    of every other class is translated to it; the saved folders feed fewshot and mFID."""
    from pathlib import Path

    import torch

    import styleforge
    from styleforge import config as C
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    animals = Path(__file__).resolve().parents[2] / "data" / "animals"
    torch.manual_seed(0)
    cfg = C.resolve("tiny/funit")
    model = save_model(tmp_path / "funit", build_method(cfg["method"], **cfg["model"]).eval())
    net = load_feature_net(tiny_feature_net, 32)
    res = evaluate_model(model, animals, None, "kid", net, OPTS, save_dir=tmp_path / "fake", shots=5)
    firsts = {d.name: sorted(d.glob("*.jpg"))[0] for d in sorted(animals.iterdir()) if d.is_dir()}
    # meerkat has only its 5 class images: no real one left, so it is no target (but an input)
    assert res["n_fake"] == 9 and "5-shot" in res["real"]
    for target in ("cat", "dog", "wild"):
        assert sorted(p.stem for p in (tmp_path / "fake" / target).iterdir()) == sorted(
            f.stem for name, f in firsts.items() if name != target)
    pipe = styleforge.load(model, device="cpu")
    want = np.asarray(pipe.run(firsts["dog"], class_images=sorted((animals / "cat").glob("*.jpg"))[:5])[0]["image"],
                      np.int16)
    got = np.asarray(Image.open(tmp_path / "fake" / "cat" / f"{firsts['dog'].stem}.png"), np.int16)
    assert np.abs(got - want).max() <= 1  # the same translation, rounded to 8 bits
    fs = evaluate_folders(animals, tmp_path / "fake", "fewshot,mfid", net=net, opts=OPTS)["metrics"]
    assert fs["fewshot"]["classes"] == 4 and fs["fewshot"]["n"] == 9
    assert 0 <= fs["fewshot"]["top1"] <= fs["fewshot"]["top5"] <= 1
    assert fs["mfid"]["classes"] == 3 and np.isfinite(fs["mfid"]["value"]) and fs["mfid"]["value"] > 0


def test_model_evaluation_errors(tiny_cyclegan_dir, h2z, tiny_feature_net, tmp_path):
    net = load_feature_net(tiny_feature_net, 32)
    with pytest.raises(EvaluationError, match="few-shot metrics score class folders"):
        evaluate_model(tiny_cyclegan_dir, h2z, None, "fewshot", net, OPTS)
    with pytest.raises(EvaluationError, match="gives one output per input"):
        evaluate_model(tiny_cyclegan_dir, h2z, None, "diversity", net, OPTS, styles=3)
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(EvaluationError, match="needs an unpaired .* class-folder test split"):
        evaluate_model(tiny_cyclegan_dir, tmp_path / "flat", None, "kid", net, OPTS)


# ---- the jobs of a test split, pinned on small layouts built here ------------------------------
SAMPLE = Path(__file__).resolve().parents[2] / "data"


def _copy(src, dst, size=(24, 16)):
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").resize(size).save(dst)
    return dst


def _pipe(name, **model):
    import torch

    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method

    torch.manual_seed(0)
    return Pipeline(build_method(name, **model), device="cpu")


def _listing(split):
    """A split's jobs and reals as comparable values: paths by name, PIL images by their pixels."""
    def key(x):
        if isinstance(x, (list, tuple)):
            return [key(v) for v in x]
        return str(x) if isinstance(x, (str, Path)) else (x.size, x.tobytes())

    jobs, reals, name = split
    return [(key(j.image), {k: key(v) for k, v in j.values.items()}, j.name) for j in jobs], key(reals), name


def test_the_jobs_of_each_layout_are_those_evaluate_has_always_built(tmp_path):
    """Every input, its declared inputs, its name and the reals, written out for an unpaired (test and
    val), paired-folder, content/style and class-folder layout: the builder may move, the jobs may not."""
    from styleforge import config as C
    from styleforge.metrics.evaluate import test_split

    h2z = sorted((SAMPLE / "horse2zebra" / "testA").iterdir())
    cyc = _pipe("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")
    un = tmp_path / "unpaired"
    a = [_copy(h2z[i], un / "testA" / f"a{i}.png") for i in range(3)]
    b = [_copy(h2z[i], un / "testB" / f"b{i}.png") for i in range(2)]
    want = ([(str(f), {}, f.stem) for f in a], [str(f) for f in b], str(un / "testB"))
    assert _listing(test_split(cyc, un, "AtoB")) == want
    assert _listing(test_split(cyc, un, "BtoA")) == ([(str(f), {}, f.stem) for f in b], [str(f) for f in a],
                                                      str(un / "testA"))
    val = tmp_path / "val"
    va = [_copy(h2z[0], val / "valA" / "x.png")]
    vb = [_copy(h2z[1], val / "valB" / "y.png")]
    _copy(h2z[2], val / "trainA" / "t.png"), _copy(h2z[2], val / "trainB" / "t.png")
    assert _listing(test_split(cyc, val, None)) == ([(str(va[0]), {}, "x")], [str(vb[0])], str(val / "valB"))

    pf = tmp_path / "paired"
    pa = [_copy(h2z[i], pf / "test" / "A" / f"{n}.png") for i, n in enumerate("pqr")]
    pb = [_copy(h2z[i], pf / "test" / "B" / f"{n}.png", (20, 12)) for i, n in ((1, "p"), (2, "q"))]
    def pix(f):
        im = Image.open(f).convert("RGB")
        return im.size, im.tobytes()

    assert _listing(test_split(cyc, pf, "AtoB")) == ([(pix(pa[0]), {}, "00000"), (pix(pa[1]), {}, "00001")],
                                                     [pix(pb[0]), pix(pb[1])], f"{pf}/test (paired_folders, side B)")
    assert _listing(test_split(cyc, pf, "BtoA"))[0] == [(pix(pb[0]), {}, "00000"), (pix(pb[1]), {}, "00001")]

    cs = tmp_path / "cs"
    content = [_copy(SAMPLE / "style_transfer" / "content" / f"{n}.jpg", cs / "content" / f"{n}.png")
               for n in ("chicago", "cornell")]
    styles = [_copy(SAMPLE / "style_transfer" / "style" / f"{n}.jpg", cs / "style" / f"{n}.png")
              for n in ("mondrian", "the_scream", "wave")]
    adain = _pipe("adain", vgg_weights="random", width=8)
    assert _listing(test_split(adain, cs, None)) == (
        [(str(c), {"style": [str(s)]}, f"{c.stem}__{s.stem}") for c in content for s in styles],
        [str(s) for s in styles], str(cs / "style"))

    cf = tmp_path / "classes"
    animals = {c: sorted((SAMPLE / "animals" / c).iterdir()) for c in ("cat", "dog", "wild")}
    files = {c: [_copy(f, cf / c / f.name) for f in animals[c][:n]] for c, n in (("cat", 3), ("dog", 2), ("wild", 4))}
    funit = _pipe("funit", **C.resolve("tiny/funit")["model"])
    cls = lambda c: {"class_images": [str(f) for f in files[c][:2]]}  # noqa: E731
    assert _listing(test_split(funit, cf, None, shots=2)) == (
        [(str(files["dog"][0]), cls("cat"), f"cat/{files['dog'][0].stem}"),
         (str(files["wild"][0]), cls("cat"), f"cat/{files['wild'][0].stem}"),
         (str(files["cat"][0]), cls("wild"), f"wild/{files['cat'][0].stem}"),
         (str(files["dog"][0]), cls("wild"), f"wild/{files['dog'][0].stem}")],
        [str(f) for f in files["cat"][2:] + files["wild"][2:]], f"{cf} (3 classes, 2-shot)")
