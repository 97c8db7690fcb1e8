"""CycleGAN: official parameter counts and key layout, the import path, the training step."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.cyclegan import CycleGAN, import_cyclegan
from styleforge.registry import build_method

# Counts printed by the authors' code (print_network) for the same options.
OFFICIAL_COUNTS = {
    ("resnet_9blocks", 64): 11_378_179,
    ("resnet_6blocks", 64): 7_837_699,
}
OFFICIAL_D_BASIC_64 = 2_764_737


@pytest.mark.parametrize("netG,ngf", list(OFFICIAL_COUNTS))
def test_parameter_counts_equal_official(netG, ngf):
    m = build_method("cyclegan", netG=netG, ngf=ngf)
    counts = m.parameter_counts()
    assert counts["G_A"] == counts["G_B"] == OFFICIAL_COUNTS[(netG, ngf)]
    assert counts["D_A"] == counts["D_B"] == OFFICIAL_D_BASIC_64
    assert set(counts) == {"G_A", "G_B", "D_A", "D_B"}  # the loss modules hold no parameters


def official_generator_state(ngf=8, n_blocks=6, in_ch=3, out_ch=3, old_instance_norm=False, seed=0,
                             affine=False, block="conv_block"):
    """A state dict with the key names and shapes of the authors' ResnetGenerator (instance norm,
    no dropout), written out from their layer list, not from our module. ``affine``: their
    ``InstanceNorm2d(affine=True)`` variant (a weight and bias per norm layer, which sits right
    after each conv: ``model.2``, ``model.5``, ..., ``conv_block.2`` and ``.6``); ``block``: the
    residual blocks' Sequential name (vintagify's port calls it ``block``)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1
    sd = {"model.1.weight": r(ngf, in_ch, 7, 7), "model.1.bias": r(ngf),
          "model.4.weight": r(2 * ngf, ngf, 3, 3), "model.4.bias": r(2 * ngf),
          "model.7.weight": r(4 * ngf, 2 * ngf, 3, 3), "model.7.bias": r(4 * ngf)}
    for b in range(n_blocks):
        for j in (1, 5):
            sd[f"model.{10 + b}.{block}.{j}.weight"] = r(4 * ngf, 4 * ngf, 3, 3)
            sd[f"model.{10 + b}.{block}.{j}.bias"] = r(4 * ngf)
    u = 10 + n_blocks
    sd[f"model.{u}.weight"] = r(4 * ngf, 2 * ngf, 3, 3)  # ConvTranspose2d: in, out
    sd[f"model.{u}.bias"] = r(2 * ngf)
    sd[f"model.{u + 3}.weight"] = r(2 * ngf, ngf, 3, 3)
    sd[f"model.{u + 3}.bias"] = r(ngf)
    sd[f"model.{u + 7}.weight"] = r(out_ch, ngf, 7, 7)
    sd[f"model.{u + 7}.bias"] = r(out_ch)
    if affine:
        for k in [k for k in sd if k.endswith(".bias") and not k.startswith(f"model.{u + 7}.")]:
            conv, ch = k.removesuffix(".bias"), sd[k].shape[0]
            head, idx = conv.rsplit(".", 1)
            sd[f"{head}.{int(idx) + 1}.weight"] = 1 + r(ch)
            sd[f"{head}.{int(idx) + 1}.bias"] = r(ch)
    if old_instance_norm:  # checkpoints from PyTorch < 0.4 carry these
        sd["model.2.running_mean"] = torch.zeros(ngf)
        sd["model.2.running_var"] = torch.ones(ngf)
    return sd


def reference_forward(sd, x, n_blocks):
    """The authors' ResnetGenerator forward, written with torch.nn.functional (their affine
    instance norm variant where ``sd`` has the norms' weights)."""
    def norm(t, key):  # the norm after conv ``key`` (model.1 -> model.2, conv_block.5 -> .6)
        head, idx = key.rsplit(".", 1)
        nk = f"{head}.{int(idx) + 1}"
        return F.instance_norm(t, weight=sd.get(f"{nk}.weight"), bias=sd.get(f"{nk}.bias"), eps=1e-5)

    h = F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), sd["model.1.weight"], sd["model.1.bias"])
    h = F.relu(norm(h, "model.1"))
    for i in (4, 7):
        h = F.relu(norm(F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], 2, 1), f"model.{i}"))
    for b in range(n_blocks):
        k = f"model.{10 + b}.conv_block"
        t = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), sd[f"{k}.1.weight"], sd[f"{k}.1.bias"])
        t = F.relu(norm(t, f"{k}.1"))
        t = norm(F.conv2d(F.pad(t, (1,) * 4, mode="reflect"), sd[f"{k}.5.weight"], sd[f"{k}.5.bias"]), f"{k}.5")
        h = h + t
    u = 10 + n_blocks
    for i in (u, u + 3):
        h = F.conv_transpose2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], 2, 1, output_padding=1)
        h = F.relu(norm(h, f"model.{i}"))
    h = F.conv2d(F.pad(h, (3,) * 4, mode="reflect"), sd[f"model.{u + 7}.weight"], sd[f"model.{u + 7}.bias"])
    return torch.tanh(h)


