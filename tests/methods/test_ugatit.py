"""U-GAT-IT: official parameter counts and key layout, import of the authors' checkpoints,
the training step (order, rho clipping, frozen discriminators), checkpointing, save/load."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from styleforge.checkpoint import load_model, save_model
from styleforge.data.images import list_images, load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.ugatit import UGATIT, import_ugatit
from styleforge.registry import build_method
from styleforge.training.trainer import build_optimizers, run_phases
from styleforge.utils.images import heatmap_image

# Parameter counts of the authors' networks (znxlwm/UGATIT-pytorch, networks.py at commit
# b8c4251), obtained by building their ResnetGenerator(3, 3, ngf=ch, n_blocks=n_res,
# img_size, light) and Discriminator(3, ndf=ch, n_layers=7 / 5) with torch and summing
# p.numel() over .parameters() (spectral-norm layers count weight_orig and bias).
OFFICIAL_G = {  # (ch, n_res, img_size, light) -> one generator
    (64, 4, 256, False): 278_959_808,
    (64, 4, 256, True): 10_589_888,
    (64, 4, 128, False): 77_633_216,
    (64, 4, 128, True): 10_589_888,
    (8, 2, 32, False): 158_552,
    (8, 2, 32, True): 94_040,
}
OFFICIAL_D = {  # ch -> (global, 7 layers), (local, 5 layers)
    64: (53_130_176, 3_290_560),
    8: (835_192, 52_920),
}
OPT = {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4}


# ---- the authors' layout, written out from their layer lists --------------------------
def official_generator_shapes(ch, n_res, img_size, light, img_ch=3):
    """Key -> shape of the authors' ResnetGenerator state dict (DownBlock indices: pad, conv,
    IN, ReLU per conv; residual blocks from 12; UpBlock2: upsample, pad, conv, ILN, ReLU)."""
    c = 4 * ch
    s = {"DownBlock.1.weight": (ch, img_ch, 7, 7), "DownBlock.5.weight": (2 * ch, ch, 3, 3),
         "DownBlock.9.weight": (c, 2 * ch, 3, 3)}
    for i in range(n_res):
        for j in (1, 5):
            s[f"DownBlock.{12 + i}.conv_block.{j}.weight"] = (c, c, 3, 3)
    s |= {"gap_fc.weight": (1, c), "gmp_fc.weight": (1, c), "conv1x1.weight": (c, 2 * c, 1, 1),
          "conv1x1.bias": (c,), "FC.0.weight": (c, c if light else (img_size // 4) ** 2 * c),
          "FC.2.weight": (c, c), "gamma.weight": (c, c), "beta.weight": (c, c)}
    for k in range(1, n_res + 1):
        s |= {f"UpBlock1_{k}.conv1.weight": (c, c, 3, 3), f"UpBlock1_{k}.norm1.rho": (1, c, 1, 1),
              f"UpBlock1_{k}.conv2.weight": (c, c, 3, 3), f"UpBlock1_{k}.norm2.rho": (1, c, 1, 1)}
    for idx, cin in ((2, c), (7, c // 2)):
        s[f"UpBlock2.{idx}.weight"] = (cin // 2, cin, 3, 3)
        for p in ("rho", "gamma", "beta"):
            s[f"UpBlock2.{idx + 1}.{p}"] = (1, cin // 2, 1, 1)
    s["UpBlock2.11.weight"] = (img_ch, ch, 7, 7)
    return s


def official_discriminator_shapes(ndf, n_layers, in_ch=3):
    """Key -> shape of the authors' Discriminator (spectral norm: weight_orig, weight_u, weight_v)."""
    s = {}

    def sn(key, shape):
        s[f"{key}.weight_orig"] = shape
        s[f"{key}.weight_u"] = (shape[0],)
        s[f"{key}.weight_v"] = (int(torch.tensor(shape[1:]).prod()),)

    chans = [in_ch] + [ndf * 2 ** i for i in range(n_layers - 1)]
    for i in range(n_layers - 1):  # pad, conv, lrelu per layer: convs at 1, 4, 7, ...
        sn(f"model.{1 + 3 * i}", (chans[i + 1], chans[i], 4, 4))
        s[f"model.{1 + 3 * i}.bias"] = (chans[i + 1],)
    c = chans[-1]
    sn("gap_fc", (1, c))
    sn("gmp_fc", (1, c))
    s |= {"conv1x1.weight": (c, 2 * c, 1, 1), "conv1x1.bias": (c,)}
    sn("conv", (1, c, 4, 4))
    return s


