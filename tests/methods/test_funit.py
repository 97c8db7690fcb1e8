"""FUNIT: official parameter counts, the authors' checkpoint layout and outputs, K-shot class codes,
the training step on real class folders, class-code t-SNE and interpolation."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import styleforge
from styleforge.checkpoint import save_model
from styleforge.data.datasets import ClassFolderDataset
from styleforge.data.transforms import Transform
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.funit import FUNIT, dataset_class_codes, fewshot_translate, import_funit, interpolate_classes
from styleforge.metrics.codes import interpolate_codes, load_codes, save_codes, tsne_embedding, tsne_plot

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(nf=4, nf_mlp=8, latent_dim=6, n_mlp_blks=3, n_res_blks=2, n_downs_content=2,
            n_downs_class=3, dis_nf=4, dis_n_res_blks=4, num_classes=4, class_image_size=32)


def tiny(**kw) -> FUNIT:
    torch.manual_seed(0)
    return FUNIT(**{**TINY, **kw})


def load_images(paths, size=32) -> torch.Tensor:
    arrs = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BICUBIC),
                       np.float32) for p in paths]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 127.5 - 1


@pytest.fixture(scope="module")
def animals():
    return Path(__file__).resolve().parents[2] / "data" / "animals"


def test_parameter_counts_equal_the_authors_animal_faces_networks():
    # counted on NVlabs/FUNIT's FewShotGen / GPPatchMcResDis built from configs/funit_animals.yaml
    with torch.device("meta"):
        m = FUNIT(init="default")
    counts = m.parameter_counts()
    assert counts["gen"] == counts["gen_test"] == 29_866_435
    assert counts["dis"] == 54_252_599
    assert sum(p.numel() for p in m.gen.enc_class_model.parameters()) == 2_779_328
    assert sum(p.numel() for p in m.gen.mlp.parameters()) == 1_135_104


# ---- the authors' checkpoint: official key names and shapes, their arithmetic in the test ----
def official_gen_state(nf=4, nf_mlp=8, latent=6, n_mlp=3, n_res=2, downs_content=2, downs_class=3, seed=0):
    """A random generator state dict laid out as NVlabs/FUNIT saves ``gen``: every key and shape of
    their FewShotGen, including the dummy AdaIN running statistics of their decoder."""
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def conv(key, cin, cout, k, bias=True):
        sd[f"{key}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (1.5 / (cin * k * k) ** 0.5)
        if bias:
            sd[f"{key}.bias"] = torch.randn(cout, generator=g) * 0.1

    conv("enc_class_model.model.0.conv", 3, nf, 7)
    dim = nf
    for i in range(2):
        conv(f"enc_class_model.model.{1 + i}.conv", dim, 2 * dim, 4)
        dim *= 2
    for i in range(downs_class - 2):
        conv(f"enc_class_model.model.{3 + i}.conv", dim, dim, 4)
    conv(f"enc_class_model.model.{downs_class + 2}", dim, latent, 1)
    conv("enc_content.model.0.conv", 3, nf, 7)
    dim = nf
    for i in range(downs_content):
        conv(f"enc_content.model.{1 + i}.conv", dim, 2 * dim, 4)
        dim *= 2
    for b in range(n_res):
        for j in range(2):
            conv(f"enc_content.model.{downs_content + 1}.model.{b}.model.{j}.conv", dim, dim, 3)
    n_adain = 0
    for b in range(n_res):
        for j in range(2):
            conv(f"dec.model.0.model.{b}.model.{j}.conv", dim, dim, 3)
            sd[f"dec.model.0.model.{b}.model.{j}.norm.running_mean"] = torch.zeros(dim)
            sd[f"dec.model.0.model.{b}.model.{j}.norm.running_var"] = torch.ones(dim)
            n_adain += 2 * dim
    for i in range(downs_content):
        conv(f"dec.model.{2 + 2 * i}.conv", dim, dim // 2, 5)
        dim //= 2
    conv(f"dec.model.{1 + 2 * downs_content}.conv", dim, 3, 7)
    dims = [latent] + [nf_mlp] * (n_mlp - 1) + [n_adain]
    for i in range(n_mlp):
        sd[f"mlp.model.{i}.fc.weight"] = torch.randn(dims[i + 1], dims[i], generator=g) / dims[i] ** 0.5
        sd[f"mlp.model.{i}.fc.bias"] = torch.randn(dims[i + 1], generator=g) * 0.1 + (1.0 if i == n_mlp - 1 else 0)
    return sd


def ref_conv(x, sd, key, stride=1, pad=0, norm=None, act=None):
    x = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect") if pad else x, sd[f"{key}.weight"], sd.get(f"{key}.bias"), stride)
    if norm == "in":
        x = F.instance_norm(x)
    return torch.relu(x) if act == "relu" else torch.tanh(x) if act == "tanh" else x


def reference_generator(sd, x, class_images, downs_content=2, downs_class=3, n_res=2, n_mlp=3):
    """The authors' FewShotGen.forward written out with functional ops: content code of x, class
    codes of the K images averaged, MLP -> AdaIN (beta then gamma per layer), decoder."""
    c = ref_conv(x, sd, "enc_content.model.0.conv", pad=3, norm="in", act="relu")
    for i in range(downs_content):
        c = ref_conv(c, sd, f"enc_content.model.{1 + i}.conv", 2, 1, "in", "relu")
    for b in range(n_res):
        k = f"enc_content.model.{downs_content + 1}.model.{b}.model"
        c = c + ref_conv(ref_conv(c, sd, f"{k}.0.conv", 1, 1, "in", "relu"), sd, f"{k}.1.conv", 1, 1, "in")
    s = ref_conv(class_images, sd, "enc_class_model.model.0.conv", pad=3, act="relu")
    for i in range(downs_class):
        s = ref_conv(s, sd, f"enc_class_model.model.{1 + i}.conv", 2, 1, act="relu")
    s = ref_conv(s.mean((2, 3), keepdim=True), sd, f"enc_class_model.model.{downs_class + 2}")
    h = s.mean(0).flatten()[None]
    for i in range(n_mlp):
        h = F.linear(h, sd[f"mlp.model.{i}.fc.weight"], sd[f"mlp.model.{i}.fc.bias"])
        h = torch.relu(h) if i < n_mlp - 1 else h
    params = h.expand(x.shape[0], -1)
    y, off = c, 0
    for b in range(n_res):
        inp = y
        for j in range(2):
            k = f"dec.model.0.model.{b}.model.{j}.conv"
            y = F.conv2d(F.pad(y, (1,) * 4, mode="reflect"), sd[f"{k}.weight"], sd[f"{k}.bias"])
            ch = y.shape[1]
            beta, gamma = params[:, off:off + ch], params[:, off + ch:off + 2 * ch]
            off += 2 * ch
            mu, var = y.mean((2, 3), keepdim=True), y.var((2, 3), keepdim=True, unbiased=False)
            y = (y - mu) / torch.sqrt(var + 1e-5) * gamma[:, :, None, None] + beta[:, :, None, None]
            y = torch.relu(y) if j == 0 else y
        y = inp + y
    for i in range(downs_content):
        y = ref_conv(F.interpolate(y, scale_factor=2, mode="nearest"), sd, f"dec.model.{2 + 2 * i}.conv", 1, 2, "in", "relu")
    return ref_conv(y, sd, f"dec.model.{1 + 2 * downs_content}.conv", pad=3, act="tanh")


def test_import_of_the_authors_checkpoint_gives_their_outputs(tmp_path, animals):
    gen, gen_test = official_gen_state(seed=1), official_gen_state(seed=2)
    path = tmp_path / "gen_00100000.pt"
    torch.save({"gen": gen, "gen_test": gen_test}, path)
    m = import_funit(path, num_classes=4, class_image_size=32)
    assert m.config["nf"] == 4 and m.config["latent_dim"] == 6 and m.config["n_downs_class"] == 3
    x = load_images(sorted((animals / "dog").glob("*.jpg"))[:2])
    ys = load_images(sorted((animals / "cat").glob("*.jpg"))[:3])
    with torch.no_grad():
        want = reference_generator(gen_test, x, ys)
        got = m.translate(x, class_images=ys)  # inference runs gen_test
        assert want.std() > 0.05
        assert torch.allclose(got, want, atol=2e-5), (got - want).abs().max()
        assert torch.allclose(m.gen(x, ys), reference_generator(gen, x, ys), atol=2e-5)
    # through a saved model directory and the pipeline's declared K-image input
    save_model(tmp_path / "model", m)
    pipe = styleforge.load(tmp_path / "model")
    out = pipe(x, class_images=ys)
    assert torch.allclose(torch.as_tensor(out), want, atol=2e-5)


def test_import_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="gen"):
        import_funit(bad)
    sd = official_gen_state()
    sd.pop("mlp.model.0.fc.weight")
    torch.save({"gen": sd, "gen_test": sd}, bad)
    with pytest.raises(CheckpointError, match="FUNIT generator"):
        import_funit(bad)
    with pytest.raises(CheckpointError, match="not found"):
        import_funit(tmp_path / "missing.pt")


# ---- K-shot class codes ------------------------------------------------------------------------
def test_class_code_is_the_mean_over_the_k_images_whatever_their_order(animals):
    m = tiny().eval()
    x = load_images(sorted((animals / "dog").glob("*.jpg"))[:1])
    cats = load_images(sorted((animals / "cat").glob("*.jpg"))[:4])
    wild = load_images(sorted((animals / "wild").glob("*.jpg"))[:4])
    with torch.no_grad():
        y = m.translate(x, class_images=cats)
        for perm in ([3, 2, 1, 0], [1, 3, 0, 2]):
            # the same up to float32 summation order of the mean (~1e-7 in the code, a few 1e-6
            # after the decoder); another K or class moves the output by > 1e-4 (below)
            assert torch.allclose(m.translate(x, class_images=cats[perm]), y, atol=2e-5)
        z = m.class_codes(cats)
        assert z.shape == (4, 6)
        assert torch.allclose(m.decode_code(x, z.mean(0, keepdim=True)), y, atol=1e-6)
        assert (m.translate(x, class_images=wild) - y).abs().max() > 1e-3  # the class matters
        assert (m.translate(x, class_images=cats[:1]) - y).abs().max() > 1e-4  # so does K
    with pytest.raises(ConfigError, match="class_images"):
        m.translate(x)
    [inp] = [i for i in m.inference_inputs() if i.name == "class_images"]
    assert inp.kind == "images" and inp.size == 32 and inp.min == 1 and inp.required


def test_discriminator_reads_each_samples_own_class_map():
    m = tiny()
    x = torch.randn(3, 3, 32, 32)
    labels = torch.tensor([2, 0, 3])
    out, feat = m.dis(x, labels)
    full = m.dis.cnn_c(feat)
    assert full.shape[1] == 4 and out.shape == (3,) + full.shape[2:]
    for i, c in enumerate(labels):
        assert torch.equal(out[i], full[i, c])
    # the features are returned after cnn_c's leaky ReLU (the authors' in-place activation)
    assert torch.equal(feat, F.leaky_relu(m.dis.cnn_f(x), 0.2)) and (feat < 0).any()


# ---- training ----------------------------------------------------------------------------------
ACCURACIES = {"acc_D", "acc_G"}  # logged beside the losses


@pytest.fixture
def run_steps(train_steps):
    """The authors' RMSprop (weight decay 1e-4) for ``n`` trainer steps: the logs."""
    return lambda m, batch, n, lr=1e-3: train_steps(m, batch, n, torch.optim.RMSprop, lr=lr, weight_decay=1e-4)[0]


