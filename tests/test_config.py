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
