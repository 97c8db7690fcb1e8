"""metrics/codes.py: a codes file round trip, the seeded t-SNE map with one colour per class, and
the straight line between two codes (the parts ``styleforge codes`` / ``interpolate`` call)."""
import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.errors import ConfigError, DataError
from styleforge.metrics.codes import interpolate_codes, load_codes, save_codes, tsne_embedding, tsne_plot

NAMES = ["cat", "dog", "meerkat", "wild"]


def _clustered_codes(n_per=6, dim=6):
    """4 classes of codes around 4 distant centres (the layout a class encoder gives)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, dim, generator=g) * 10
    codes = torch.cat([c + torch.randn(n_per, dim, generator=g) for c in centres])
    return codes, torch.arange(4).repeat_interleave(n_per)


def test_codes_file_keeps_codes_labels_and_class_names(tmp_path):
    codes, labels = _clustered_codes()
    save_codes(tmp_path / "codes.npz", codes, labels, NAMES)
    c2, l2, n2 = load_codes(tmp_path / "codes.npz")
    assert np.allclose(c2, codes.numpy()) and l2.tolist() == labels.tolist() and n2 == NAMES
    with pytest.raises(DataError, match="N×D with N labels"):
        save_codes(tmp_path / "bad.npz", codes, labels[:3], NAMES)


def test_tsne_map_is_seeded_and_draws_every_class_in_its_own_colour(tmp_path):
    codes, labels = _clustered_codes()
    png = tmp_path / "tsne.png"
    emb, colours = tsne_plot(png, codes, labels, NAMES, seed=0)
    assert emb.shape == (24, 2) and np.isfinite(emb).all() and emb.std() > 0
    assert np.allclose(emb, tsne_embedding(codes, seed=0))  # seeded
    assert list(colours) == NAMES and len(set(colours.values())) == 4
    img = np.asarray(Image.open(png).convert("RGB"), np.float32)
    for rgb in colours.values():  # every class's colour is drawn
        near = np.abs(img - np.array(rgb, np.float32) * 255).max(axis=2) < 8
        assert near.sum() > 20


def test_interpolated_codes_run_from_the_first_to_the_last_in_equal_steps():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    assert torch.allclose(interpolate_codes(a, b, 3), torch.tensor([[0.0, 2.0], [2.0, 0.0], [4.0, -2.0]]))
    assert torch.allclose(interpolate_codes(a[None], b[None], 5)[1], torch.tensor([1.0, 1.0]))
    with pytest.raises(ConfigError, match="2 steps"):
        interpolate_codes(a, b, 1)
    with pytest.raises(ConfigError, match="differ in size: 2 and 3"):
        interpolate_codes(a, torch.zeros(3), 2)