def table_param_count(shapes):
    # weight_u / weight_v are buffers, not parameters
    return sum(int(torch.tensor(v).prod()) for k, v in shapes.items() if not k.endswith(("_u", "_v")))


@pytest.mark.parametrize("ch,n_res,img_size,light", list(OFFICIAL_G))
def test_parameter_counts_equal_official(ch, n_res, img_size, light):
    with torch.device("meta"):  # the 256 px full model has 671M parameters: count, don't allocate
        m = UGATIT(light=light, img_size=img_size, ch=ch, n_res=n_res)
    counts = m.parameter_counts()
    assert counts["genA2B"] == counts["genB2A"] == OFFICIAL_G[(ch, n_res, img_size, light)]
    assert (counts["disGA"], counts["disLA"]) == (counts["disGB"], counts["disLB"]) == OFFICIAL_D[ch]
    # the same numbers from the architecture written out above
    assert table_param_count(official_generator_shapes(ch, n_res, img_size, light)) == counts["genA2B"]
    assert table_param_count(official_discriminator_shapes(ch, 7)) == counts["disGA"]
    assert table_param_count(official_discriminator_shapes(ch, 5)) == counts["disLA"]


@pytest.mark.parametrize("light", [False, True])
def test_state_dict_keys_and_shapes_equal_the_official_layout(light):
    m = UGATIT(light=light, img_size=32, ch=8, n_res=2)
    for name, expected in (("genA2B", official_generator_shapes(8, 2, 32, light)),
                           ("disGB", official_discriminator_shapes(8, 7)),
                           ("disLA", official_discriminator_shapes(8, 5))):
        got = {k: tuple(v.shape) for k, v in getattr(m, name).state_dict().items()}
        assert got == expected, name


def test_initial_rho_and_cam_shapes():
    m = UGATIT(light=True, img_size=96, ch=4, n_res=2)
    g = m.genA2B
    assert torch.all(g.UpBlock1_1.norm1.rho == 0.9) and torch.all(g.UpBlock2[3].rho == 0.0)
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    out, cam, heat = g(x)
    assert out.shape == x.shape and cam.shape == (2, 2) and heat.shape == (2, 1, 24, 24)
    assert out.abs().max() <= 1
    # global: 5 stride-2 convs (96 -> 3), stride-1 conv (-> 2), final conv (-> 1)
    logit, dcam, dheat = m.disGA(x)
    assert logit.shape == (2, 1, 1, 1) and dcam.shape == (2, 2) and dheat.shape == (2, 1, 2, 2)
    logit, dcam, dheat = m.disLA(x)  # local: 96 -> 12 -> 11 -> 10
    assert logit.shape == (2, 1, 10, 10) and dheat.shape == (2, 1, 11, 11)
    # light takes any multiple of 4; full only img_size
    y, h = m.translate(torch.zeros(1, 3, 40, 52), "BtoA", return_heatmap=True)
    assert y.shape == (1, 3, 40, 52) and h.shape == (1, 1, 10, 13)
    full = UGATIT(light=False, img_size=96, ch=4, n_res=1)
    assert full.fixed_size == 96 and m.fixed_size is None
    with pytest.raises(ConfigError, match="96×96"):
        full.translate(torch.zeros(1, 3, 64, 64))
    img = heatmap_image(h, (40, 52))
    assert img.shape == (1, 3, 40, 52) and img.min() >= -1 and img.max() <= 1