def test_import_official_generators_gives_their_outputs(tmp_path):
    sd_a = official_generator_state(seed=1, old_instance_norm=True)
    sd_b = official_generator_state(seed=2)
    torch.save(sd_a, tmp_path / "latest_net_G_A.pth")
    # multi-GPU saves carry a "module." prefix
    torch.save({f"module.{k}": v for k, v in sd_b.items()}, tmp_path / "latest_net_G_B.pth")
    m = import_cyclegan(tmp_path / "latest_net_G_A.pth", reverse=tmp_path / "latest_net_G_B.pth").eval()
    assert m.config["ngf"] == 8 and m.config["netG"] == "resnet_6blocks"
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(m.translate(x, "AtoB"), reference_forward(sd_a, x, 6), atol=1e-5)
        assert torch.allclose(m.translate(x, "BtoA"), reference_forward(sd_b, x, 6), atol=1e-5)


def test_import_single_generator_offers_one_direction(tmp_path):
    torch.save(official_generator_state(n_blocks=9), tmp_path / "horse2zebra.pth")
    m = import_cyclegan(tmp_path / "horse2zebra.pth")
    assert m.directions == ("AtoB",) and m.config["netG"] == "resnet_9blocks"
    with pytest.raises(Exception, match="BtoA"):
        m.translate(torch.zeros(1, 3, 8, 8), "BtoA")


def test_import_rejects_wrong_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        import_cyclegan(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read"):
        import_cyclegan(tmp_path / "junk.pth")
    # a discriminator is not a generator
    torch.save(build_method("cyclegan", ngf=4, ndf=4).D_A.state_dict(), tmp_path / "latest_net_D_A.pth")
    with pytest.raises(CheckpointError):
        import_cyclegan(tmp_path / "latest_net_D_A.pth")

    # a pickle that would run code is refused by weights_only loading
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"model.1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError):
        import_cyclegan(tmp_path / "evil.pth")


def test_cli_import_writes_a_loadable_model(tmp_path):
    torch.save(official_generator_state(), tmp_path / "g.pth")
    out = tmp_path / "model"
    r = subprocess.run([sys.executable, "-m", "styleforge", "import", "cyclegan", str(tmp_path / "g.pth"), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import styleforge

    pipe = styleforge.load(out)
    x = torch.rand(1, 3, 21, 27) * 2 - 1
    # odd sizes are reflection-padded to the network's multiple of 4 and cropped back
    y = pipe(x)
    assert y.shape == x.shape
    ref = reference_forward(official_generator_state(), F.pad(x, (0, 1, 0, 3), mode="reflect"), 6)
    assert torch.allclose(y, ref[..., :21, :27], atol=1e-5)


def test_training_step_phases_and_frozen_discriminators():
    torch.manual_seed(0)
    m = build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks", pool_size=2)
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    phases = []
    for ph in m.training_step(batch):
        if ph.optimizer == "G":
            # the discriminators get no gradient from the generator's loss
            assert not any(p.requires_grad for p in m.D_A.parameters())
        else:
            assert all(p.requires_grad for p in m.D_A.parameters())
        phases.append((ph.optimizer, sorted(ph.losses), ph.step))
        sum(ph.losses.values()).backward()
    assert phases == [("G", ["G_A", "cycle_A"], False), ("G", ["G_B", "cycle_B"], False),
                      ("G", ["idt_A", "idt_B"], True), ("D", ["D_A"], False), ("D", ["D_B"], True)]


def test_split_backward_equals_one_backward_of_the_sum():
    """The generator loss split into three backward passes gives the gradients of one."""
    torch.manual_seed(0)
    m = build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    for ph in m.training_step({"A": a, "B": b}):
        if ph.optimizer != "G":
            break
        sum(ph.losses.values()).backward()
    split = [p.grad.clone() for p in m.optimizer_groups()["G"]]
    m.zero_grad(set_to_none=True)
    # the sum of the paper's full objective (Eq. 3 + identity), one backward
    mse = lambda p: ((p - 1) ** 2).mean()
    fb, fa = m.G_A(a), m.G_B(b)
    total = (mse(m.D_A(fb)) + mse(m.D_B(fa)) + 10 * (m.G_B(fb) - a).abs().mean()
             + 10 * (m.G_A(fa) - b).abs().mean() + 5 * (m.G_A(b) - b).abs().mean()
             + 5 * (m.G_B(a) - a).abs().mean())
    total.backward()
    for g, p in zip(split, m.optimizer_groups()["G"]):
        assert torch.allclose(g, p.grad, rtol=1e-4, atol=1e-6)


def test_config_is_the_constructor_arguments():
    m = CycleGAN(ngf=8, netG="resnet_6blocks")
    again = CycleGAN(**m.config)
    assert again.config == m.config
    assert m.config["ngf"] == 8 and m.config["lambda_identity"] == 0.5


# ---- affine instance norm (vintagify's port and the like) ------------------------------------
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "styleforge", *map(str, args)], capture_output=True, text=True)


def one_error_line(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_affine_instance_norm_is_a_config_value_with_its_parameter_count():
    m = build_method("cyclegan", norm="instance_affine")
    counts = m.parameter_counts()
    # a weight and a bias per channel of the generator's 23 norms: 2 × (64 + 128 + 256 + 18·256 + 128 + 64)
    assert counts["G_A"] == counts["G_B"] == 11_378_179 + 10_496 == 11_388_675
    assert counts["D_A"] == OFFICIAL_D_BASIC_64 + 2 * (128 + 256 + 512)
    norm = m.G_A.model[2]
    assert isinstance(norm, torch.nn.InstanceNorm2d) and norm.affine and not norm.track_running_stats
    assert m.G_A.model[1].bias is not None  # convs before instance norms keep their bias
    assert (norm.weight == 1).all() and (norm.bias == 0).all()  # the authors' init leaves them
    assert CycleGAN(**m.config).config["norm"] == "instance_affine"


@pytest.mark.parametrize("block", ["conv_block", "block"])
def test_import_affine_generator_gives_their_outputs(tmp_path, block):
    """The affine variant in the authors' layout and in vintagify's (residual blocks called
    ``block``) import with the norm read from the keys, and give the reference outputs; the
    model directory loads with no extra code (the norm is in config.json)."""
    import json

    import styleforge

    torch.save(official_generator_state(seed=3, affine=True, block=block), tmp_path / "g.pth")
    m = import_cyclegan(tmp_path / "g.pth").eval()
    assert m.config["norm"] == "instance_affine" and m.config["dropout"] is False
    assert m.config["netG"] == "resnet_6blocks" and m.directions == ("AtoB",)
    sd = official_generator_state(seed=3, affine=True)
    x = torch.rand(2, 3, 36, 44) * 2 - 1
    ref = reference_forward(sd, x, 6)
    with torch.no_grad():
        assert torch.allclose(m.translate(x), ref, atol=1e-5)
    r = run_cli("import", "cyclegan", tmp_path / "g.pth", tmp_path / "model")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "model" / "config.json").read_text())["config"]["norm"] == "instance_affine"
    assert torch.allclose(styleforge.load(tmp_path / "model")(x), ref, atol=1e-5)
    # the same convs without the norms' weights give other outputs: a dropped affine would show
    plain = official_generator_state(seed=3)
    assert all(torch.equal(v, sd[k]) for k, v in plain.items())
    assert (reference_forward(plain, x, 6) - ref).abs().max() > 0.05


