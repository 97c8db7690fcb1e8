"""Diversity: feature-space cosine diversity on constructed features; LPIPS's clear errors."""
import sys
import types

import numpy as np
import pytest
import torch

from styleforge.errors import EvaluationError
from styleforge.metrics import diversity as D


def test_identical_outputs_have_no_diversity_and_orthogonal_ones_one():
    v = np.array([[1.0, 2.0, 3.0]] * 5)
    assert D.feature_diversity(v) == pytest.approx(0.0, abs=1e-12)
    assert D.feature_diversity(np.eye(6) * 3.0) == pytest.approx(1.0)


def test_diversity_is_the_mean_over_pairs_and_ignores_scale():
    # pairs: (e0, 2e0) cos 1 -> 0; (e0, -e0) -> 2; (2e0, -e0) -> 2: mean 4/3
    f = np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
    assert D.feature_diversity(f) == pytest.approx(4 / 3)
    assert D.feature_diversity(f * 7.5) == pytest.approx(4 / 3)


def test_conditional_diversity_averages_per_input():
    same = np.ones((3, 4))  # one input whose outputs all look alike
    varied = np.eye(4)      # one whose outputs differ completely
    assert D.conditional_feature_diversity([same, varied]) == pytest.approx(0.5)
    with pytest.raises(EvaluationError, match="at least 2 outputs per input"):
        D.conditional_feature_diversity([np.ones((1, 4))])


def test_lpips_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # "import lpips" raises ImportError
    with pytest.raises(EvaluationError, match="lpips package.*feature diversity"):
        D.load_lpips("alex")


def test_lpips_without_backbone_weights_names_the_missing_file(monkeypatch, tmp_path):
    fake = types.ModuleType("lpips")
    fake.LPIPS = lambda **kw: pytest.fail("LPIPS must not be built (it would download weights)")
    monkeypatch.setitem(sys.modules, "lpips", fake)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(EvaluationError, match="alexnet-owt-7be5be79.pth.*never downloads") as e:
        D.load_lpips("alex")
    assert str(tmp_path) in str(e.value)
    with pytest.raises(EvaluationError, match="unknown LPIPS network 'resnet'"):
        D.load_lpips("resnet")


class _MeanAbs(torch.nn.Module):
    """A stand-in for an LPIPS model: mean absolute difference, N×1×1×1."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, a, b):
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True) * self.w


def test_lpips_diversity_averages_pairs_per_input_then_inputs():
    m = _MeanAbs()
    g1 = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4), -torch.ones(3, 4, 4)])  # pairs: 1, 1, 2
    g2 = torch.zeros(2, 3, 4, 4)                                                         # pair: 0
    assert D.lpips_diversity(m, [g1, g2]) == pytest.approx((4 / 3 + 0) / 2)
