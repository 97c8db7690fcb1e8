"""Colour control of Gatys et al. 2017 (section 5) on real images: histogram matching variants
and luminance-only transfer."""
import pytest
import torch

from styleforge.data.images import load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import ConfigError
from styleforge.nn.color import (HISTOGRAM_MODES, color_stats, join_luminance, luminance,
                                 match_color, match_luminance, rgb_to_yiq, yiq_to_rgb)


def _img(path, size=48):
    t = to_tensor(load_rgb(path).resize((size, size)))[None].double()
    return (t + 1) / 2  # [0, 1]


@pytest.fixture
def pair(h2z):
    return _img(sorted((h2z / "trainA").iterdir())[0]), _img(sorted((h2z / "trainB").iterdir())[0], 40)


@pytest.mark.parametrize("mode", HISTOGRAM_MODES)
def test_match_color_gives_target_mean_and_covariance(pair, mode):
    horse, zebra = pair
    out = match_color(zebra, horse, mode, eps=0.0)
    assert out.shape == zebra.shape
    mu_o, cov_o = color_stats(out)
    mu_t, cov_t = color_stats(horse)
    torch.testing.assert_close(mu_o, mu_t, rtol=0, atol=1e-10)
    torch.testing.assert_close(cov_o, cov_t, rtol=1e-8, atol=1e-10)


def _linear_map(src, out):
    """A with out - μ_out = A (src - μ_src), solved by least squares."""
    s = (src - src.mean(dim=(2, 3), keepdim=True)).flatten(2)[0]
    o = (out - out.mean(dim=(2, 3), keepdim=True)).flatten(2)[0]
    return torch.linalg.lstsq(s.t(), o.t()).solution.t()


def test_variants_are_their_closed_forms(pair):
    horse, zebra = pair
    _, cs = color_stats(zebra)
    _, ct = color_stats(horse)
    cs, ct = cs[0], ct[0]

    def sqrtm(m, p=0.5):
        vals, vecs = torch.linalg.eigh(m)
        return vecs @ torch.diag(vals ** p) @ vecs.t()

    expected = {
        "cholesky": torch.linalg.cholesky(ct) @ torch.linalg.inv(torch.linalg.cholesky(cs)),
        "pca": sqrtm(ct) @ sqrtm(cs, -0.5),
        "symmetric": sqrtm(cs, -0.5) @ sqrtm(sqrtm(cs) @ ct @ sqrtm(cs)) @ sqrtm(cs, -0.5),
    }
    maps = {m: _linear_map(zebra, match_color(zebra, horse, m, eps=0.0)) for m in HISTOGRAM_MODES}
    for m in HISTOGRAM_MODES:
        torch.testing.assert_close(maps[m], expected[m], rtol=1e-6, atol=1e-8)
    # the symmetric map is symmetric; the Cholesky one lower-triangular; the three differ
    torch.testing.assert_close(maps["symmetric"], maps["symmetric"].t(), rtol=1e-6, atol=1e-8)
    assert torch.triu(maps["cholesky"], 1).abs().max() < 1e-8
    assert (maps["pca"] - maps["symmetric"]).abs().max() > 1e-3
    assert (maps["pca"] - maps["cholesky"]).abs().max() > 1e-3


def test_regularised_match_is_close_and_keeps_dtype(pair):
    horse, zebra = pair
    out = match_color(zebra.float(), horse.float(), "pca")  # eps 1e-5 as the authors
    assert out.dtype == torch.float32
    torch.testing.assert_close(color_stats(out.double())[1], color_stats(horse)[1], rtol=0, atol=1e-3)
    with pytest.raises(ConfigError, match="choose one of pca, cholesky, symmetric"):
        match_color(zebra, horse, "chol")


def test_yiq_round_trip_and_luminance_transfer(pair):
    horse, zebra = pair
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(horse)), horse, rtol=0, atol=1e-12)
    y = luminance(horse)
    torch.testing.assert_close(y, 0.299 * horse[:, :1] + 0.587 * horse[:, 1:2] + 0.114 * horse[:, 2:])
    ys = match_luminance(luminance(zebra), y)
    torch.testing.assert_close(ys.mean(), y.mean())
    torch.testing.assert_close(ys.std(unbiased=False), y.std(unbiased=False))
    # a stylised luminance joined with the content's colours: its Y is the stylised one, its
    # chrominance the content's
    stylised_y = torch.rand_like(y)
    out = join_luminance(stylised_y.expand(-1, 3, -1, -1), horse)
    torch.testing.assert_close(luminance(out), stylised_y)
    torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(horse)[:, 1:])