# ---- import of the authors' checkpoints ------------------------------------------------
def random_official_state(shapes, g):
    sd = {}
    for k, shape in shapes.items():
        t = torch.randn(*shape, generator=g) * 0.2
        if k.endswith("rho"):
            t = torch.rand(*shape, generator=g)
        elif k.endswith((".gamma", "UpBlock2.3.gamma")):
            t = 1 + t
        elif k.endswith(("_u", "_v")):
            t = F.normalize(t, dim=0)
        sd[k] = t
    return sd


def ref_lin(x, rho, gamma, beta, eps=1e-5):
    out_in = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), keepdim=True) + eps)
    out_ln = (x - x.mean((1, 2, 3), keepdim=True)) / torch.sqrt(x.var((1, 2, 3), keepdim=True) + eps)
    return (rho * out_in + (1 - rho) * out_ln) * gamma + beta


def ref_cam(sd, x, act, w_gap, w_gmp, gap_logit_w, gmp_logit_w):
    n = x.shape[0]
    logits = torch.cat([F.adaptive_avg_pool2d(x, 1).view(n, -1) @ gap_logit_w.t(),
                        F.adaptive_max_pool2d(x, 1).view(n, -1) @ gmp_logit_w.t()], 1)
    h = torch.cat([x * w_gap[:, :, None, None], x * w_gmp[:, :, None, None]], 1)
    h = act(F.conv2d(h, sd["conv1x1.weight"], sd["conv1x1.bias"]))
    return h, logits, h.sum(1, keepdim=True)


def ref_generator(sd, x, n_res, light):
    """The authors' ResnetGenerator.forward written with torch.nn.functional."""
    pad = lambda t, p: F.pad(t, (p,) * 4, mode="reflect")
    inorm = lambda t: F.instance_norm(t, eps=1e-5)
    h = F.relu(inorm(F.conv2d(pad(x, 3), sd["DownBlock.1.weight"])))
    for i in (5, 9):
        h = F.relu(inorm(F.conv2d(pad(h, 1), sd[f"DownBlock.{i}.weight"], stride=2)))
    for b in range(n_res):
        k = f"DownBlock.{12 + b}.conv_block"
        t = F.relu(inorm(F.conv2d(pad(h, 1), sd[f"{k}.1.weight"])))
        h = h + inorm(F.conv2d(pad(t, 1), sd[f"{k}.5.weight"]))
    h, cam, heat = ref_cam(sd, h, F.relu, sd["gap_fc.weight"], sd["gmp_fc.weight"],
                           sd["gap_fc.weight"], sd["gmp_fc.weight"])
    v = F.adaptive_avg_pool2d(h, 1) if light else h
    v = F.relu(F.relu(v.flatten(1) @ sd["FC.0.weight"].t()) @ sd["FC.2.weight"].t())
    gamma = (v @ sd["gamma.weight"].t())[:, :, None, None]
    beta = (v @ sd["beta.weight"].t())[:, :, None, None]
    for k in range(1, n_res + 1):
        p = f"UpBlock1_{k}"
        t = F.relu(ref_lin(F.conv2d(pad(h, 1), sd[f"{p}.conv1.weight"]), sd[f"{p}.norm1.rho"], gamma, beta))
        h = h + ref_lin(F.conv2d(pad(t, 1), sd[f"{p}.conv2.weight"]), sd[f"{p}.norm2.rho"], gamma, beta)
    for i in (2, 7):
        h = F.conv2d(pad(F.interpolate(h, scale_factor=2, mode="nearest"), 1), sd[f"UpBlock2.{i}.weight"])
        h = F.relu(ref_lin(h, *(sd[f"UpBlock2.{i + 1}.{q}"] for q in ("rho", "gamma", "beta"))))
    return torch.tanh(F.conv2d(pad(h, 3), sd["UpBlock2.11.weight"])), cam, heat


