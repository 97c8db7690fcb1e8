"""Few-shot group branches: stage 2 from a trained Photo2Cartoon model moves only the new
group's branch (and the discriminators), the model directory holds the trunk once and one branch
per group, ``translate --group``; the tiny presets end to end."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from styleforge.checkpoint import load_model, save_model
from styleforge.cli import main
from styleforge.data.images import list_images, load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import CheckpointError, ConfigError
from styleforge.methods.fewshot_groups import FewShotGroups
from styleforge.methods.photo2cartoon import Photo2Cartoon
from styleforge.registry import build_method
from styleforge.training.trainer import build_optimizers

SMALL = {"img_size": 32, "ch": 4, "n_dis_global": 5, "n_dis_local": 4}
OPT = {"lr": 1e-4, "betas": [0.5, 0.999], "weight_decay": 1e-4}
PARTS = ("ConvBlock1", "HourGlass1", "HourGlass4", "ConvBlock2")  # the default branch
GENS = ("genA2B", "genB2A")

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/methods/conftest.py


@pytest.fixture
def base_dir(tmp_path):
    """A stage-1 Photo2Cartoon model directory (generators only, as 'styleforge train' writes)."""
    torch.manual_seed(0)
    m = Photo2Cartoon(**SMALL)
    with torch.no_grad():  # trained Soft-AdaLIN blend weights are not 0: make the content path count
        for n, p in m.named_parameters():
            if n.endswith(("w_gamma", "w_beta")):
                p.uniform_(0, 1)
    return save_model(tmp_path / "base", m)


def real_image(folder, size=32, i=0):
    return to_tensor(load_rgb(list_images(folder)[i]).resize((size, size), Image.BICUBIC))[None]


def perturb_branch(m, group, seed=1):
    """Stand-in for training a branch (fast): move every tensor of the group's branch."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.branches[group].parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_stage2_moves_only_the_new_branch_and_the_discriminators(base_dir, h2z, facenet_file, train_steps):
    base = load_model(base_dir)
    m = FewShotGroups(base_model=str(base_dir), group="men", facenet_weights=str(facenet_file))
    x = real_image(h2z / "testA")
    with torch.no_grad():  # the branch starts as a copy of the base's parts
        assert torch.equal(m.translate(x, group="men"), base.translate(x))
    opts = build_optimizers(m, OPT)
    branch = {id(p) for p in m.branches["men"].parameters()}
    assert {id(p) for pg in opts["G"].param_groups for p in pg["params"]} == branch
    before = {k: v.clone() for k, v in m.state_dict().items()}
    batch = {"A": real_image(h2z / "trainA"), "B": real_image(h2z / "trainB")}
    logs = train_steps(m, batch, 2, optimizers=opts)[0][-1]
    assert "faceid_A" in logs and "faceid_B" in logs  # the Photo2Cartoon objective, face-ID included
    after = m.state_dict()
    trunk = [k for k in after if k.startswith(GENS)]
    assert trunk and all(torch.equal(before[k], after[k]) for k in trunk)  # bit-identical
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    branch_keys = [k for k in after if k.startswith("branches.men.")]
    for gen in GENS:
        for part in PARTS:
            assert any(k.startswith(f"branches.men.{gen}.{part}.") for k in changed), (gen, part)
    # the only branch tensors left alone are the 1x1 projections the hourglass blocks build but
    # never use (equal widths): they get no gradient, so Adam does not touch them
    assert {k for k in branch_keys if k not in changed} == \
        {k for k in branch_keys if k.endswith("ConvBlock4.2.weight")}
    for d in ("disGA", "disGB", "disLA", "disLB"):
        assert any(k.startswith(d + ".") for k in changed), d
    with torch.no_grad():
        assert torch.equal(m.translate(x, group="base"), base.translate(x))  # base group unchanged
        assert torch.equal(m.translate(x), base.translate(x))  # the default group is the base
        assert not torch.equal(m.translate(x, group="men"), base.translate(x))
        y, heat = m.translate(x, "BtoA", return_heatmap=True, group="men")
        assert y.shape == x.shape and heat.shape == (1, 1, 8, 8)


def test_model_dir_holds_the_trunk_once_and_one_branch_per_group(tmp_path, base_dir, h2z):
    base = load_model(base_dir)
    men = FewShotGroups(base_model=str(base_dir), group="men")
    perturb_branch(men, "men")
    save_model(tmp_path / "men", men)
    keys = load_file(str(tmp_path / "men" / "model.safetensors"))
    assert {k.split(".")[0] for k in keys} == {"genA2B", "genB2A", "branches"}  # no discriminators
    assert {tuple(k.split(".")[1:4]) for k in keys if k.startswith("branches.")} == \
        {("men", g, p) for g in GENS for p in PARTS}
    trunk = sum(v.numel() for k, v in keys.items() if k.startswith(GENS))
    assert trunk == sum(p.numel() for g in GENS for p in getattr(base, g).parameters())
    part_size = sum(p.numel() for g in GENS for part in PARTS for p in getattr(getattr(base, g), part).parameters())
    assert sum(v.numel() for k, v in keys.items() if k.startswith("branches.")) == part_size
    # a second group from the few-shot model: the first branch is kept as it was
    kids = FewShotGroups(base_model=str(tmp_path / "men"), group="kids")
    assert kids.group_names == ("base", "men", "kids")
    sd = kids.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in keys.items())
    for g in GENS:
        for part in PARTS:
            new = getattr(kids.branches["kids"][g], part).state_dict()
            trunk_part = getattr(getattr(base, g), part).state_dict()
            assert all(torch.equal(new[k], trunk_part[k]) for k in new)
    save_model(tmp_path / "both", kids)
    both = load_model(tmp_path / "both")
    assert both.group_names == ("base", "men", "kids") and both.config["base_model"] is None
    x = real_image(h2z / "testB")
    with torch.no_grad():
        assert torch.equal(both.translate(x, group="men"), men.eval().translate(x, group="men"))
        assert torch.equal(both.translate(x, group="kids"), base.translate(x))


