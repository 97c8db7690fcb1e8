"""Frozen modules and EMA networks in the trainer (the toy method of conftest.py, real images)."""
import copy

import pytest
import torch
from safetensors.torch import load_file

import styleforge
from styleforge.errors import ConfigError
from styleforge.training import trainer as T
from styleforge.training.ema import ModuleEMA, update_average
from styleforge.training.logging import read_log


def test_frozen_module_is_never_trained_nor_checkpointed_but_kept_for_inference(toy_cfg, tmp_path):
    cfg = toy_cfg(**{"train.checkpoint_every": 3})
    tr = T.Trainer(cfg, tmp_path / "run")
    model_dir = tr.fit()
    m = tr.method
    assert not any(p.requires_grad for p in m.enc.parameters())
    assert not any(p.requires_grad for p in m.G_ema.parameters())
    in_opts = {id(p) for o in tr.optimizers.values() for g in o.param_groups for p in g["params"]}
    assert not in_opts & {id(p) for p in m.enc.parameters()}
    assert in_opts == {id(p) for p in [*m.G.parameters(), *m.D.parameters()]}
    # the encoder is the one the constructor builds, untouched by 6 steps
    fresh = type(m)(**m.config)
    for a, b in zip(m.enc.parameters(), fresh.enc.parameters()):
        assert torch.equal(a.cpu(), b)
    # training checkpoints leave the frozen encoder out; the model dir keeps it (inference needs it)
    ck = load_file(str(tmp_path / "run" / "checkpoints" / "step_00000006" / "model.safetensors"))
    assert {k.split(".")[0] for k in ck} == {"G", "G_ema", "D"}
    md = load_file(str(model_dir / "model.safetensors"))
    assert {k.split(".")[0] for k in md} == {"enc", "G_ema"}
    # and the checkpoint loads (resume and styleforge.load) with the encoder rebuilt
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    a = styleforge.load(tmp_path / "run" / "checkpoints" / "step_00000006").method.translate(x)
    b = styleforge.load(model_dir).method.translate(x)
    assert torch.equal(a, b)


def test_an_optimizer_group_holding_a_frozen_module_is_a_one_line_error(toy_method, toy_cfg, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(toy_method, "optimizer_groups",
                        lambda self: {"G": [*self.G.parameters(), *self.enc.parameters()], "D": []})
    with pytest.raises(ConfigError, match="optimizer group G holds parameters of enc, which is frozen"):
        T.Trainer(toy_cfg(), tmp_path / "run").fit()


def test_a_method_with_nothing_to_train_says_why(toy_method, toy_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(toy_method, "not_trainable", "optimises the image; use styleforge stylize",
                        raising=False)
    with pytest.raises(ConfigError, match="^toy_frozen_ema optimises the image; use styleforge stylize$"):
        T.Trainer(toy_cfg(), tmp_path / "run").fit()
    monkeypatch.setattr(toy_method, "not_trainable", None)
    monkeypatch.setattr(toy_method, "optimizer_groups", lambda self: {"G": []})
    with pytest.raises(ConfigError, match="has no trainable parameters"):
        T.Trainer(toy_cfg(), tmp_path / "run2").fit()
    assert not (tmp_path / "run2" / "checkpoints").exists()


def test_frozen_parameters_stay_out_of_the_gradient_all_reduce(toy_cfg, monkeypatch):
    from styleforge.training import distributed
    from styleforge.registry import build_method

    m = build_method("toy_frozen_ema")
    T.freeze_modules(m)
    opts = T.build_optimizers(m, toy_cfg()["train"])
    reduced = []
    monkeypatch.setattr(distributed, "average_gradients", lambda params, n: reduced.extend(params))
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    T.run_phases(m, opts, batch, distributed.DistInfo(rank=0, world_size=2))
    assert {id(p) for p in reduced} == {id(p) for p in [*m.G.parameters(), *m.D.parameters()]}
    assert all(p.grad is None for p in m.enc.parameters())


def test_ema_update_is_funits_update_average_after_the_generator_step(toy_cfg):
    from styleforge.registry import build_method

    m = build_method("toy_frozen_ema")
    T.freeze_modules(m)
    with torch.no_grad():
        for p in m.G_ema.parameters():  # start the average away from G to see both terms
            p.add_(0.5)
    opts = T.build_optimizers(m, toy_cfg()["train"])
    ema = ModuleEMA(m, opts, 0.9)
    before = copy.deepcopy(m.G_ema)
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    T.run_phases(m, opts, batch, ema=ema)
    for (name, pe), p0, pg in zip(m.G_ema.named_parameters(), before.parameters(), m.G.parameters()):
        assert torch.equal(pe, 0.9 * p0 + 0.1 * pg), name
        assert not torch.equal(pe, p0)
    for be, bg in zip(m.G_ema.buffers(), m.G.buffers()):  # batch-norm statistics are copied
        assert torch.equal(be, bg)
    # the D step (after the G step) did not move the average again
    dst = copy.deepcopy(m.G_ema)
    ema.after_step("D")
    assert all(torch.equal(a, b) for a, b in zip(dst.parameters(), m.G_ema.parameters()))
    # decay 0 in the formula gives the source itself
    update_average(m.G_ema, m.G, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(m.G_ema.parameters(), m.G.parameters()))


def test_resume_with_ema_on_reproduces_the_uninterrupted_run(toy_cfg, tmp_path):
    cfg = toy_cfg(**{"train.steps": 8, "train.ema_decay": 0.9, "train.lr_policy": "constant"})
    full = T.Trainer(cfg, tmp_path / "full")
    full.fit()
    T.Trainer(cfg, tmp_path / "part").fit(stop_at=5)
    part = T.Trainer(cfg, tmp_path / "part", resume=True)
    part.fit()
    keys = ("G_gan", "G_l1", "D")
    assert [[r[k] for k in keys] for r in read_log(tmp_path / "full")] == \
           [[r[k] for k in keys] for r in read_log(tmp_path / "part")]
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the model dir holds the average, not the trained G
    g = full.method.G.state_dict()
    assert any(not torch.equal(a[f"G_ema.{k}"], v.cpu()) for k, v in g.items() if v.is_floating_point())


def test_ema_off_leaves_the_target_as_the_method_built_it(toy_cfg, tmp_path):
    cfg = toy_cfg(**{"train.steps": 2})
    tr = T.Trainer(cfg, tmp_path / "run")
    tr.fit()
    assert tr.ema is None
    T.seed_everything(cfg["train"]["seed"])  # the trainer builds the method right after seeding
    fresh = type(tr.method)(**tr.method.config)
    assert all(torch.equal(a, b) for a, b in zip(tr.method.G_ema.parameters(), fresh.G_ema.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(tr.method.G.parameters(), fresh.G.parameters()))
