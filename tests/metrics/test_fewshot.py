"""FUNIT's protocol: nearest-centroid and user-classifier top-1/top-5, mFID, content preservation."""
import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.errors import EvaluationError
from styleforge.metrics import fewshot as FS
from styleforge.metrics.evaluate import EvalOptions, evaluate_folders
from styleforge.metrics.features import load_feature_net


def test_nearest_centroid_accuracy_on_constructed_features():
    rng = np.random.default_rng(0)
    k, d = 8, 16
    # class c's real images point along e_c (any length, a little noise)
    reals = [np.eye(d)[c] * rng.uniform(1, 5, (10, 1)) + 0.01 * rng.standard_normal((10, d)) for c in range(k)]
    cents = FS.class_centroids(reals)
    e = np.eye(d)
    fakes = np.stack([
        e[0] * 2,                              # label 0, nearest centroid 0: top-1 hit
        e[1] * 0.3,                            # label 1: top-1 hit
        e[5] + 0.9 * e[6] + 0.8 * e[2],        # label 2 ranked third: top-5 hit only
        e[3] + 0.9 * e[4] + 0.8 * e[5] + 0.7 * e[6] + 0.6 * e[7] + 0.5 * e[0] + 0.1 * e[1],  # label 1 seventh
    ])
    labels = [0, 1, 2, 1]
    acc = FS.topk_accuracy(FS.centroid_logits(cents, fakes), labels)
    assert acc == {1: pytest.approx(0.5), 5: pytest.approx(0.75)}


def test_topk_is_capped_at_the_number_of_classes_and_checks_lengths():
    assert FS.topk_accuracy(np.array([[0.1, 0.9, 0.0]]), [2], ks=(1, 5)) == {1: 0.0, 5: 1.0}
    with pytest.raises(EvaluationError, match="3 predictions against 2 labels"):
        FS.topk_accuracy(np.zeros((3, 4)), [0, 1])


def test_mfid_is_the_mean_of_per_class_fids():
    rng = np.random.default_rng(1)
    reals = [rng.standard_normal((60, 6)) for _ in range(3)]
    shifts = [0.0, 1.0, 2.0]  # a translated set = the real set shifted: FID = shift² · d
    fakes = [r + s for r, s in zip(reals, shifts)]
    mean, per = FS.mean_fid(reals, fakes)
    assert per == pytest.approx([0.0, 6.0, 24.0], abs=1e-6)
    assert mean == pytest.approx(10.0, abs=1e-6)


# ---- translation accuracy with a user TorchScript classifier, through the folder evaluation ----
class RedClassifier(torch.nn.Module):
    """Seven classes: class c is the colour with red = 40·c; logits = −(mean red − 40·c)²."""

    def __init__(self):
        super().__init__()
        self.register_buffer("reds", torch.arange(7, dtype=torch.float32) * 40)

    def forward(self, x):
        r = (x[:, 0].mean(dim=(1, 2)) + 1) * 127.5  # input in [-1, 1]
        return -(r[:, None] - self.reds[None]) ** 2


def solid(path, red):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (red, 60, 90)).save(path)


def test_user_classifier_top1_top5_on_class_folders(tmp_path, tiny_feature_net, to_torchscript):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for c in range(7):
        for i in range(2):
            solid(real / f"c{c}" / f"{i}.png", 40 * c + 3 * i)
    # red 90 is nearest to classes 2, 3, 1, 4, then 0 (rank 5); red 130 puts class 0 seventh
    for name, red in (("a", 0), ("b", 90), ("c", 130)):
        solid(fake / "c0" / f"{name}.png", red)
    solid(fake / "c1" / "a.png", 40)
    clf = to_torchscript(RedClassifier(), tmp_path / "clf.pt")
    net = load_feature_net(tiny_feature_net, 32)
    res = evaluate_folders(real, fake, "fewshot,mfid", net, EvalOptions(classifier=str(clf), use_cache=False,
                                                                          progress=False))
    fs = res["metrics"]["fewshot"]
    assert (fs["top1"], fs["top5"], fs["classes"], fs["n"]) == (0.5, 0.75, 7, 4)
    assert "clf.pt" in fs["classifier"]
    # c1 has one translated image: no covariance, so mFID leaves it out and says so
    assert set(res["metrics"]["mfid"]["per_class"]) == {"c0"}
    assert any("mFID leaves out 1 class(es)" in w and "c1" in w for w in res["warnings"])
    assert any("mFID: 1 of 1 classes have fewer images than the 22 feature dimensions" in w for w in res["warnings"])