def test_translate_group_on_the_command_line(tmp_path, base_dir, h2z, capsys):
    m = FewShotGroups(base_model=str(base_dir), group="men")
    perturb_branch(m, "men")
    model = save_model(tmp_path / "model", m)
    img = list_images(h2z / "testA")[0]
    outs = {}
    for name, extra in (("default", []), ("base", ["--group", "base"]), ("men", ["--group", "men"])):
        assert main(["translate", str(model), str(img), "--out", str(tmp_path / name), "--quiet", "--workers", "0",
                     *extra]) == 0
        outs[name] = torch.from_numpy(np.asarray(Image.open(tmp_path / name / img.name)).copy())
    assert torch.equal(outs["default"], outs["base"]) and not torch.equal(outs["men"], outs["base"])
    capsys.readouterr()
    # an unknown group: one line naming the known ones, exit 2, nothing written
    r = subprocess.run([sys.executable, "-m", "styleforge", "translate", str(model), str(img), "--out",
                        str(tmp_path / "bad"), "--group", "women"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr == "error: --group must be one of base, men, got 'women'\n"  # the declared choice
    assert not (tmp_path / "bad").exists()
    # a model without groups
    plain = save_model(tmp_path / "plain", Photo2Cartoon(**SMALL))
    assert main(["translate", str(plain), str(img), "--out", str(tmp_path / "p"), "--group", "men"]) == 2
    err = capsys.readouterr().err
    # no --group flag for it: one line naming the inputs it has
    assert err.startswith("error: --group: no such option") and "model's inputs: --direction" in err
    assert err.count("\n") == 1


def test_stage2_errors_name_the_problem(tmp_path, base_dir):
    with pytest.raises(ConfigError, match="is the base group"):
        FewShotGroups(base_model=str(base_dir), group="base")
    with pytest.raises(ConfigError, match="group name must be a letter"):
        FewShotGroups(base_model=str(base_dir), group="9 men")
    with pytest.raises(ConfigError, match="branch_modules must name generator parts"):
        FewShotGroups(base_model=str(base_dir), group="men", branch_modules=["Nope"])
    cyc = save_model(tmp_path / "cyc", build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))
    with pytest.raises(CheckpointError, match="holds a cyclegan model.*photo2cartoon"):
        FewShotGroups(base_model=str(cyc), group="men")
    with pytest.raises(ConfigError, match="set model.group=NAME"):
        FewShotGroups(**SMALL).optimizer_groups()
    m = FewShotGroups(base_model=str(base_dir), group="men")
    with pytest.raises(ConfigError, match="unknown group 'kids'; this model has the groups: base, men"):
        m.translate(torch.zeros(1, 3, 32, 32), group="kids")
    opt = m.inference_options()[0]
    assert (opt.name, opt.kind, opt.default, opt.choices) == ("group", "choice", "base", ("base", "men"))


def test_presets_follow_the_authors_few_shot_schedule():
    from styleforge import config as C

    few = C.resolve("photo2cartoon-fewshot")
    assert few["method"] == "fewshot_groups"
    # their few-shot train.py: 100,000 iterations, linear decay over the second half, lr 1e-4
    assert few["train"]["steps"] == few["train"]["steps_decay"] == 50_000 and few["train"]["lr"] == 1e-4
    assert few["model"]["branch_modules"] == list(PARTS)
    assert few["model"]["cycle_weight"] == 50.0 and few["model"]["faceid_weight"] == 1.0


def test_tiny_presets_stage1_then_stage2_on_photo2cartoon(tmp_path, shared_data, facenet_file):
    from styleforge import config as C
    from styleforge.training.trainer import Trainer

    root = shared_data("photo2cartoon")
    common = [f"model.facenet_weights={facenet_file}", "train.steps=1", "train.steps_decay=1",
              "train.checkpoint_every=0", "train.sample_every=0", "data.max_size=4", "data.num_samples=1"]
    cfg = C.resolve("tiny/photo2cartoon", overrides=common)
    cfg["data"]["root"] = str(root)
    stage1 = Trainer(cfg, tmp_path / "stage1").fit()
    # stage 2 from the stage-1 run folder: its latest checkpoint (discriminators included)
    cfg = C.resolve("tiny/photo2cartoon-fewshot",
                    overrides=common + [f"model.base_model={tmp_path / 'stage1'}", "model.group=men"])
    cfg["data"]["root"] = str(root)
    stage2 = Trainer(cfg, tmp_path / "stage2").fit()
    base, few = load_model(stage1), load_model(stage2)
    assert few.group_names == ("base", "men") and few.config["img_size"] == 96
    s1, s2 = base.state_dict(), few.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if k.startswith(GENS))  # trunk frozen
    assert any(not torch.equal(s2[f"branches.men.{g}.{k}"], s1[f"{g}.{k}"])
               for g in GENS for k in getattr(base, g).state_dict() if k.startswith(PARTS))
    x = real_image(root / "testA", 96)
    with torch.no_grad():
        assert torch.equal(few.translate(x), base.translate(x))
        assert few.translate(x, group="men").shape == x.shape