def ref_discriminator(sd, x, n_layers):
    """The authors' Discriminator.forward in eval mode: spectral norm W / (u · W v) with the
    stored u, v; the CAM re-weights by the raw weight_orig."""
    def w(key):
        W = sd[f"{key}.weight_orig"]
        return W / torch.dot(sd[f"{key}.weight_u"], W.flatten(1) @ sd[f"{key}.weight_v"])

    lrelu = lambda t: F.leaky_relu(t, 0.2)
    h = x
    for i in range(n_layers - 1):
        k = f"model.{1 + 3 * i}"
        h = lrelu(F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), w(k), sd[f"{k}.bias"],
                           stride=2 if i < n_layers - 2 else 1))
    h, cam, heat = ref_cam(sd, h, lrelu, sd["gap_fc.weight_orig"], sd["gmp_fc.weight_orig"],
                           w("gap_fc"), w("gmp_fc"))
    return F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), w("conv")), cam, heat


def real_image(folder, size, i=0):
    return to_tensor(load_rgb(list_images(folder)[i]).resize((size, size), Image.BICUBIC))[None]


def write_official_checkpoint(path, ch, n_res, img_size, light, seed=0, discriminators=True):
    g = torch.Generator().manual_seed(seed)
    params = {n: random_official_state(official_generator_shapes(ch, n_res, img_size, light), g)
              for n in ("genA2B", "genB2A")}
    if discriminators:
        for n, layers in (("disGA", 7), ("disGB", 7), ("disLA", 5), ("disLB", 5)):
            params[n] = random_official_state(official_discriminator_shapes(ch, layers), g)
    torch.save(params, path)
    return params


@pytest.mark.parametrize("light", [False, True])
def test_import_official_checkpoint_gives_their_outputs(tmp_path, h2z, light):
    params = write_official_checkpoint(tmp_path / "h2z_params_latest.pt", 4, 2, 96, light)
    m = import_ugatit(tmp_path / "h2z_params_latest.pt")
    assert {k: m.config[k] for k in ("light", "ch", "n_res", "img_ch", "n_dis_global", "n_dis_local")} == \
        {"light": light, "ch": 4, "n_res": 2, "img_ch": 3, "n_dis_global": 7, "n_dis_local": 5}
    assert light or m.config["img_size"] == 96
    a, b = real_image(h2z / "testA", 96), real_image(h2z / "testB", 96)
    with torch.no_grad():
        for x, direction, net in ((a, "AtoB", "genA2B"), (b, "BtoA", "genB2A")):
            y, heat = m.translate(x, direction, return_heatmap=True)
            ry, _, rheat = ref_generator(params[net], x, 2, light)
            # equal up to float rounding (summation order differs: fused LIN and CAM)
            assert torch.allclose(y, ry, atol=1e-4) and torch.allclose(heat, rheat, rtol=1e-4, atol=1e-4)
        for net, layers in (("disGA", 7), ("disLB", 5)):
            for got, ref in zip(getattr(m, net)(a), ref_discriminator(params[net], a, layers)):
                assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5), net