def test_a_classifier_with_the_wrong_class_count_is_an_error(tmp_path, tiny_feature_net, to_torchscript):
    for c in range(3):
        solid(tmp_path / "real" / f"c{c}" / "0.png", 40 * c)
    solid(tmp_path / "fake" / "c0" / "0.png", 0)
    clf = to_torchscript(RedClassifier(), tmp_path / "clf.pt")
    with pytest.raises(EvaluationError, match="7 scores; the real folder has 3 classes"):
        evaluate_folders(tmp_path / "real", tmp_path / "fake", "fewshot", load_feature_net(tiny_feature_net, 32),
                         EvalOptions(classifier=str(clf), use_cache=False, progress=False))


# ---- content preservation ---------------------------------------------------------------------
class Identity(torch.nn.Module):
    def forward(self, x):
        return x  # the image itself as an N×3×H×W "feature map"


def test_instance_norm_distance_ignores_per_channel_gain_and_offset():
    fa = torch.randn(2, 5, 6, 6)
    fb = fa * torch.tensor([0.5, 2, 3, 1, 0.1]).view(1, 5, 1, 1) + torch.randn(1, 5, 1, 1)
    assert FS.instance_norm_distance(fa, fb).abs().max() < 1e-4
    assert (FS.instance_norm_distance(fa, torch.randn(2, 5, 6, 6)) > 0.5).all()


def test_content_distance_is_small_for_a_recoloured_copy_and_large_for_another_image(h2z, to_torchscript, tmp_path):
    files = sorted((h2z / "testA").iterdir())[:3]
    ims = [Image.open(f).convert("RGB").resize((32, 32)) for f in files]
    # a per-channel gain and offset (what a style change does to low-level statistics)
    recol = [Image.fromarray((np.asarray(im, np.float32) * [0.6, 0.8, 0.5] + [40, 20, 60]).round().astype(np.uint8))
             for im in ims]
    net = FS.load_torchscript(to_torchscript(Identity(), tmp_path / "ident.pt"), "content network")
    same = FS.content_distance(net, ims, recol, size=32)
    other = FS.content_distance(net, ims, ims[1:] + ims[:1], size=32)
    assert same < 0.01 and other > 0.5
    with pytest.raises(EvaluationError, match="matching inputs and outputs, got 3 and 2"):
        FS.content_distance(net, ims, recol[:2])


def test_content_metric_from_folders_pairs_files_by_name(tmp_path, h2z, tiny_feature_net, to_torchscript):
    inputs, fake = tmp_path / "in", tmp_path / "fake"
    inputs.mkdir(), fake.mkdir()
    for f in sorted((h2z / "testA").iterdir())[:3]:
        im = Image.open(f).convert("RGB").resize((32, 32))
        im.save(inputs / f"{f.stem}.png")
        im.save(fake / f"{f.stem}.png")  # output = input: no content lost
    Image.new("RGB", (32, 32)).save(fake / "no_input.png")
    ident = to_torchscript(Identity(), tmp_path / "ident.pt")
    res = evaluate_folders(None, fake, "content", load_feature_net(tiny_feature_net, 32),
                           EvalOptions(content_net=str(ident), content_size=32, progress=False), inputs=inputs)
    assert res["metrics"]["content"]["pairs"] == 3
    assert res["metrics"]["content"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert res["metrics"]["content"]["kind"].startswith("DIPD")
