"""Pix2Pix: official parameter counts and key layout, the import path against a functional
reference forward, test-time dropout / batch statistics, the training step on real images."""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.pix2pix import Pix2Pix, import_pix2pix
from styleforge.nn.generators import TestTimeDropout
from styleforge.registry import build_method
from styleforge.training.trainer import build_optimizers

# Official counts (junyanz/pytorch-CycleGAN-and-pix2pix networks.py, printed by its
# print_networks for define_G(3, 3, 64, "unet_256", "batch", use_dropout=True) and
# define_D(6, 64, "basic", norm="batch")), and derived by hand from its layer list, 4×4 kernels:
#   G down convs (no bias before batch norm): 3·64 + 64·128 + 128·256 + 256·512 + 4·512·512,
#     all ×16 = 19,532,800; their BN affines 2·(128 + 256 + 512 + 3·512) = 4,864
#   G up convs: 512·512 (innermost) + 3·1024·512 (dropout blocks) + 1024·256 + 512·128 + 256·64
#     + 128·3, all ×16 = 34,871,296; BN 2·(512 + 3·512 + 256 + 128 + 64) = 4,992; final bias 3
#   -> 54,413,955.  unet_128 has one 1024->512 block (and its BN, down conv) fewer: 41,828,995.
#   D on 6 channels: 6·64·16 + 64 + (64·128 + 128·256 + 256·512)·16 + 2·(128 + 256 + 512)
#     + 512·16 + 1 = 2,768,705.
OFFICIAL_G = {"unet_256": 54_413_955, "unet_128": 41_828_995}
OFFICIAL_D_BASIC_6CH = 2_768_705


@pytest.mark.parametrize("netG", list(OFFICIAL_G))
def test_parameter_counts_equal_official(netG):
    counts = build_method("pix2pix", netG=netG).parameter_counts()
    assert counts == {"G": OFFICIAL_G[netG], "D": OFFICIAL_D_BASIC_6CH}