def test_cli_import_writes_a_model_that_translates_like_theirs(tmp_path, h2z):
    params = write_official_checkpoint(tmp_path / "x_params_latest.pt", 4, 1, 96, False, seed=3,
                                       discriminators=False)
    out = tmp_path / "model"
    r = subprocess.run([sys.executable, "-m", "styleforge", "import", "ugatit",
                        str(tmp_path / "x_params_latest.pt"), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import styleforge

    pipe = styleforge.load(out)
    assert pipe.method.fixed_size == 96 and set(pipe.directions) == {"AtoB", "BtoA"}
    x = real_image(h2z / "testA", 96, 1)
    assert torch.allclose(pipe(x), ref_generator(params["genA2B"], x, 1, False)[0], atol=1e-4)
    # another size: resized to 96 and back (full U-GAT-IT has a fixed input size)
    assert pipe(torch.zeros(1, 3, 50, 70)).shape == (1, 3, 50, 70)


def test_import_rejects_wrong_kinds_with_one_line(tmp_path):
    cyc = build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")
    torch.save(cyc.G_A.state_dict(), tmp_path / "latest_net_G_A.pth")
    with pytest.raises(CheckpointError, match="not a U-GAT-IT checkpoint.*import cyclegan"):
        import_ugatit(tmp_path / "latest_net_G_A.pth")
    r = subprocess.run([sys.executable, "-m", "styleforge", "import", "ugatit",
                        str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "out")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        import_ugatit(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not found"):
        import_ugatit(tmp_path / "missing.pt")
    # the right dict layout with a network of the wrong shape
    params = write_official_checkpoint(tmp_path / "p.pt", 4, 1, 96, True, discriminators=False)
    params["genB2A"]["UpBlock2.11.weight"] = torch.zeros(3, 5, 7, 7)
    torch.save(params, tmp_path / "p.pt")
    with pytest.raises(CheckpointError, match="genB2A does not match"):
        import_ugatit(tmp_path / "p.pt")


# ---- training --------------------------------------------------------------------------
def real_batch(h2z, size=96, n=1):
    return {"A": torch.cat([real_image(h2z / "trainA", size, i) for i in range(n)]),
            "B": torch.cat([real_image(h2z / "trainB", size, i) for i in range(n)])}


def flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()]).clone()


def test_step_order_d_then_g_and_each_phase_moves_only_its_networks(h2z):
    torch.manual_seed(0)
    m = build_method("ugatit", light=True, img_size=96, ch=4, n_res=1)
    opts = build_optimizers(m, OPT)
    gens, discs = (m.genA2B, m.genB2A), (m.disGA, m.disGB, m.disLA, m.disLB)
    before = [flat(n) for n in gens + discs]
    seen = []
    for ph in m.training_step(real_batch(h2z)):
        frozen = not any(p.requires_grad for d in discs for p in d.parameters())
        seen.append((ph.optimizer, sorted(ph.losses), ph.step, frozen))
        sum(ph.losses.values()).backward()
        if ph.step:
            opts[ph.optimizer].step()
            opts[ph.optimizer].zero_grad(set_to_none=True)
            m.after_step(ph.optimizer)
            if ph.optimizer == "D":  # after the D update and before G's: only D moved
                assert all(torch.equal(b, flat(n)) for b, n in zip(before, gens))
                assert not any(torch.equal(b, flat(n)) for b, n in zip(before[2:], discs))
                assert all(p.grad is None for g in gens for p in g.parameters())
                mid = [flat(n) for n in discs]
    assert seen == [
        ("D", ["D_A_adv", "D_A_adv_cam"], False, False), ("D", ["D_B_adv", "D_B_adv_cam"], True, False),
        ("G", ["G_A2B_adv", "G_A2B_adv_cam", "G_A2B_cam", "cycle_A"], False, True),
        ("G", ["G_B2A_adv", "G_B2A_adv_cam", "G_B2A_cam", "cycle_B"], False, True),
        ("G", ["G_A2A_cam", "G_B2B_cam", "idt_A", "idt_B"], True, True)]
    # the G phase left the discriminators' weights alone and gave them no gradient
    assert all(torch.equal(b, flat(n)) for b, n in zip(mid, discs))
    assert all(p.grad is None for d in discs for p in d.parameters())
    assert not any(torch.equal(b, flat(n)) for b, n in zip(before, gens))


def test_few_steps_on_real_images_lower_the_losses(h2z, train_steps):
    torch.manual_seed(0)
    m = build_method("ugatit", light=False, img_size=96, ch=4, n_res=1)
    opts = build_optimizers(m, OPT)
    hist = []
    for logs in train_steps(m, real_batch(h2z), 4, optimizers=opts)[0]:
        hist.append({"cam": sum(v for k, v in logs.items() if k.endswith("_cam") and "adv" not in k),
                     "rec": sum(v for k, v in logs.items() if k.startswith(("cycle", "idt"))),
                     "D": sum(v for k, v in logs.items() if k.startswith("D_"))})
    for key in ("cam", "rec", "D"):
        assert hist[-1][key] < hist[0][key], (key, hist)


def test_rho_is_clipped_to_unit_interval_after_generator_steps(h2z):
    torch.manual_seed(0)
    m = build_method("ugatit", light=True, img_size=96, ch=4, n_res=1)
    rhos = [p for n, p in m.named_parameters() if n.endswith("rho")]
    assert len(rhos) == 2 * (2 * 1 + 2)  # per generator: 2 AdaLIN per block, 2 LIN
    with torch.no_grad():
        for i, r in enumerate(rhos):
            r.fill_(1.7 if i % 2 else -0.4)
    run_phases(m, build_optimizers(m, OPT), real_batch(h2z))
    for i, r in enumerate(rhos):
        assert r.min() >= 0 and r.max() <= 1
        assert torch.all(r == (1.0 if i % 2 else 0.0))  # the clip acted (Adam moves 1e-4 per step)


def test_checkpoint_blocks_gives_the_same_gradients(h2z):
    batch = real_batch(h2z)
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        m = build_method("ugatit", light=False, img_size=96, ch=4, n_res=2, checkpoint_blocks=ckpt)
        for ph in m.training_step(batch):
            if ph.optimizer == "G":
                sum(ph.losses.values()).backward()
        grads.append([p.grad.clone() for p in m.optimizer_groups()["G"]])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(*grads))
    assert sum(g.abs().sum() for g in grads[0]) > 0


def test_bf16_autocast_step_is_close_to_float32(h2z):
    batch = real_batch(h2z)
    logs = []
    for amp in (False, True):
        torch.manual_seed(0)
        m = build_method("ugatit", light=True, img_size=96, ch=4, n_res=1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logs.append(run_phases(m, build_optimizers(m, OPT), batch))
    for k in logs[0]:
        assert logs[1][k] == pytest.approx(logs[0][k], rel=0.05, abs=0.05), k


def test_save_load_round_trip(tmp_path, h2z):
    torch.manual_seed(0)
    m = build_method("ugatit", light=False, img_size=96, ch=4, n_res=1).eval()
    save_model(tmp_path / "model", m)
    again = load_model(tmp_path / "model")
    assert again.config == m.config and again.fixed_size == 96
    x = real_image(h2z / "testB", 96)
    with torch.no_grad():
        for d in ("AtoB", "BtoA"):
            assert torch.equal(m.translate(x, d), again.translate(x, d))


def test_presets_resolve_to_official_defaults():
    from styleforge import config as C

    for name, light in (("ugatit-full", False), ("ugatit-light", True)):
        cfg = C.resolve(name)
        assert cfg["method"] == "ugatit" and cfg["model"]["light"] is light
        assert {k: cfg["model"][k] for k in ("img_size", "ch", "n_res", "adv_weight", "cycle_weight",
                                             "identity_weight", "cam_weight")} == \
            {"img_size": 256, "ch": 64, "n_res": 4, "adv_weight": 1.0, "cycle_weight": 10.0,
             "identity_weight": 10.0, "cam_weight": 1000.0}
        t, d = cfg["train"], cfg["data"]
        assert (t["lr"], t["betas"], t["weight_decay"]) == (1e-4, [0.5, 0.999], 1e-4)
        assert t["steps"] + t["steps_decay"] == 1_000_000 and t["steps"] == t["steps_decay"]
        assert (d["load_size"], d["crop_size"], d["flip"], d["batch_size"]) == (286, 256, True, 1)


@pytest.mark.parametrize("preset", ["tiny/ugatit", "tiny/ugatit-light"])
def test_tiny_preset_trains_on_photo2cartoon(tmp_path, preset, shared_data):
    from styleforge import config as C
    from styleforge.training.trainer import Trainer

    root = shared_data("photo2cartoon")
    cfg = C.resolve(preset, overrides=["train.steps=2", "train.steps_decay=1", "train.sample_every=0",
                                       "train.checkpoint_every=0", "data.max_size=8"])
    cfg["data"]["root"] = str(root)
    model_dir = Trainer(cfg, tmp_path / "run").fit()
    m = load_model(model_dir)
    assert m.config["light"] is (preset == "tiny/ugatit-light")
    assert all(0 <= p.min() and p.max() <= 1 for n, p in m.named_parameters() if n.endswith("rho"))
    assert (tmp_path / "run" / "samples").is_dir()
