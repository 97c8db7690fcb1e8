"""KID: unbiasedness and the closed form for Gaussians under the cubic polynomial kernel."""
import numpy as np
import pytest

from styleforge.errors import EvaluationError
from styleforge.metrics.kid import kid, kid_warnings, mmd2_unbiased, polynomial_kernel


def expected_kernel(mu_a, s_a, mu_b, s_b):
    """E k(x, y) for independent x ~ N(mu_a, s_a), y ~ N(mu_b, s_b), k = (xᵀy/d + 1)³, from the
    first three moments of t = xᵀy (derived by conditioning on y)."""
    d = len(mu_a)
    m1 = mu_a @ mu_b
    m2 = np.trace((s_a + np.outer(mu_a, mu_a)) @ (s_b + np.outer(mu_b, mu_b)))
    # E t³ = E[(μaᵀy)³] + 3 E[(μaᵀy)(yᵀ Σa y)]
    u_var = mu_a @ s_b @ mu_a
    e_u3 = m1 ** 3 + 3 * m1 * u_var
    e_uq = m1 * (mu_b @ s_a @ mu_b + np.trace(s_a @ s_b)) + 2 * mu_a @ s_b @ s_a @ mu_b
    m3 = e_u3 + 3 * e_uq
    return 1 + 3 * m1 / d + 3 * m2 / d ** 2 + m3 / d ** 3


def test_kid_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    d = 4
    mu_a, mu_b = np.array([0.5, 0.0, -0.5, 1.0]), np.array([1.5, 0.5, 0.0, 1.0])
    a = rng.standard_normal((d, d)) * 0.5
    s_a, s_b = a @ a.T + 0.5 * np.eye(d), np.diag([2.0, 1.0, 0.5, 1.5])
    want = (expected_kernel(mu_a, s_a, mu_a, s_a) + expected_kernel(mu_b, s_b, mu_b, s_b)
            - 2 * expected_kernel(mu_a, s_a, mu_b, s_b))
    x = rng.multivariate_normal(mu_a, s_a, 3000)
    y = rng.multivariate_normal(mu_b, s_b, 3000)
    mean, std, size = kid(x, y, num_subsets=20, subset_size=500)
    assert size == 500 and std > 0
    assert mean == pytest.approx(want, rel=0.15), (mean, want)


def test_zero_mean_gaussians_give_the_frobenius_form():
    # with zero means odd moments vanish: MMD² = 3/d² ‖Σa − Σb‖²_F
    rng = np.random.default_rng(1)
    d = 3
    s_a, s_b = np.diag([3.0, 1.0, 1.0]), np.eye(d)
    want = 3 / d ** 2 * np.sum((s_a - s_b) ** 2)
    x = rng.multivariate_normal(np.zeros(d), s_a, 3000)
    y = rng.multivariate_normal(np.zeros(d), s_b, 3000)
    assert kid(x, y, num_subsets=20, subset_size=500)[0] == pytest.approx(want, rel=0.15)


def test_two_samples_of_one_distribution_average_to_zero():
    # the unbiased estimate scatters around 0 (negative values included); the biased V-statistic
    # (diagonal kept) is positive on average
    rng = np.random.default_rng(2)
    vals, biased = [], []
    for _ in range(300):
        x, y = rng.standard_normal((12, 8)), rng.standard_normal((12, 8))
        vals.append(mmd2_unbiased(x, y))
        biased.append(polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean()
                      - 2 * polynomial_kernel(x, y).mean())
    vals = np.array(vals)
    se = vals.std() / np.sqrt(len(vals))
    assert abs(vals.mean()) < 3 * se
    assert (vals < 0).mean() > 0.3
    assert np.mean(biased) > 10 * se


def test_subsets_give_a_spread_and_equal_sets_one_value():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 0.5
    mean, std, size = kid(x, y, num_subsets=20, subset_size=100)
    assert size == 100 and std > 0
    # both sets no larger than the subset: every subset is the whole set
    m2, s2, size2 = kid(x[:50], y[:50], num_subsets=20, subset_size=100)
    assert size2 == 50 and s2 == 0 and m2 == pytest.approx(mmd2_unbiased(x[:50], y[:50]))


def test_bad_inputs_are_errors():
    with pytest.raises(EvaluationError, match="different shapes"):
        kid(np.zeros((5, 8)), np.zeros((5, 4)))
    with pytest.raises(EvaluationError, match="at least 2 images"):
        kid(np.zeros((1, 8)), np.zeros((5, 8)))


def test_few_images_warn_with_the_counts():
    w = kid_warnings(8, 30, 1000)
    assert any("8 and 30 images" in s and "50" in s for s in w)
    assert any("subsets of 8 images" in s for s in w)
    assert kid_warnings(2000, 1500, 1000) == []
