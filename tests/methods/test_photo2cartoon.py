"""Photo2Cartoon: official parameter counts and key layout, import of the authors' checkpoint
layout (photo2cartoon_weights.pt / *_params_*.pt) with their outputs (``styleforge import``),
the face-ID loss wiring, rho / Soft-AdaLIN clipping, presets."""
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from styleforge.checkpoint import load_model, save_model
from styleforge.cli import main
from styleforge.data.images import list_images, load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.photo2cartoon import Photo2Cartoon, import_photo2cartoon
from styleforge.nn.discriminators import UGATITDiscriminator
from styleforge.nn.mobilefacenet import load_mobilefacenet
from styleforge.registry import build_method
from styleforge.training.trainer import build_optimizers, run_phases

# Parameter counts of the authors' networks (minivision-ai/photo2cartoon, models/networks.py at
# commit 6204e27), obtained by building their ResnetGenerator(ngf=ch, img_size, light) and
# Discriminator(3, ndf=ch, n_layers=7 / 5) on the meta device and summing p.numel() over
# .parameters(); each generator state dict has 406 entries. The same numbers follow from the
# layer list written out in official_generator_shapes below (checked in the test).
OFFICIAL_G = {  # (ch, img_size, light) -> one generator
    (32, 256, True): 3_831_079,  # the released model (test.py: ngf=32, img_size=256, light=True)
    (32, 256, False): 70_923_559,
    (64, 256, True): 15_291_527,
    (4, 96, True): 62_027,
    (4, 96, False): 209_227,
}
OFFICIAL_G_KEYS = 406
OFFICIAL_D = {  # ch -> (global, 7 layers), (local, 5 layers); spectral norm: weight_orig + bias
    32: (13_294_048, 826_080),
    4: (210_236, 13_660),
}
OPT = {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/methods/conftest.py


# ---- the authors' layout, written out from their layer lists --------------------------
def _conv_block(p, c):
    """Their ConvBlock(c, c): IN, ReLU, pad, conv (index 3) x3 giving c/2, c/4, c/4; the 1x1
    projection ConvBlock4 (IN, ReLU, conv at index 2) is built even when unused."""
    return {f"{p}.ConvBlock1.3.weight": (c // 2, c, 3, 3), f"{p}.ConvBlock2.3.weight": (c // 4, c // 2, 3, 3),
            f"{p}.ConvBlock3.3.weight": (c // 4, c // 4, 3, 3), f"{p}.ConvBlock4.2.weight": (c, c, 1, 1)}


def _hourglass(p, c, use_res):
    """Their HourGlass: HG = [HourGlassBlock (ConvBlock1_1, 1_2, ..., 4_2, 5..9), ConvBlock,
    1x1 conv (no bias), IN, ReLU]; Conv1 (-> 3, bias); with use_res Conv2 (c -> c), Conv3 (3 -> c)."""
    s = {}
    for name in ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "4_1", "4_2", "5", "6", "7", "8", "9"):
        s |= _conv_block(f"{p}.HG.0.ConvBlock{name}", c)
    s |= _conv_block(f"{p}.HG.1", c)
    s |= {f"{p}.HG.2.weight": (c, c, 1, 1), f"{p}.Conv1.weight": (3, c, 1, 1), f"{p}.Conv1.bias": (3,)}
    if use_res:
        s |= {f"{p}.Conv2.weight": (c, c, 1, 1), f"{p}.Conv2.bias": (c,),
              f"{p}.Conv3.weight": (c, 3, 1, 1), f"{p}.Conv3.bias": (c,)}
    return s


def _soft_adalin(p, c):
    s = {f"{p}.w_gamma": (1, c), f"{p}.w_beta": (1, c), f"{p}.norm.rho": (1, c, 1, 1)}
    for mlp in ("c_gamma", "c_beta"):
        for i in (0, 2):
            s |= {f"{p}.{mlp}.{i}.weight": (c, c), f"{p}.{mlp}.{i}.bias": (c,)}
    for lin in ("s_gamma", "s_beta"):
        s |= {f"{p}.{lin}.weight": (c, c), f"{p}.{lin}.bias": (c,)}
    return s


def official_generator_shapes(ch, img_size, light):
    """Key -> shape of their ResnetGenerator state dict, in their registration order."""
    c = 4 * ch
    s = {"ConvBlock1.1.weight": (ch, 3, 7, 7)}
    s |= _hourglass("HourGlass1", ch, True) | _hourglass("HourGlass2", ch, True)
    s |= {"DownBlock1.1.weight": (2 * ch, ch, 3, 3), "DownBlock2.1.weight": (c, 2 * ch, 3, 3)}
    for k in range(1, 5):
        s |= {f"EncodeBlock{k}.conv_block.1.weight": (c, c, 3, 3),
              f"EncodeBlock{k}.conv_block.5.weight": (c, c, 3, 3)}
    s |= {"gap_fc.weight": (1, c), "gap_fc.bias": (1,), "gmp_fc.weight": (1, c), "gmp_fc.bias": (1,),
          "conv1x1.weight": (c, 2 * c, 1, 1), "conv1x1.bias": (c,),
          "FC.0.weight": (c, c if light else (img_size // 4) ** 2 * c), "FC.0.bias": (c,),
          "FC.2.weight": (c, c), "FC.2.bias": (c,)}
    for k in range(1, 5):
        s[f"DecodeBlock{k}.conv1.weight"] = (c, c, 3, 3)
        s |= _soft_adalin(f"DecodeBlock{k}.norm1", c)
        s[f"DecodeBlock{k}.conv2.weight"] = (c, c, 3, 3)
        s |= _soft_adalin(f"DecodeBlock{k}.norm2", c)
    for k, cin in ((1, c), (2, 2 * ch)):  # upsample, pad, conv, LIN, ReLU
        s[f"UpBlock{k}.2.weight"] = (cin // 2, cin, 3, 3)
        s |= {f"UpBlock{k}.3.{q}": (1, cin // 2, 1, 1) for q in ("rho", "gamma", "beta")}
    s |= _hourglass("HourGlass3", ch, True) | _hourglass("HourGlass4", ch, False)
    s["ConvBlock2.1.weight"] = (3, 3, 7, 7)
    return s


def table_param_count(shapes):
    return sum(int(torch.tensor(v).prod()) for v in shapes.values())


@pytest.mark.parametrize("ch,img_size,light", list(OFFICIAL_G))
def test_parameter_counts_equal_official(ch, img_size, light):
    with torch.device("meta"):
        m = Photo2Cartoon(light=light, img_size=img_size, ch=ch)
    counts = m.parameter_counts()
    assert counts["genA2B"] == counts["genB2A"] == OFFICIAL_G[(ch, img_size, light)]
    shapes = official_generator_shapes(ch, img_size, light)
    assert len(shapes) == OFFICIAL_G_KEYS and table_param_count(shapes) == counts["genA2B"]
    if ch in OFFICIAL_D:
        assert (counts["disGA"], counts["disLA"]) == (counts["disGB"], counts["disLB"]) == OFFICIAL_D[ch]


@pytest.mark.parametrize("light", [False, True])
def test_state_dict_keys_order_and_shapes_equal_the_official_layout(light):
    g = Photo2Cartoon(light=light, img_size=32, ch=4).genA2B
    got = [(k, tuple(v.shape)) for k, v in g.state_dict().items()]
    assert got == list(official_generator_shapes(4, 32, light).items())


# ---- a reference forward, written from their ResnetGenerator.forward ----------------------
def random_official_state(shapes, g):
    sd = {}
    for k, shape in shapes.items():
        if k.endswith(("rho", "w_gamma", "w_beta")):
            t = torch.rand(*shape, generator=g)  # in [0, 1], as their clippers keep them
        elif k.endswith("3.gamma"):
            t = 1 + 0.2 * torch.randn(*shape, generator=g)
        else:
            t = 0.2 * torch.randn(*shape, generator=g)
        sd[k] = t
    return sd


def ref_lin(x, rho, gamma, beta, eps=1e-5):
    out_in = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), keepdim=True) + eps)
    out_ln = (x - x.mean((1, 2, 3), keepdim=True)) / torch.sqrt(x.var((1, 2, 3), keepdim=True) + eps)
    return (rho * out_in + (1 - rho) * out_ln) * gamma + beta


def ref_generator(sd, x, light):
    pad = lambda t, p: F.pad(t, (p,) * 4, mode="reflect")
    inorm = lambda t: F.instance_norm(t, eps=1e-5)
    lin = lambda t, p: t @ sd[f"{p}.weight"].t() + sd[f"{p}.bias"]
    pre = lambda t: F.relu(inorm(t))

    def conv_block(p, t):
        t1 = F.conv2d(pad(pre(t), 1), sd[f"{p}.ConvBlock1.3.weight"])
        t2 = F.conv2d(pad(pre(t1), 1), sd[f"{p}.ConvBlock2.3.weight"])
        t3 = F.conv2d(pad(pre(t2), 1), sd[f"{p}.ConvBlock3.3.weight"])
        return t + torch.cat([t1, t2, t3], 1)  # widths equal: ConvBlock4 is not used

    def hourglass(p, t, use_res):
        h, skips = t, []
        for k in range(1, 5):
            skips.append(conv_block(f"{p}.HG.0.ConvBlock{k}_1", h))
            h = conv_block(f"{p}.HG.0.ConvBlock{k}_2", F.avg_pool2d(h, 2))
        h = conv_block(f"{p}.HG.0.ConvBlock5", h)
        for k, skip in zip(range(6, 10), reversed(skips)):
            h = skip + F.interpolate(conv_block(f"{p}.HG.0.ConvBlock{k}", h), scale_factor=2, mode="nearest")
        h = F.relu(inorm(F.conv2d(conv_block(f"{p}.HG.1", h), sd[f"{p}.HG.2.weight"])))
        tmp = F.conv2d(h, sd[f"{p}.Conv1.weight"], sd[f"{p}.Conv1.bias"])
        if not use_res:
            return tmp
        return (t + F.conv2d(h, sd[f"{p}.Conv2.weight"], sd[f"{p}.Conv2.bias"])
                + F.conv2d(tmp, sd[f"{p}.Conv3.weight"], sd[f"{p}.Conv3.bias"]))

    def soft_adalin(p, t, content, style):
        cg = lin(F.relu(lin(content, f"{p}.c_gamma.0")), f"{p}.c_gamma.2")
        cb = lin(F.relu(lin(content, f"{p}.c_beta.0")), f"{p}.c_beta.2")
        wg, wb = sd[f"{p}.w_gamma"], sd[f"{p}.w_beta"]
        gamma = (1 - wg) * lin(style, f"{p}.s_gamma") + wg * cg
        beta = (1 - wb) * lin(style, f"{p}.s_beta") + wb * cb
        return ref_lin(t, sd[f"{p}.norm.rho"], gamma[:, :, None, None], beta[:, :, None, None])

    h = pre(F.conv2d(pad(x, 3), sd["ConvBlock1.1.weight"]))
    h = hourglass("HourGlass2", hourglass("HourGlass1", h, True), True)
    for k in (1, 2):
        h = pre(F.conv2d(pad(h, 1), sd[f"DownBlock{k}.1.weight"], stride=2))
    content = []
    for k in range(1, 5):
        p = f"EncodeBlock{k}.conv_block"
        h = h + inorm(F.conv2d(pad(pre(F.conv2d(pad(h, 1), sd[f"{p}.1.weight"])), 1), sd[f"{p}.5.weight"]))
        content.append(h.mean((2, 3)))
    n = h.shape[0]
    cam = torch.cat([lin(F.adaptive_avg_pool2d(h, 1).view(n, -1), "gap_fc"),
                     lin(F.adaptive_max_pool2d(h, 1).view(n, -1), "gmp_fc")], 1)
    h = torch.cat([h * sd["gap_fc.weight"][:, :, None, None], h * sd["gmp_fc.weight"][:, :, None, None]], 1)
    h = F.relu(F.conv2d(h, sd["conv1x1.weight"], sd["conv1x1.bias"]))
    heat = h.sum(1, keepdim=True)
    v = h.mean((2, 3)) if light else h.flatten(1)
    style = F.relu(lin(F.relu(lin(v, "FC.0")), "FC.2"))
    for k in range(1, 5):
        p = f"DecodeBlock{k}"
        t = F.relu(soft_adalin(f"{p}.norm1", F.conv2d(pad(h, 1), sd[f"{p}.conv1.weight"]), content[4 - k], style))
        h = h + soft_adalin(f"{p}.norm2", F.conv2d(pad(t, 1), sd[f"{p}.conv2.weight"]), content[4 - k], style)
    for k in (1, 2):
        h = F.conv2d(pad(F.interpolate(h, scale_factor=2, mode="nearest"), 1), sd[f"UpBlock{k}.2.weight"])
        h = F.relu(ref_lin(h, *(sd[f"UpBlock{k}.3.{q}"] for q in ("rho", "gamma", "beta"))))
    h = hourglass("HourGlass4", hourglass("HourGlass3", h, True), False)
    return torch.tanh(F.conv2d(pad(h, 3), sd["ConvBlock2.1.weight"])), cam, heat


def real_image(folder, size, i=0):
    return to_tensor(load_rgb(list_images(folder)[i]).resize((size, size), Image.BICUBIC))[None]


def write_official_checkpoint(path, ch, img_size, light, seed=0, networks=("genA2B", "genB2A", "disGA",
                                                                           "disGB", "disLA", "disLB")):
    """Their layout: torch.save of a dict of state dicts (train.py's save(); the released
    photo2cartoon_weights.pt is read the same way, genA2B by test.py and all six by train.py's
    --pretrained_weights). Generators: random tensors from the table above; discriminators:
    randomly initialised U-GAT-IT discriminators (their Discriminator, checked in test_ugatit)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = {}
    for name in networks:
        if name.startswith("gen"):
            params[name] = random_official_state(official_generator_shapes(ch, img_size, light), g)
        else:
            params[name] = UGATITDiscriminator(3, ch, 7 if name.startswith("disG") else 5).state_dict()
    torch.save(params, path)
    return params


@pytest.mark.parametrize("light", [False, True])
def test_import_official_checkpoint_gives_their_outputs(tmp_path, h2z, light):
    params = write_official_checkpoint(tmp_path / "photo2cartoon_weights.pt", 4, 32, light)
    m = import_photo2cartoon(tmp_path / "photo2cartoon_weights.pt")
    assert {k: m.config[k] for k in ("light", "ch", "n_dis_global", "n_dis_local")} == \
        {"light": light, "ch": 4, "n_dis_global": 7, "n_dis_local": 5}
    assert light or m.config["img_size"] == 32
    for name in ("disGA", "disLB"):  # loaded too, for further training
        assert all(torch.equal(v, params[name][k]) for k, v in getattr(m, name).state_dict().items())
    with torch.no_grad():
        for x, direction, net in ((real_image(h2z / "testA", 32), "AtoB", "genA2B"),
                                  (real_image(h2z / "testB", 32), "BtoA", "genB2A")):
            y, heat = m.translate(x, direction, return_heatmap=True)
            ry, _, rheat = ref_generator(params[net], x, light)
            assert y.shape == x.shape and heat.shape == (1, 1, 8, 8)
            # float32: equal up to rounding (the summation order differs: fused CAM conv, LIN),
            # which 20-odd hourglass blocks of random weights amplify to ~1e-4 ...
            assert torch.allclose(y, ry, atol=2e-3) and torch.allclose(heat, rheat, rtol=1e-3, atol=1e-3)
            # ... so the exact check is in float64
            y64, heat64 = m.double().translate(x.double(), direction, return_heatmap=True)
            ry64, _, rheat64 = ref_generator({k: v.double() for k, v in params[net].items()}, x.double(), light)
            assert torch.allclose(y64, ry64, rtol=0, atol=1e-10), (y64 - ry64).abs().max()
            assert torch.allclose(heat64, rheat64, rtol=1e-10, atol=1e-10)
            m.float()


def test_cli_import_of_a_generator_only_file_translates_like_theirs(tmp_path, h2z, capsys):
    params = write_official_checkpoint(tmp_path / "w.pt", 4, 32, True, seed=3, networks=("genA2B",))
    out = tmp_path / "model"
    assert main(["import", "photo2cartoon", str(tmp_path / "w.pt"), str(out)]) == 0
    assert "directions: AtoB)" in capsys.readouterr().out
    import styleforge

    pipe = styleforge.load(out)
    assert pipe.directions == ("AtoB",) and pipe.method.inference_modules == ("genA2B",)
    x = real_image(h2z / "testA", 32, 1)
    assert torch.allclose(pipe(x), ref_generator(params["genA2B"], x, True)[0], atol=2e-3)
    pipe.method.double()
    y64 = pipe.method.translate(x.double())
    assert torch.allclose(y64, ref_generator({k: v.double() for k, v in params["genA2B"].items()},
                                             x.double(), True)[0], rtol=0, atol=1e-10)
    pipe.method.float()
    # any size: padded to a multiple of 16 (the hourglasses pool four times) and cropped back
    assert pipe(torch.zeros(1, 3, 40, 52)).shape == (1, 3, 40, 52)
    with pytest.raises(ConfigError, match="translates AtoB"):
        pipe(x, "BtoA")


def test_import_rejects_wrong_files_with_one_line(tmp_path, capsys):
    ug = build_method("ugatit", light=True, ch=4, n_res=1)
    torch.save({"genA2B": ug.genA2B.state_dict(), "genB2A": ug.genB2A.state_dict()}, tmp_path / "ug.pt")
    with pytest.raises(CheckpointError, match="not a Photo2Cartoon generator.*import ugatit"):
        import_photo2cartoon(tmp_path / "ug.pt")
    torch.save(Photo2Cartoon(img_size=32, ch=4).genA2B.state_dict(), tmp_path / "bare.pt")
    assert main(["import", "photo2cartoon", str(tmp_path / "bare.pt"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "bare generator state dict" in err
    assert not (tmp_path / "out").exists()
    params = write_official_checkpoint(tmp_path / "p.pt", 4, 32, True, networks=("genA2B", "genB2A"))
    params["genB2A"]["DecodeBlock2.norm1.w_gamma"] = torch.zeros(1, 8)
    torch.save(params, tmp_path / "p.pt")
    with pytest.raises(CheckpointError, match="genB2A does not match.*DecodeBlock2.norm1.w_gamma"):
        import_photo2cartoon(tmp_path / "p.pt")


# ---- training ------------------------------------------------------------------------------
def real_batch(h2z, size=32):
    return {"A": real_image(h2z / "trainA", size), "B": real_image(h2z / "trainB", size)}


def their_cosine_distance(net, a, b):
    """FaceFeatures.cosine_distance of their models/face_features.py, written out."""
    def infer(t):
        h, w = t.shape[2:]
        top, bottom = int(h / 2.1 * (0.8 - 0.33)), int(h - (h / 2.1 * 0.3))
        left = int(w / 2 - (bottom - top) / 2)
        t = t[:, :, top:bottom, left:left + bottom - top]
        return net(F.interpolate(t, size=[112, 112], mode="bilinear", align_corners=True))

    return 1 - torch.cosine_similarity(infer(a), infer(b))


def test_step_adds_the_face_id_loss_of_each_photo_and_its_translation(h2z, facenet_file):
    torch.manual_seed(0)
    m = build_method("photo2cartoon", img_size=32, ch=4, n_dis_global=5, n_dis_local=4,
                     facenet_weights=str(facenet_file), faceid_weight=2.0)
    opts = build_optimizers(m, OPT)
    batch = real_batch(h2z)
    net = load_mobilefacenet(facenet_file)
    seen = []
    for ph in m.training_step(batch):
        seen.append((ph.optimizer, sorted(ph.losses), ph.step))
        if ph.optimizer == "G" and any(k.startswith("faceid") for k in ph.losses):
            src = "A" if "faceid_A" in ph.losses else "B"
            g = m.genA2B if src == "A" else m.genB2A
            with torch.no_grad():
                expected = 2.0 * their_cosine_distance(net, batch[src], g(batch[src])[0]).mean()
            assert ph.losses[f"faceid_{src}"].item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)
            assert ph.losses[f"faceid_{src}"].requires_grad
        sum(ph.losses.values()).backward()
        if ph.step:
            opts[ph.optimizer].step()
            opts[ph.optimizer].zero_grad(set_to_none=True)
            m.after_step(ph.optimizer)
    assert seen == [
        ("D", ["D_A_adv", "D_A_adv_cam"], False), ("D", ["D_B_adv", "D_B_adv_cam"], True),
        ("G", ["G_A2B_adv", "G_A2B_adv_cam", "G_A2B_cam", "cycle_A", "faceid_A"], False),
        ("G", ["G_B2A_adv", "G_B2A_adv_cam", "G_B2A_cam", "cycle_B", "faceid_B"], False),
        ("G", ["G_A2A_cam", "G_B2B_cam", "idt_A", "idt_B"], True)]
    # the recognition network is frozen and outside the model: not saved, not optimised
    assert not any("facenet" in k for k in m.state_dict())
    fn = m.__dict__["_facenet"]
    ids = {id(p) for group in opts.values() for pg in group.param_groups for p in pg["params"]}
    assert not any(id(p) in ids or p.requires_grad for p in fn.parameters())


def test_face_id_weights_missing_is_a_clear_error_and_weight_zero_trains_without(h2z, tmp_path):
    m = build_method("photo2cartoon", img_size=32, ch=4, n_dis_global=5, n_dis_local=4)
    with pytest.raises(ConfigError, match="model_mobilefacenet.pth.*faceid_weight=0"):
        m.optimizer_groups()
    with pytest.raises(CheckpointError, match="not found"):
        build_method("photo2cartoon", img_size=32, ch=4, facenet_weights=str(tmp_path / "x.pth")).optimizer_groups()
    m = build_method("photo2cartoon", img_size=32, ch=4, n_dis_global=5, n_dis_local=4, faceid_weight=0)
    logs = run_phases(m, build_optimizers(m, OPT), real_batch(h2z))
    assert logs and not any(k.startswith("faceid") for k in logs)


def test_rho_and_soft_adalin_weights_are_clipped_after_generator_steps(h2z):
    torch.manual_seed(0)
    m = build_method("photo2cartoon", img_size=32, ch=4, n_dis_global=5, n_dis_local=4, faceid_weight=0,
                     w_clip=0.5)
    clipped = {n: p for n, p in m.named_parameters() if n.endswith(("rho", "w_gamma", "w_beta"))}
    # per generator: 4 blocks x 2 Soft-AdaLIN x (rho, w_gamma, w_beta) + 2 LIN rho
    assert len(clipped) == 2 * (4 * 2 * 3 + 2)
    assert all(torch.all(p == 0) for n, p in clipped.items() if n.endswith(("w_gamma", "w_beta")))
    with torch.no_grad():
        for i, p in enumerate(clipped.values()):
            p.fill_(1.7 if i % 2 else -0.4)
    run_phases(m, build_optimizers(m, OPT), real_batch(h2z))
    for i, (n, p) in enumerate(clipped.items()):
        hi = 0.5 if n.endswith(("w_gamma", "w_beta")) else 1.0  # their WClipper(0, w_clipper)
        assert torch.all(p == (hi if i % 2 else 0.0)), n


def test_save_load_round_trip_and_input_sizes(tmp_path, h2z):
    torch.manual_seed(0)
    m = Photo2Cartoon(img_size=32, ch=4).eval()
    save_model(tmp_path / "model", m)
    again = load_model(tmp_path / "model")
    assert again.config == m.config
    x = real_image(h2z / "testA", 32)
    with torch.no_grad():
        for d in ("AtoB", "BtoA"):
            assert torch.equal(m.translate(x, d), again.translate(x, d))
    with pytest.raises(ConfigError, match="multiples of 16"):
        m.translate(torch.zeros(1, 3, 40, 48))
    with pytest.raises(ConfigError, match="multiple of 16"):
        Photo2Cartoon(img_size=40)


def test_presets_resolve_to_official_defaults():
    from styleforge import config as C

    cfg = C.resolve("photo2cartoon")
    assert cfg["method"] == "photo2cartoon"
    # their train.py defaults
    assert {k: cfg["model"][k] for k in ("light", "img_size", "ch", "n_dis_global", "n_dis_local", "adv_weight",
                                         "cycle_weight", "identity_weight", "cam_weight", "faceid_weight",
                                         "rho_clip", "w_clip")} == \
        {"light": True, "img_size": 256, "ch": 32, "n_dis_global": 7, "n_dis_local": 5, "adv_weight": 1.0,
         "cycle_weight": 50.0, "identity_weight": 10.0, "cam_weight": 1000.0, "faceid_weight": 1.0,
         "rho_clip": 1.0, "w_clip": 1.0}
    t, d = cfg["train"], cfg["data"]
    assert (t["lr"], t["betas"], t["weight_decay"]) == (1e-4, [0.5, 0.999], 1e-4)
    assert t["steps"] + t["steps_decay"] == 1_000_000 and t["steps"] == t["steps_decay"]
    # Resize(img_size + 30), RandomCrop(img_size), RandomHorizontalFlip
    assert (d["load_size"], d["crop_size"], d["flip"], d["batch_size"]) == (286, 256, True, 1)