def test_a_few_steps_on_animal_classes_lower_the_discriminator_and_reconstruction_losses(animals, run_steps):
    ds = ClassFolderDataset(animals, Transform(36, 32, "resize_and_crop"), seed=0, pairs=True)
    items = [ds[i] for i in range(0, len(ds), 6)]
    batch = {k: torch.stack([it[k] for it in items]) if k.endswith("image") else torch.tensor([it[k] for it in items])
             for k in ("image", "label", "class_image", "class_label")}
    m = tiny()
    assert not any(p.requires_grad for p in m.gen_test.parameters())
    assert {id(p) for p in m.gen_test.parameters()}.isdisjoint(id(p) for g in m.optimizer_groups().values() for p in g)
    before = [p.clone() for p in m.gen.parameters()]
    logs = run_steps(m, batch, 20, lr=2e-3)
    assert set(logs[0]) - ACCURACIES == {"D_real", "D_gp", "D_fake", "G_adv", "G_rec", "G_fm"}
    d = [r["D_real"] + r["D_fake"] for r in logs]
    rec = [r["G_rec"] for r in logs]
    # measured over seeds 0-3: D ratio 0.29-0.69, reconstruction ratio 0.73-0.83
    assert np.mean(d[-4:]) < 0.85 * np.mean(d[:3])
    assert np.mean(rec[-4:]) < 0.95 * np.mean(rec[:3])
    assert any(not torch.equal(a, b) for a, b in zip(before, m.gen.parameters()))


