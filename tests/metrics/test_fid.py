"""FID: the reference sqrtm computation and the exact low-rank one against the closed form."""
import numpy as np
import pytest
import scipy.linalg

from styleforge.errors import EvaluationError
from styleforge.metrics.fid import fid, fid_warnings, frechet_distance, gaussian_stats


def exact_samples(mu, sigma, n, seed=0):
    """n samples whose sample mean is exactly ``mu`` and sample covariance (n - 1) exactly ``sigma``."""
    rng = np.random.default_rng(seed)
    d = len(mu)
    z = rng.standard_normal((n, d))
    z -= z.mean(0)
    # whiten: sample covariance of z becomes the identity
    w = np.linalg.cholesky(np.cov(z, rowvar=False))
    z = np.linalg.solve(w, z.T).T
    return z @ np.linalg.cholesky(sigma).T + mu


def random_spd(d, seed):
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def closed_form(mu1, s1, mu2, s2):
    # Tr (Σ1 Σ2)^½ = Tr (Σ1^½ Σ2 Σ1^½)^½ (same eigenvalues), computed with symmetric square roots
    r1 = scipy.linalg.sqrtm(s1).real
    ev = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev).sum())


def test_one_dimensional_gaussians_give_the_squared_differences():
    # FID(N(m1, a²), N(m2, b²)) = (m1 - m2)² + (a - b)²
    assert frechet_distance([1.0], [[4.0]], [3.5], [[0.25]]) == pytest.approx(2.5 ** 2 + 1.5 ** 2, rel=1e-12)


def test_diagonal_gaussians_match_the_closed_form():
    a, b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 0.5, 0.5, 1.0])
    mu1, mu2 = np.zeros(4), np.array([1.0, -1.0, 0.0, 2.0])
    want = 6.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("method", ["sqrtm", "lowrank"])
def test_features_of_two_known_gaussians_match_the_closed_form(method):
    d = 12
    mu1, mu2 = np.zeros(d), np.linspace(-1, 1, d)
    s1, s2 = random_spd(d, 1), random_spd(d, 2)  # not commuting: a real matrix square root is needed
    f1, f2 = exact_samples(mu1, s1, 500, 3), exact_samples(mu2, s2, 300, 4)
    assert np.allclose(gaussian_stats(f1)[1], s1) and np.allclose(gaussian_stats(f2)[0], mu2)
    assert fid(f1, f2, method) == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=1e-8)


@pytest.mark.parametrize("n", [40, 300])  # fewer and more images than dimensions
def test_a_set_against_itself_is_zero(n):
    f = np.random.default_rng(n).standard_normal((n, 64)) * 3 + 1
    scale = np.trace(np.cov(f, rowvar=False))
    assert abs(fid(f, f, "sqrtm")) < 1e-6 * scale
    assert abs(fid(f, f, "lowrank")) < 1e-9 * scale


@pytest.mark.parametrize("n1,n2", [(30, 45), (200, 150)])
def test_lowrank_equals_the_reference_sqrtm(n1, n2):
    rng = np.random.default_rng(n1)
    f1 = rng.standard_normal((n1, 64)) @ rng.standard_normal((64, 64)) * 0.2
    f2 = rng.standard_normal((n2, 64)) * 0.7 + 0.3
    assert fid(f1, f2, "lowrank") == pytest.approx(fid(f1, f2, "sqrtm"), rel=1e-6)


def test_a_shifted_copy_scores_the_squared_shift():
    f = np.random.default_rng(0).standard_normal((100, 16))
    shift = np.arange(16) / 8.0
    assert fid(f, f + shift, "sqrtm") == pytest.approx(float(shift @ shift), rel=1e-6)


def test_mismatched_feature_sizes_and_too_few_images_are_errors():
    with pytest.raises(EvaluationError, match="different sizes"):
        fid(np.zeros((5, 8)), np.zeros((5, 4)))
    with pytest.raises(EvaluationError, match="at least 2 images"):
        fid(np.zeros((1, 8)), np.ones((5, 8)))
    with pytest.raises(EvaluationError, match="unknown FID method"):
        fid(np.zeros((5, 8)), np.ones((5, 8)), "exact")


def test_fewer_images_than_dimensions_warns_with_the_counts():
    (w,) = fid_warnings(120, 140, 2048)
    assert "120 and 140 images" in w and "2048" in w
    assert fid_warnings(3000, 2500, 2048) == []
