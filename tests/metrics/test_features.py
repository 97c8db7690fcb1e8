"""The shared feature pass: the FID Inception on real images (few of them: it is slow on a CPU),
the resize rule, output shapes a TorchScript extractor may return."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from styleforge.errors import EvaluationError
from styleforge.metrics.features import (DEFAULT_NET_SHA1, FeatureNet, extract_features, load_feature_net,
                                         parse_range)
from styleforge.metrics.fid import fid
from styleforge.metrics.inception_score import inception_score
from styleforge.metrics.kid import kid

H2Z = Path(__file__).resolve().parents[2] / "data" / "horse2zebra"


def degrade(img, seed):
    """A blurred, noised copy (what a bad generator's output looks like to Inception)."""
    rng = np.random.default_rng(seed)
    a = np.asarray(img.filter(ImageFilter.GaussianBlur(3)), np.float32)
    return Image.fromarray(np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def inception():
    """The FID Inception's features of 12 real horse photos (two halves) and of blurred, noised
    copies of the second half: 18 forward passes in batches of one size (TorchScript profiles
    the first calls of a shape), shared by this module's tests."""
    try:
        net = load_feature_net()
    except EvaluationError as e:
        pytest.skip(str(e))
    files = sorted((H2Z / "trainA").iterdir())[:12]
    real = extract_features(net, files, batch_size=6, progress=False)
    bad = extract_features(net, [degrade(Image.open(f).convert("RGB"), i) for i, f in enumerate(files[6:])],
                           batch_size=6, progress=False)
    return net, real, bad


def test_the_default_network_is_the_fid_inception_pool3(inception):
    net, real, _ = inception
    assert net.digest == DEFAULT_NET_SHA1 and net.size == 299
    assert real.pool.shape == (12, 2048) and real.logits is None
    assert (real.pool >= 0).all()  # pool3 follows a ReLU: non-negative averages
    assert real.net == net.identity and "pil-bicubic" in net.identity and DEFAULT_NET_SHA1 in net.identity


def test_two_halves_of_a_real_folder_score_closer_than_a_degraded_copy(inception):
    _, real, bad = inception
    a, b = real.pool[:6], real.pool[6:]
    fid_halves, fid_bad = fid(a, b, "lowrank"), fid(a, bad.pool, "lowrank")
    kid_halves, kid_bad = kid(a, b)[0], kid(a, bad.pool)[0]
    # measured: FID 261 vs 366, KID 0.0095 vs 0.173. With 6 images a set, FID is mostly the bias
    # of singular covariances (alike for both pairs); the unbiased KID separates them by far more
    assert fid_bad > 1.25 * fid_halves
    assert kid_bad > 0.1 and kid_bad > 5 * kid_halves


def test_a_real_set_against_itself_scores_zero(inception):
    _, real, _ = inception
    assert abs(fid(real.pool, real.pool, "lowrank")) < 1e-6 * np.trace(np.cov(real.pool, rowvar=False))


def test_is_with_the_default_network_says_why_it_is_unavailable(inception):
    with pytest.raises(EvaluationError, match="IS is unavailable.*pool3"):
        inception_score(inception[1].logits)


# ---- any TorchScript extractor (small ones: no Inception here) ---------------------------------
def test_images_are_resized_with_pillow_bicubic_and_tensors_scored_as_their_png(tiny_feature_net, h2z, tmp_path):
    net = load_feature_net(tiny_feature_net, 48)
    img = Image.open(sorted((h2z / "testA").iterdir())[0]).convert("RGB")  # 128 px
    assert np.array_equal(net.prepare(img), np.asarray(img.resize((48, 48), Image.Resampling.BICUBIC)))
    assert not np.array_equal(net.prepare(img), np.asarray(img.resize((48, 48), Image.Resampling.BILINEAR)))
    # a model output in memory scores exactly like the PNG file written from it
    from styleforge.data.transforms import to_pil

    t = torch.rand(2, 3, 40, 40) * 2 - 1
    for i in range(2):
        to_pil(t[i]).save(tmp_path / f"{i}.png")
    a = extract_features(net, t, progress=False).pool
    b = extract_features(net, sorted(tmp_path.glob("*.png")), progress=False).pool
    assert np.array_equal(a, b)


def test_input_range_is_applied_to_8_bit_values(to_torchscript, tmp_path):
    class MinMax(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.amin(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3))], dim=1)

    net = FeatureNet.from_file(to_torchscript(MinMax(), tmp_path / "mm.pt"), 8, (0.0, 1.0))
    img = Image.fromarray(np.array([[[0, 0, 0]] * 8] * 7 + [[[255, 255, 255]] * 8], np.uint8))
    assert extract_features(net, [img], progress=False).pool.tolist() == [[0.0, 1.0]]


def test_the_fid_inception_reads_8_bit_values_as_its_authors_do(inception):
    net, _, _ = inception  # its own range: (x - 128) / 128, not (x / 127.5) - 1
    assert net.input_range == (-1.0, 0.9921875)


class Maps(torch.nn.Module):
    def forward(self, x):
        return x[:, :2]  # N×2×H×W: averaged over H, W


class Named(torch.nn.Module):
    def forward(self, x):
        f = x.mean(dim=(2, 3))
        return {"features": f, "logits": f[:, :2] * 10}


class Wrong(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))  # N values: not N×D


@pytest.mark.parametrize("module,dim,logits", [(Maps(), 2, False), (Named(), 3, True)])
def test_extractor_outputs_maps_or_named(module, dim, logits, to_torchscript, tmp_path):
    net = FeatureNet.from_file(to_torchscript(module, tmp_path / "n.pt"), 16)
    f = extract_features(net, [Image.new("RGB", (16, 16), (255, 0, 0))] * 2, progress=False)
    assert f.pool.shape == (2, dim) and (f.logits is not None) == logits
    assert f.pool[0, 0] == pytest.approx(1.0)  # red at 255 -> 1 in the default range [-1, 1]


def test_bad_extractors_and_options_are_errors(to_torchscript, tmp_path):
    net = FeatureNet.from_file(to_torchscript(Wrong(), tmp_path / "w.pt"), 16)
    with pytest.raises(EvaluationError, match=r"shape \(2,\) for 2 images"):
        extract_features(net, [Image.new("RGB", (16, 16))] * 2, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(EvaluationError, match="junk.pt is not a TorchScript module"):
        FeatureNet.from_file(tmp_path / "junk.pt")
    with pytest.raises(EvaluationError, match="feature network not found"):
        FeatureNet.from_file(tmp_path / "none.pt")
    with pytest.raises(EvaluationError, match="LOW,HIGH"):
        parse_range("0:1")
    with pytest.raises(EvaluationError, match="apply to a --feature-net file"):
        load_feature_net(None, 224)


def test_unreadable_files_are_skipped_and_counted(tiny_feature_net, h2z, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    good = sorted((h2z / "testA").iterdir())[:2]
    f = extract_features(load_feature_net(tiny_feature_net, 32), [good[0], bad, good[1]], progress=False)
    assert len(f) == 2 and f.names == [str(good[0]), str(good[1])]
    assert f.skipped and f.skipped[0][0] == str(bad)
    assert "skipped 1 unreadable file(s) of 3" in capsys.readouterr().err
    with pytest.raises(EvaluationError, match="no readable images to score"):
        extract_features(load_feature_net(tiny_feature_net, 32), [bad], progress=False)
