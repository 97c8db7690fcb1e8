import pytest

from styleforge import config as C
from styleforge.errors import ConfigError


def test_cyclegan_preset_has_the_paper_defaults():
    c = C.resolve("cyclegan")
    m, d, t = c["model"], c["data"], c["train"]
    assert (m["netG"], m["netD"], m["gan_mode"], m["norm"]) == ("resnet_9blocks", "basic", "lsgan", "instance")
    assert (m["lambda_A"], m["lambda_B"], m["lambda_identity"], m["pool_size"]) == (10, 10, 0.5, 50)
    assert (d["load_size"], d["crop_size"], d["batch_size"]) == (286, 256, 1)
    assert (t["lr"], t["betas"], t["epochs"], t["epochs_decay"]) == (2e-4, [0.5, 0.999], 100, 100)


def test_inherit_and_overrides():
    c = C.resolve("cyclegan/128", overrides=["train.lr=1e-4", "model.ngf=32", "data.flip=false"])
    assert c["model"]["netG"] == "resnet_6blocks" and c["model"]["lambda_A"] == 10
    assert c["train"]["lr"] == 1e-4 and c["model"]["ngf"] == 32 and c["data"]["flip"] is False


@pytest.mark.parametrize("overrides,msg", [
    (["model.ngff=3"], "did you mean model.ngf"),
    (["train.lr=fast"], "train.lr must be a non-negative number"),
    (["nokey"], "not key=value"),
    (["data.batch_size=0"], "data.batch_size must be a positive integer"),
    (["train.lr_policy=steps"], r"train.lr_policy must be one of .* \(did you mean step\?\)"),
])
def test_bad_overrides_are_named(overrides, msg):
    with pytest.raises(ConfigError, match=msg):
        C.resolve("cyclegan", overrides=overrides)


def test_unknown_preset_suggests(tmp_path):
    with pytest.raises(ConfigError, match="did you mean cyclegan"):
        C.resolve("cyclegn")
    (tmp_path / "bad.yaml").write_text("method: cyclegan\nmodel: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        C.resolve(config_file=tmp_path / "bad.yaml")
    (tmp_path / "m.yaml").write_text("method: nosuch\n")
    with pytest.raises(ConfigError, match="unknown method 'nosuch'"):
        C.resolve(config_file=tmp_path / "m.yaml")


def test_every_preset_resolves_and_builds():
    from styleforge.registry import build_method

    for name in C.list_presets():
        c = C.resolve(name)
        if name.startswith("tiny/"):
            assert build_method(c["method"], **c["model"]) is not None


@pytest.mark.parametrize("preset,overrides,msg", [
    ("tiny/cyclegan", ["data.num_samples=null"], "data.num_samples .* must be a positive integer, got None"),
    ("tiny/cyclegan", ["data.max_size=-1"], "data.max_size must be a positive integer"),
    ("tiny/cyclegan", ["data.flip=maybe"], "data.flip must be true or false, got 'maybe'"),
    ("tiny/cyclegan", ["data.preprocess=cropp"], r"data.preprocess must be one of .*\(did you mean crop\?\)"),
    ("tiny/cyclegan", ["data.crop_size=40"], r"data.load_size \(36\) must be at least data.crop_size \(40\)"),
    ("tiny/cyclegan", ["model.ngf=null"], r"model.ngf must be a whole number \(default 64\), got None"),
    ("tiny/cyclegan", ["model.lambda_A=high"], "model.lambda_A must be a number"),
    ("tiny/ugatit", ["model.light=maybe"], "model.light must be true or false"),
])
def test_resolve_refuses_wrong_types_of_data_and_model_values(preset, overrides, msg):
    with pytest.raises(ConfigError, match=msg):
        C.resolve(preset, overrides=overrides)


@pytest.mark.parametrize("preset,overrides,msg", [
    # the PatchGAN's 3 stride-2 convs and the normalised conv after them: 3 * 2**3
    ("tiny/cyclegan", ["data.crop_size=16"], "data.crop_size=16 is too small for cyclegan: it needs at least 24 px"),
    ("tiny/cyclegan", ["data.crop_size=30"], "data.crop_size=30: cyclegan needs a multiple of 4 .* e.g. 32"),
    ("tiny/cyclegan", ["data.crop_size=32", "model.netD=n_layers", "model.n_layers_D=4"],
     "needs at least 48 px"),
    # the 7-layer global discriminator: 3 * 2**5
    ("tiny/ugatit-light", ["data.crop_size=64", "data.load_size=70", "model.img_size=64"],
     "data.crop_size=64 is too small for ugatit: it needs at least 96 px .*n_dis_global"),
    ("tiny/photo2cartoon", ["data.crop_size=80", "data.load_size=90", "model.img_size=80"],
     "too small for photo2cartoon: it needs at least 96 px"),
    ("tiny/ugatit", ["data.crop_size=128", "data.load_size=140"], "ugatit takes 96 px crops"),
    ("tiny/pix2pix", ["data.crop_size=96", "data.load_size=100"], "pix2pix needs a multiple of 64 .* e.g. 128"),
])
def test_crop_smaller_than_the_networks_take_is_refused_at_resolve(preset, overrides, msg):
    with pytest.raises(ConfigError, match=msg):
        C.resolve(preset, overrides=overrides)


def test_crops_the_networks_take_pass_and_every_preset_resolves():
    for name in C.list_presets():
        C.resolve(name)
    assert C.resolve("tiny/cyclegan", overrides=["data.crop_size=24"])["data"]["crop_size"] == 24
    assert C.resolve("tiny/ugatit-light", overrides=["data.crop_size=96"])["data"]["crop_size"] == 96
    assert C.resolve("tiny/cyclegan", overrides=["model.pool_size=1e1"])["model"]["pool_size"] == 10