def test_without_pairs_the_rolled_batch_is_the_class_partner_and_weights_zero_skip_terms(animals, run_steps):
    ds = ClassFolderDataset(animals, Transform(32, 32, "resize"), seed=0)
    items = [ds[i] for i in (0, 7, 14, 20)]
    batch = {"image": torch.stack([it["image"] for it in items]), "label": torch.tensor([it["label"] for it in items])}
    m = tiny(gp_w=0.0, fm_w=0.0)
    xa, la, xb, lb = m._pairs(batch)
    assert torch.equal(xb[1], xa[0]) and lb.tolist() == [3, 0, 1, 2]
    logs = run_steps(m, batch, 1)
    assert set(logs[0]) - ACCURACIES == {"D_real", "D_fake", "G_adv", "G_rec"}
    batch["label"] = torch.tensor([0, 1, 2, 9])
    with pytest.raises(ConfigError, match="num_classes"):
        next(m.training_step(batch))


# ---- class codes: export, t-SNE, interpolation ------------------------------------------------
def test_class_codes_export_and_tsne_plot_one_colour_per_class(tmp_path, animals):
    m = tiny().eval()
    ds = ClassFolderDataset(animals, Transform(32, 32, "resize"))
    codes, labels, names = dataset_class_codes(m, ds, batch_size=8)
    assert codes.shape == (23, 6) and labels.tolist() == ds.targets and names == ["cat", "dog", "meerkat", "wild"]
    with torch.no_grad():
        assert torch.allclose(codes[5], m.class_codes(ds[5]["image"][None])[0], atol=1e-6)
    save_codes(tmp_path / "codes.npz", codes, labels, names)
    c2, l2, n2 = load_codes(tmp_path / "codes.npz")
    assert np.allclose(c2, codes.numpy()) and l2.tolist() == labels.tolist() and n2 == names

    png = tmp_path / "tsne.png"
    emb, colours = tsne_plot(png, codes, labels, names, seed=0)
    assert emb.shape == (23, 2) and np.isfinite(emb).all() and emb.std() > 0
    assert np.allclose(emb, tsne_embedding(codes, seed=0))  # seeded
    assert list(colours) == names and len(set(colours.values())) == 4
    img = np.asarray(Image.open(png).convert("RGB"), np.float32)
    for rgb in colours.values():  # every class's colour is drawn
        near = np.abs(img - np.array(rgb, np.float32) * 255).max(axis=2) < 8
        assert near.sum() > 20