def official_unet_state(ngf=4, num_downs=6, in_ch=3, out_ch=3, seed=0, with_counters=True):
    """Keys and shapes of the authors' UnetGenerator (batch norm), written out from their
    nesting (outermost model.model.{0,3}; each inner level model.{1,2,3,5,6}, innermost
    model.{1,3,4}), not from our module."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1
    chans = [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (num_downs - 3)  # out channels of down convs
    sd = {"model.model.0.weight": r(ngf, in_ch, 4, 4),
          "model.model.3.weight": r(2 * ngf, out_ch, 4, 4), "model.model.3.bias": r(out_ch)}

    def bn(prefix, c):
        sd[f"{prefix}.weight"] = 1 + r(c)
        sd[f"{prefix}.bias"] = r(c)
        sd[f"{prefix}.running_mean"] = r(c)
        sd[f"{prefix}.running_var"] = 1 + r(c).abs()
        if with_counters:
            sd[f"{prefix}.num_batches_tracked"] = torch.tensor(7)

    p = "model.model.1"
    for level in range(1, num_downs):
        outer, inner = chans[level - 1], chans[level]
        sd[f"{p}.model.1.weight"] = r(inner, outer, 4, 4)
        if level == num_downs - 1:  # innermost
            sd[f"{p}.model.3.weight"] = r(inner, outer, 4, 4)
            bn(f"{p}.model.4", outer)
        else:
            bn(f"{p}.model.2", inner)
            sd[f"{p}.model.5.weight"] = r(2 * inner, outer, 4, 4)
            bn(f"{p}.model.6", outer)
        p += ".model.3"
    return sd


def reference_forward(sd, x, num_downs, batch_stats=True):
    """The authors' U-Net forward with torch.nn.functional; batch norm with the input's own
    statistics (their test.py: training mode, batch 1) or the running averages (--eval);
    dropout off. Their in-place leaky ReLU means each skip carries lrelu(x)."""
    def bn(t, pre):
        return F.batch_norm(t, sd[f"{pre}.running_mean"].clone(), sd[f"{pre}.running_var"].clone(),
                            sd[f"{pre}.weight"], sd[f"{pre}.bias"], training=batch_stats, eps=1e-5)

    def level(t, p, depth):
        t = F.leaky_relu(t, 0.2)
        h = F.conv2d(t, sd[f"{p}.model.1.weight"], None, 2, 1)
        if depth == num_downs - 1:
            h = F.conv_transpose2d(F.relu(h), sd[f"{p}.model.3.weight"], None, 2, 1)
            return torch.cat([t, bn(h, f"{p}.model.4")], 1)
        h = level(bn(h, f"{p}.model.2"), f"{p}.model.3", depth + 1)
        h = F.conv_transpose2d(F.relu(h), sd[f"{p}.model.5.weight"], None, 2, 1)
        return torch.cat([t, bn(h, f"{p}.model.6")], 1)

    h = F.conv2d(x, sd["model.model.0.weight"], None, 2, 1)
    h = level(h, "model.model.1", 1)
    h = F.conv_transpose2d(F.relu(h), sd["model.model.3.weight"], sd["model.model.3.bias"], 2, 1)
    return torch.tanh(h)


def facade_labels(facades, n=2, size=64):
    """Label maps (the right halves) of the first bundled facades test images, N×3×size×size."""
    out = []
    for f in sorted((facades / "test").glob("*.jpg"))[:n]:
        with Image.open(f) as im:
            w, h = im.size
            out.append(to_tensor(im.convert("RGB").crop((w // 2, 0, w, h)).resize((size, size), Image.BICUBIC)))
    return torch.stack(out)


def test_state_dict_keys_and_shapes_equal_the_official_layout():
    ours = {k: tuple(v.shape) for k, v in build_method("pix2pix", netG="unet_64", ngf=4).G.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in official_unet_state(ngf=4, num_downs=6).items()}
    assert ours == theirs


@pytest.mark.parametrize("counters", [True, False])
def test_import_official_generator_gives_their_outputs(tmp_path, facades, counters):
    sd = official_unet_state(ngf=4, num_downs=6, seed=3, with_counters=counters)
    # multi-GPU saves carry "module."; checkpoints from PyTorch < 0.4.1 lack num_batches_tracked
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "latest_net_G.pth")
    model = import_pix2pix(tmp_path / "latest_net_G.pth", direction="BtoA").eval()
    assert model.config["netG"] == "unet_64" and model.config["ngf"] == 4
    assert model.directions == ("BtoA",)
    x = facade_labels(facades)
    with torch.no_grad():
        # the first network call of a process may differ from later ones in the last bits (3.9e-5
        # seen, in one process in two): warm up before comparing at 1e-5
        model.translate(x, "BtoA", dropout=False)
        for batch_stats in (True, False):
            ours = model.translate(x, "BtoA", dropout=False, batch_stats=batch_stats)
            # their test runs one image per batch
            ref = torch.cat([reference_forward(sd, xi[None], 6, batch_stats) for xi in x])
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    # the two normalisations really differ (the test would not notice a swap otherwise)
    assert (model.translate(x, dropout=False, batch_stats=True)
            - model.translate(x, dropout=False, batch_stats=False)).abs().max() > 1e-2


def test_cli_import_writes_a_model_that_translates_like_theirs(tmp_path, facades):
    sd = official_unet_state(ngf=4, num_downs=6, seed=5)
    torch.save(sd, tmp_path / "facades_label2photo.pth")
    out = tmp_path / "model"
    r = subprocess.run([sys.executable, "-m", "styleforge", "import", "pix2pix",
                        str(tmp_path / "facades_label2photo.pth"), str(out), "--direction", "BtoA"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    pipe = styleforge.load(out)
    x = facade_labels(facades, n=1)
    y = pipe.translate_tensor(x, "BtoA", dropout=False)
    torch.testing.assert_close(y, reference_forward(sd, x, 6), rtol=0, atol=1e-5)
    with pytest.raises(ConfigError, match="translates BtoA"):
        pipe.translate_tensor(x, "AtoB")


def _resnet_like():
    return {"model.1.weight": torch.zeros(4, 3, 7, 7), "model.10.conv_block.1.weight": torch.zeros(16, 16, 3, 3)}


@pytest.mark.parametrize("case", ["missing", "resnet", "garbage", "truncated_unet"])
def test_import_rejects_wrong_files(tmp_path, case):
    f = tmp_path / "G.pth"
    if case == "resnet":
        torch.save(_resnet_like(), f)
    elif case == "garbage":
        f.write_bytes(b"not a checkpoint")
    elif case == "truncated_unet":
        sd = official_unet_state(ngf=4, num_downs=6)
        sd.pop("model.model.1.model.6.weight")
        torch.save(sd, f)
    with pytest.raises(CheckpointError) as e:
        import_pix2pix(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg
    if case == "resnet":
        assert "import cyclegan" in msg
    if case == "truncated_unet":
        assert "model.model.1.model.6.weight" in msg


def test_test_time_dropout_is_noise_and_switchable(facades):
    torch.manual_seed(0)
    m = build_method("pix2pix", netG="unet_64", ngf=8).eval()
    x = facade_labels(facades)
    with torch.no_grad():
        a, b = m.translate(x), m.translate(x)
        assert (a - b).abs().max() > 1e-4  # dropout on at test time (the paper's z)
        torch.testing.assert_close(m.translate(x, seed=1), m.translate(x, seed=1), rtol=0, atol=0)
        torch.testing.assert_close(m.translate(x, dropout=False), m.translate(x, dropout=False), rtol=0, atol=0)
        off = build_method("pix2pix", netG="unet_64", ngf=8, test_dropout=False)
        off.load_state_dict(m.state_dict())
        torch.testing.assert_close(off.eval().translate(x), m.translate(x, dropout=False), rtol=0, atol=0)
    # the web app's form: every declared option is a keyword of translate
    opts = {o.name: o for o in m.inference_options()}
    assert set(opts) == {"dropout", "batch_stats", "seed"} and opts["dropout"].default is True
    with torch.no_grad():
        torch.testing.assert_close(m.translate(x, dropout=True, batch_stats=True, seed=3),
                                   m.translate(x, seed=3), rtol=0, atol=0)
    # per-image statistics: an image's output does not depend on the rest of the batch
    with torch.no_grad():
        torch.testing.assert_close(m.translate(x, dropout=False)[:1], m.translate(x[:1], dropout=False),
                                   rtol=0, atol=1e-5)
    # inference leaves the running statistics alone
    before = {k: v.clone() for k, v in m.G.state_dict().items() if "running" in k}
    with torch.no_grad():
        m.translate(x)
    assert all(torch.equal(before[k], m.G.state_dict()[k]) for k in before)


def test_seeded_translate_equals_each_layer_drawing_its_masks_as_it_runs(facades):
    """The masks drawn before the network runs give the output bit for bit of the earlier way:
    each dropout layer drawing, as it ran, one C×h×w uniform per sample from that sample's own
    generator seeded with the seed (kept where ≥ p, scaled by 1/(1-p))."""
    torch.manual_seed(0)
    m = build_method("pix2pix", netG="unet_128", ngf=4).eval()  # two dropout levels
    x = facade_labels(facades, size=128)

    def draw_as_it_runs(mod, inp, out):
        return inp[0] * torch.stack([torch.rand(inp[0].shape[1:], generator=g) >= mod.p
                                     for g in gens]).to(inp[0].dtype) * (1.0 / (1.0 - mod.p))

    hooks = [d.register_forward_hook(draw_as_it_runs) for d in m.G.modules() if isinstance(d, TestTimeDropout)]
    try:
        with torch.no_grad():
            gens = [torch.Generator().manual_seed(4) for _ in range(len(x))]
            want = m.G(x)  # no masks given: the hooks replace the global RNG's dropout
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        got = m.translate(x, seed=4)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(m.translate(x, **m.eager_inputs(x, seed=4)), want, rtol=0, atol=0)


def test_seeded_translate_traces_as_one_graph_that_new_seeds_do_not_recompile(facades):
    """The seeded masks enter the compiled translate as tensors (Compiled runs eager_inputs
    first): dynamo traces it whole, with no graph break, and a new seed reuses the graph."""
    import torch._dynamo as dynamo
    from torch._dynamo.testing import CompileCounter
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    m = build_method("pix2pix", netG="unet_64", ngf=4).eval()
    x = facade_labels(facades)
    dynamo.reset()
    counters.clear()
    with torch.no_grad():
        counter = CompileCounter()
        compiled = torch.compile(m.translate, backend=counter, dynamic=False)
        for seed in (3, 4):
            torch.testing.assert_close(compiled(x, **m.eager_inputs(x, seed=seed)), m.translate(x, seed=seed),
                                       rtol=0, atol=0)
    assert counter.frame_count == 1 and not counters["graph_break"], dict(counters["graph_break"])
    dynamo.reset()


@pytest.mark.skipif(not os.environ.get("STYLEFORGE_COMPILE_TESTS"),
                    reason="torch.compile takes 20-100 s on a 2-core box; STYLEFORGE_COMPILE_TESTS=1 runs it")
def test_compiled_seeded_translate_equals_eager_with_frozen_weights(facades):
    """accel.Compiled (inductor, weights frozen) on a seeded translate: the eager output within
    the fp32 bound, the same seed's noise, one graph for two seeds."""
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    from styleforge import accel

    torch.manual_seed(0)
    m = build_method("pix2pix", netG="unet_64", ngf=8).eval()
    x = facade_labels(facades)
    dynamo.reset()
    counters.clear()
    compiled = accel.Compiled(m)
    with torch.no_grad():
        for seed in (3, 4):
            y = compiled.translate(x, seed=seed)
            assert compiled.failed is None
            assert (y - m.translate(x, seed=seed)).abs().max() <= accel.EXACT_MAX_DIFF
        assert (compiled.translate(x, seed=3) - m.translate(x, seed=4)).abs().max() > 1e-2  # the seed's noise
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    dynamo.reset()


