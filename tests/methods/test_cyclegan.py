"""CycleGAN: official parameter counts and key layout, the import path, the training step."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from styleforge.errors import CheckpointError
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


def official_generator_state(ngf=8, n_blocks=6, in_ch=3, out_ch=3, old_instance_norm=False, seed=0):
    """A state dict with the key names and shapes of the authors' ResnetGenerator (instance norm,
    no dropout), written out from their layer list, not from our module."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1
    sd = {"model.1.weight": r(ngf, in_ch, 7, 7), "model.1.bias": r(ngf),
          "model.4.weight": r(2 * ngf, ngf, 3, 3), "model.4.bias": r(2 * ngf),
          "model.7.weight": r(4 * ngf, 2 * ngf, 3, 3), "model.7.bias": r(4 * ngf)}
    for b in range(n_blocks):
        for j in (1, 5):
            sd[f"model.{10 + b}.conv_block.{j}.weight"] = r(4 * ngf, 4 * ngf, 3, 3)
            sd[f"model.{10 + b}.conv_block.{j}.bias"] = r(4 * ngf)
    u = 10 + n_blocks
    sd[f"model.{u}.weight"] = r(4 * ngf, 2 * ngf, 3, 3)  # ConvTranspose2d: in, out
    sd[f"model.{u}.bias"] = r(2 * ngf)
    sd[f"model.{u + 3}.weight"] = r(2 * ngf, ngf, 3, 3)
    sd[f"model.{u + 3}.bias"] = r(ngf)
    sd[f"model.{u + 7}.weight"] = r(out_ch, ngf, 7, 7)
    sd[f"model.{u + 7}.bias"] = r(out_ch)
    if old_instance_norm:  # checkpoints from PyTorch < 0.4 carry these
        sd["model.2.running_mean"] = torch.zeros(ngf)
        sd["model.2.running_var"] = torch.ones(ngf)
    return sd


def reference_forward(sd, x, n_blocks):
    """The authors' ResnetGenerator forward, written with torch.nn.functional."""
    inorm = lambda t: F.instance_norm(t, eps=1e-5)
    h = F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), sd["model.1.weight"], sd["model.1.bias"])
    h = F.relu(inorm(h))
    for i in (4, 7):
        h = F.relu(inorm(F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], 2, 1)))
    for b in range(n_blocks):
        k = f"model.{10 + b}.conv_block"
        t = F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), sd[f"{k}.1.weight"], sd[f"{k}.1.bias"])
        t = F.relu(inorm(t))
        t = inorm(F.conv2d(F.pad(t, (1,) * 4, mode="reflect"), sd[f"{k}.5.weight"], sd[f"{k}.5.bias"]))
        h = h + t
    u = 10 + n_blocks
    for i in (u, u + 3):
        h = F.conv_transpose2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], 2, 1, output_padding=1)
        h = F.relu(inorm(h))
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