def test_interpolation_between_two_class_codes(animals):
    m = tiny().eval()
    x = load_images(sorted((animals / "dog").glob("*.jpg"))[:2])
    cats = load_images(sorted((animals / "cat").glob("*.jpg"))[:3])
    wild = load_images(sorted((animals / "wild").glob("*.jpg"))[:3])
    strip = interpolate_classes(m, x, cats, wild, steps=5)
    assert strip.shape == (5, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(strip[0], m.translate(x, class_images=cats), atol=1e-5)
        assert torch.allclose(strip[-1], m.translate(x, class_images=wild), atol=1e-5)
    steps = [(strip[i + 1] - strip[i]).abs().mean() for i in range(4)]
    assert all(s > 0 for s in steps)
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    assert torch.allclose(interpolate_codes(a, b, 3), torch.tensor([[0.0, 2.0], [2.0, 0.0], [4.0, -2.0]]))
    with pytest.raises(ConfigError, match="2 steps"):
        interpolate_codes(a, b, 1)


def test_fewshot_translation_of_folders_feeds_the_fewshot_metrics_end_to_end(tmp_path, animals, tiny_feature_net):
    from styleforge.errors import DataError
    from styleforge.metrics.evaluate import EvalOptions, evaluate_folders
    from styleforge.metrics.features import load_feature_net

    m = tiny().eval()
    content = sorted((animals / "dog").glob("*.jpg"))[:3]
    counts = fewshot_translate(m, content, animals, tmp_path / "fake", shots=5)
    assert counts == {"cat": 3, "dog": 3, "meerkat": 3, "wild": 3}
    out = Image.open(tmp_path / "fake" / "cat" / f"{content[0].stem}.png")
    assert out.size == (32, 32)
    cats = load_images(sorted((animals / "cat").glob("*.jpg"))[:5])
    with torch.no_grad():
        want = m.translate(load_images(content[:1]), class_images=cats)[0]
    got = torch.from_numpy(np.asarray(out, np.float32)).permute(2, 0, 1) / 127.5 - 1
    assert (got - want).abs().max() < 1.5 / 127.5  # the same translation, rounded to 8 bits
    res = evaluate_folders(animals, tmp_path / "fake", "fewshot,mfid", net=load_feature_net(tiny_feature_net, 32),
                           opts=EvalOptions(progress=False, use_cache=False))
    fs = res["metrics"]["fewshot"]
    assert fs["classes"] == 4 and fs["n"] == 12 and 0 <= fs["top1"] <= fs["top5"] <= 1
    mfid = res["metrics"]["mfid"]
    assert mfid["classes"] == 4 and np.isfinite(mfid["value"]) and mfid["value"] > 0
    with pytest.raises(DataError, match="--shots 6 needs at least 6"):
        fewshot_translate(m, content, animals, tmp_path / "fake2", shots=6)