def _paired_batch(facades, phase, n, size=64):
    from styleforge.data.datasets import build_dataset
    from styleforge.data.transforms import Transform

    ds = build_dataset("paired_ab", facades, phase, Transform(size, size, "resize", flip=False),
                       direction="BtoA")
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in ("A", "B")}


def test_step_order_d_then_g_and_each_phase_moves_only_its_network(facades):
    torch.manual_seed(0)
    m = build_method("pix2pix", netG="unet_64", ngf=4, ndf=4, dropout=False)
    batch = _paired_batch(facades, "train", 2)
    steps = m.training_step(batch)
    d_phase = next(steps)
    assert d_phase.optimizer == "D" and set(d_phase.losses) == {"D_fake", "D_real"}
    sum(d_phase.losses.values()).backward()
    assert all(p.grad is None for p in m.G.parameters())  # G(x) was detached for D
    assert any(p.grad.abs().sum() > 0 for p in m.D.parameters())
    with torch.no_grad():
        for p in m.D.parameters():  # stands in for the trainer's D step between the phases
            p.grad = None
            p.add_(0.05 * torch.randn_like(p))
    g_phase = next(steps)
    assert g_phase.optimizer == "G" and set(g_phase.losses) == {"G_GAN", "G_L1"}
    with torch.no_grad():  # without dropout G(x) is repeatable in training mode
        fake = m.G(batch["A"])
        expected_gan = m.gan_loss(m.D(torch.cat([batch["A"], fake], 1)), True)  # the updated D
        expected_l1 = 100 * (fake - batch["B"]).abs().mean()
    torch.testing.assert_close(g_phase.losses["G_GAN"].detach(), expected_gan)
    torch.testing.assert_close(g_phase.losses["G_L1"].detach(), expected_l1)
    sum(g_phase.losses.values()).backward()
    assert all(p.grad is None for p in m.D.parameters())  # D frozen in the G phase
    assert all(p.grad is not None for p in m.G.parameters())
    with pytest.raises(StopIteration):
        next(steps)
    assert all(p.requires_grad for p in m.D.parameters())  # unfrozen afterwards