def _saved(tmp_path, name, net):
    torch.save(net.state_dict(), tmp_path / name)
    return tmp_path / name


def _random_stats(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.weight.copy_(1 + torch.randn(mod.num_features, generator=g) * 0.1)
                mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            elif isinstance(mod, torch.nn.InstanceNorm2d) and mod.affine:
                mod.weight.copy_(1 + torch.randn(mod.num_features, generator=g) * 0.1)
                mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
    return net


@pytest.mark.parametrize("norm,dropout,legacy", [
    ("instance", False, False), ("instance_affine", False, False), ("instance_affine", False, True),
    ("instance_affine", True, False), ("batch", False, False), ("batch", False, True), ("batch", True, False),
    ("none", False, False)])
def test_norm_and_dropout_are_read_from_the_keys(tmp_path, norm, dropout, legacy):
    """Batch norm and affine instance norm both have weights after ``model.1``: batch norm's
    running statistics (``num_batches_tracked`` since PyTorch 0.4.1) and the conv bias tell them
    apart, also in files from PyTorch < 0.4 (``legacy``: no counter; instance norms carried
    running statistics). With dropout the second conv of a block moves to ``conv_block.6``,
    where a norm's weight sits without it."""
    from styleforge.methods.cyclegan import generator_norm
    from styleforge.nn.generators import ResnetGenerator

    torch.manual_seed(0)
    net = _random_stats(ResnetGenerator(ngf=4, n_blocks=6, norm=norm, dropout=0.5 if dropout else 0.0)).eval()
    sd = net.state_dict()
    if legacy:
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        if norm == "instance_affine":
            sd |= {"model.2.running_mean": torch.zeros(4), "model.2.running_var": torch.ones(4)}
    assert generator_norm(sd) == norm
    torch.save(sd, tmp_path / "g.pth")
    m = import_cyclegan(tmp_path / "g.pth").eval()
    assert (m.config["norm"], m.config["dropout"]) == (norm, dropout)
    x = torch.rand(1, 3, 24, 20) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.translate(x), net(x))


