"""The matting Laplacian (Levin et al. 2008) and the DPST photorealism term on real images."""
import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.errors import DataError
from styleforge.losses.matting import MattingLoss, matting_laplacian


def _image(path, size):
    img = Image.open(path).convert("RGB").resize(size, Image.BICUBIC)
    return np.asarray(img, dtype=np.float64) / 255.0


@pytest.fixture
def horse(h2z):
    return _image(sorted((h2z / "trainA").iterdir())[0], (40, 32))


def _reference_laplacian(img, eps=1e-7):
    """Eq. 12 of Levin et al., one window at a time (the loops of the authors' getLaplacian1.m)."""
    h, w, _ = img.shape
    lap = np.zeros((h * w, h * w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            ids = [(y + dy) * w + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            win = img[y - 1:y + 2, x - 1:x + 2].reshape(9, 3)
            mu = win.mean(axis=0)
            cov = (win - mu).T @ (win - mu) / 9
            d = win - mu
            lap[np.ix_(ids, ids)] += np.eye(9) - (1 + d @ np.linalg.inv(cov + eps / 9 * np.eye(3)) @ d.T) / 9
    return lap


def test_laplacian_equals_the_windowed_definition(h2z, monkeypatch):
    img = _image(sorted((h2z / "testA").iterdir())[0], (12, 10))
    lap = matting_laplacian(img)
    np.testing.assert_allclose(lap.toarray(), _reference_laplacian(img), atol=1e-9)
    # windows are summed in chunks on large images: the chunk boundaries change nothing
    monkeypatch.setattr("styleforge.losses.matting._CHUNK", 7)
    np.testing.assert_allclose(matting_laplacian(img).toarray(), lap.toarray(), atol=1e-12)


def test_laplacian_kills_constants_is_symmetric_and_psd(horse):
    lap = matting_laplacian(horse)
    n = horse.shape[0] * horse.shape[1]
    assert lap.shape == (n, n)
    # each pixel meets at most 25 others (the 5×5 neighbourhood of its 3×3 windows)
    assert lap.nnz <= 25 * n
    assert np.abs(lap @ np.ones(n)).max() < 1e-9
    assert abs(lap - lap.T).max() < 1e-9
    eig = np.linalg.eigvalsh(lap.toarray())
    assert eig.min() > -1e-8 * eig.max()
    assert eig.max() > 1.0  # not the zero matrix


def test_locally_affine_recolouring_costs_almost_nothing(horse):
    """DPST's premise: an output that is a locally affine function of the content's colours has
    (with a small ε) nearly zero cost; a noisy output does not."""
    lap = matting_laplacian(horse)
    v = horse.reshape(-1, 3)
    recoloured = v @ np.array([[0.6, 0.2, 0.1], [0.1, 0.9, -0.2], [0.3, 0.0, 0.5]]) + 0.1
    noise = np.random.default_rng(0).uniform(size=v.shape)
    cost = lambda u: float(np.sum(u * (lap @ u)))  # noqa: E731
    assert cost(v) < 1e-3 * cost(noise)
    assert cost(recoloured) < 1e-3 * cost(noise)


def test_loss_value_and_gradient_is_2LV(horse):
    lap = matting_laplacian(horse)
    h, w, _ = horse.shape
    torch.manual_seed(0)
    x = (torch.rand(1, 3, h, w, dtype=torch.float64) * 2 - 1).requires_grad_()
    loss = MattingLoss(lap, weight=1e4, dtype=torch.float64)(x)
    loss.backward()
    v = ((x.detach()[0] + 1) / 2).flatten(1).t().numpy()  # (H·W)×3 in [0, 1]
    np.testing.assert_allclose(loss.item(), 1e4 * np.sum(v * (lap @ v)), rtol=1e-10)
    # d/dV = 2λLV; V = (x + 1)/2 halves it
    grad = x.grad[0].flatten(1).t().numpy()
    np.testing.assert_allclose(grad, 1e4 * 2 * (lap @ v) / 2, rtol=1e-8, atol=1e-8)


def test_on_a_shared_photo_float32(shared_data):
    path = shared_data("adain_examples", "content") / "golden_gate.jpg"
    img = _image(path, (48, 36))
    lap = matting_laplacian(torch.from_numpy(img).permute(2, 0, 1)[None])  # a tensor works too
    assert abs(lap @ np.ones(lap.shape[0])).max() < 1e-9
    x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() * 2 - 1).requires_grad_()
    loss = MattingLoss(lap, weight=1.0)(x)
    loss.backward()
    v = img.reshape(-1, 3)
    np.testing.assert_allclose(x.grad[0].flatten(1).t().numpy(), lap @ v, rtol=1e-3, atol=1e-4)


def test_wrong_sizes_are_one_line_errors(horse):
    lap = matting_laplacian(horse)
    with pytest.raises(DataError, match="Laplacian is for an image of 1280 pixels"):
        MattingLoss(lap)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(DataError, match="at least 3×3"):
        matting_laplacian(np.zeros((2, 5, 3)))
    with pytest.raises(DataError, match="H×W×3"):
        matting_laplacian(np.zeros((5, 5)))