def test_few_steps_on_the_bundled_pairs_lower_the_l1_on_a_fixed_batch(facades, train_steps):
    torch.manual_seed(0)
    m = build_method("pix2pix", netG="unet_64", ngf=8, ndf=8)
    # a higher rate than the paper's 2e-4 so that 10 steps of a random init move clearly
    opts = build_optimizers(m, {"lr": 1e-3, "betas": [0.5, 0.999], "weight_decay": 0.0})
    fixed = _paired_batch(facades, "train", 4)  # label maps -> photos

    def l1():
        with torch.no_grad():
            return F.l1_loss(m.eval().translate(fixed["A"], dropout=False), fixed["B"]).item()

    curve = [l1()]
    for _ in range(10):
        m.train()
        (logs,), _ = train_steps(m, fixed, 1, optimizers=opts)  # one step, then the L1 above
        curve.append(l1())
    assert set(logs) == {"D_fake", "D_real", "G_GAN", "G_L1"}
    assert curve[-1] < 0.92 * curve[0], curve
    assert sum(b < a for a, b in zip(curve, curve[1:])) >= 8, curve  # falls nearly every step


def test_channels_last_gives_the_same_step_and_outputs(facades):
    batch = _paired_batch(facades, "train", 2)
    runs = []
    for cl in (False, True):
        torch.manual_seed(0)
        m = build_method("pix2pix", netG="unet_64", ngf=8, ndf=8, dropout=False, channels_last=cl)
        grads = []
        for phase in m.training_step(batch):
            sum(phase.losses.values()).backward()
            grads.append(torch.cat([p.grad.flatten() for p in
                                    (m.D if phase.optimizer == "D" else m.G).parameters()]))
        with torch.no_grad():
            out = m.eval().translate(batch["A"])
        runs.append((grads, out))
    (g0, y0), (g1, y1) = runs
    assert y1.is_contiguous()
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)
    for a, b in zip(g0, g1):
        assert (a - b).norm() <= 1e-4 * a.norm()  # the same gradients up to summation order
    with pytest.raises(ConfigError, match="channels_last"):
        build_method("pix2pix", norm="instance", channels_last=True)