def test_norm_option_forces_the_norm(tmp_path):
    torch.save(official_generator_state(affine=True, block="block"), tmp_path / "affine.pth")
    torch.save(official_generator_state(), tmp_path / "plain.pth")
    forced = import_cyclegan(tmp_path / "affine.pth", norm="instance_affine")
    assert forced.config["norm"] == "instance_affine"
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(forced.translate(x), import_cyclegan(tmp_path / "affine.pth").translate(x))
    # a norm the file does not have: one line naming what is missing or left over
    with pytest.raises(CheckpointError, match=r"unexpected \['model.2.weight'") as e:
        import_cyclegan(tmp_path / "affine.pth", norm="instance")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"missing \['model.2.weight'"):
        import_cyclegan(tmp_path / "plain.pth", norm="instance_affine")
    with pytest.raises(ConfigError, match="norm must be one of"):
        import_cyclegan(tmp_path / "plain.pth", norm="group")
    r = run_cli("import", "cyclegan", tmp_path / "affine.pth", tmp_path / "m", "--option", "norm=instance_affine")
    assert r.returncode == 0, r.stderr
    assert "does not match" in one_error_line(
        run_cli("import", "cyclegan", tmp_path / "affine.pth", tmp_path / "m2", "--option", "norm=batch"))


def test_reverse_with_affine_generators(tmp_path):
    torch.save(official_generator_state(seed=4, affine=True, block="block"), tmp_path / "G_A2B.pth")
    torch.save(official_generator_state(seed=5, affine=True, block="block"), tmp_path / "G_B2A.pth")
    torch.save(official_generator_state(seed=6), tmp_path / "plain.pth")
    m = import_cyclegan(tmp_path / "G_A2B.pth", reverse=tmp_path / "G_B2A.pth").eval()
    assert m.directions == ("AtoB", "BtoA") and m.config["norm"] == "instance_affine"
    x = torch.rand(1, 3, 20, 28) * 2 - 1
    with torch.no_grad():
        for direction, seed in (("AtoB", 4), ("BtoA", 5)):
            ref = reference_forward(official_generator_state(seed=seed, affine=True), x, 6)
            assert torch.allclose(m.translate(x, direction), ref, atol=1e-5)
    with pytest.raises(CheckpointError, match="instance_affine norm and .* instance norm"):
        import_cyclegan(tmp_path / "G_A2B.pth", reverse=tmp_path / "plain.pth")
    r = run_cli("import", "cyclegan", tmp_path / "G_A2B.pth", tmp_path / "m", "--reverse", tmp_path / "G_B2A.pth")
    assert r.returncode == 0 and "AtoB, BtoA" in r.stdout, r.stderr


def test_bad_files_are_one_line_errors(tmp_path):
    """An empty file, a truncated one, another network's .pth: one-line CheckpointErrors from the
    API, one ``error:`` line and exit code 2 from the CLI."""
    from styleforge.nn.generators import UnetGenerator

    torch.save(official_generator_state(affine=True, block="block"), tmp_path / "good.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    # vintagify's discriminator (their layer list: conv, lrelu, [conv, affine IN, lrelu] × 3, conv, sigmoid)
    disc = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 2, 1), torch.nn.LeakyReLU(0.2),
                               *[m for c in (8, 16, 32) for m in (torch.nn.Conv2d(c, 2 * c, 4, 2, 1),
                                 torch.nn.InstanceNorm2d(2 * c, affine=True), torch.nn.LeakyReLU(0.2))],
                               torch.nn.Conv2d(64, 1, 4, 1, 1), torch.nn.Sigmoid())
    torch.save({f"model.{k}": v for k, v in disc.state_dict().items()}, tmp_path / "D_A_epoch33.pth")
    _saved(tmp_path, "unet.pth", UnetGenerator(num_downs=5, ngf=4))
    cases = {"empty.pth": "cannot read", "truncated.pth": "cannot read",
             "D_A_epoch33.pth": "not a CycleGAN ResNet generator", "unet.pth": "not a CycleGAN ResNet generator"}
    for name, msg in cases.items():
        with pytest.raises(CheckpointError, match=msg) as e:
            import_cyclegan(tmp_path / name)
        assert "\n" not in str(e.value), name
        with pytest.raises(CheckpointError, match=msg):  # as the reverse generator too
            import_cyclegan(tmp_path / "good.pth", reverse=tmp_path / name)
    for name, msg in cases.items():
        assert msg in one_error_line(run_cli("import", "cyclegan", tmp_path / name, tmp_path / f"out_{name}"))
        assert not (tmp_path / f"out_{name}").exists()
