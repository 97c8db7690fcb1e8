"""Perceptual losses against their definitions written out here."""
import pytest
import torch

from styleforge.errors import ConfigError
from styleforge.losses.perceptual import (content_loss, gram_loss, gram_matrix, mean_std_loss,
                                          total_variation)


def feats(seed, n=2, c=5, h=6, w=7):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g, dtype=torch.float64) * (seed + 1)


def test_gram_matrix_is_channel_inner_products_with_its_normalisation():
    f = feats(0)
    n, c, h, w = f.shape
    ref = torch.empty(n, c, c, dtype=f.dtype)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                ref[b, i, j] = (f[b, i] * f[b, j]).sum()
    torch.testing.assert_close(gram_matrix(f, "none"), ref)
    torch.testing.assert_close(gram_matrix(f, "hw"), ref / (h * w))
    torch.testing.assert_close(gram_matrix(f), ref / (c * h * w))
    assert gram_loss(f, gram_matrix(f)) == 0
    assert gram_loss(f, gram_matrix(feats(1))) > 0
    with pytest.raises(ConfigError, match="norm must be one of"):
        gram_matrix(f, "sum")


def test_mean_std_loss_port_and_lua_reductions():
    x, y = feats(0), feats(3)
    # pytorch-AdaIN: MSE of means plus MSE of stds (unbiased variance + 1e-5, root)
    mx, my = x.flatten(2).mean(2), y.flatten(2).mean(2)
    sx, sy = (x.flatten(2).var(2) + 1e-5).sqrt(), (y.flatten(2).var(2) + 1e-5).sqrt()
    port = ((mx - my) ** 2).mean() + ((sx - sy) ** 2).mean()
    torch.testing.assert_close(mean_std_loss(x, y), port)
    # Lua StyleINLossModule: summed over channels, averaged over the batch, biased stds
    sxl = (x.flatten(2).var(2, unbiased=False) + 1e-6).sqrt()
    syl = y.flatten(2).std(2, unbiased=False)
    lua = (((mx - my) ** 2).sum() + ((sxl - syl) ** 2).sum()) / x.shape[0]
    torch.testing.assert_close(mean_std_loss(x, y, "sum"), lua)
    # C channels: the Lua value is about C times the port's
    assert mean_std_loss(x, y, "sum") / mean_std_loss(x, y) == pytest.approx(x.shape[1], rel=0.05)
    assert mean_std_loss(x, x) < 1e-20


def test_content_loss_is_mse():
    x, y = feats(0), feats(1)
    torch.testing.assert_close(content_loss(x, y), ((x - y) ** 2).mean())


def test_total_variation_of_a_step_edge():
    x = torch.zeros(1, 3, 4, 6)
    x[..., 3:] = 2.0  # one vertical edge of height 2 in every row of 3 channels
    assert total_variation(x) == pytest.approx(3 * 4 * 2)
    assert total_variation(x, exponent=2) == pytest.approx(3 * 4 * 4)
    # mean: horizontal differences 3*4*5 of them, 12 nonzero; vertical all zero
    assert total_variation(x, reduction="mean") == pytest.approx(2 * 12 / 60)
    assert total_variation(torch.ones(1, 3, 5, 5)) == 0