def test_presets_resolve_to_official_defaults():
    cfg = C.resolve("pix2pix-facades")
    m, d, t = cfg["model"], cfg["data"], cfg["train"]
    assert (m["netG"], m["netD"], m["norm"], m["gan_mode"], m["lambda_L1"], m["dropout"]) == \
        ("unet_256", "basic", "batch", "vanilla", 100.0, True)
    assert d["dataset"] == "paired_ab" and d["direction"] == m["direction"] == "BtoA"  # labels -> photo
    assert (d["load_size"], d["crop_size"], d["batch_size"]) == (286, 256, 1)
    assert (t["lr"], t["betas"], t["epochs"], t["epochs_decay"]) == (2e-4, [0.5, 0.999], 100, 100)
    assert C.resolve("tiny/pix2pix", overrides=["data.direction=AtoB"])["model"]["direction"] == "AtoB"
    with pytest.raises(ConfigError, match="data.direction"):
        C.resolve("pix2pix-facades", overrides=["model.direction=AtoB"])
    with pytest.raises(ConfigError, match="unet_"):
        build_method("pix2pix", netG="unet_100")


def test_tiny_preset_trains_on_the_bundled_facades_and_translates_labels(tmp_path, facades):
    from styleforge.training.trainer import Trainer

    cfg = C.resolve("tiny/pix2pix", overrides=[f"data.root={facades}", "train.steps=2",
                                               "train.steps_decay=0"])
    model_dir = Trainer(cfg, tmp_path / "run").fit()
    pipe = styleforge.load(model_dir)
    assert pipe.directions == ("BtoA",)
    with Image.open(sorted((facades / "test").glob("*.jpg"))[0]) as im:
        label = im.convert("RGB").crop((128, 0, 256, 128)).resize((100, 70))
    out = pipe(label)  # any size: padded to a multiple of 64 and cropped back
    assert out.size == (100, 70)
