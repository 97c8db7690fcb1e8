"""Optimisers per optimizer group and LR policies from the config (training/schedules.py)."""
import copy
import math

import pytest
import torch

from styleforge import config as C
from styleforge.config import TRAIN_DEFAULTS
from styleforge.data.images import list_images, load_rgb
from styleforge.data.transforms import to_tensor
from styleforge.errors import ConfigError
from styleforge.registry import build_method
from styleforge.training import trainer as T
from styleforge.training.logging import read_log
from styleforge.training.schedules import lr_multiplier, make_optimizer, optimizer_settings


# ---- policies ----------------------------------------------------------------------------
def test_step_policy_halves_every_lr_step_steps_like_munits_steplr():
    got = [lr_multiplier("step", u, 10, 0, lr_step=3, lr_gamma=0.5) for u in range(8)]
    assert got == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    # the authors' StepLR, stepped once per iteration after the update
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    ref = []
    for _ in range(8):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert got == ref


def test_inverse_time_policy_is_adains_adjust_learning_rate():
    # AdaIN: lr / (1 + lr_decay * iteration_count), iteration counted from 0
    got = [lr_multiplier("inverse_time", u, 10, 0, lr_decay_rate=5e-5) for u in (0, 1, 1000, 160000)]
    assert got == [1.0, 1 / (1 + 5e-5), 1 / 1.05, 1 / 9.0]


def test_linear_cosine_and_constant_policies():
    assert [lr_multiplier("linear", u, 2, 3) for u in range(6)] == [1, 1, 0.75, 0.5, 0.25, 0.0]
    assert [lr_multiplier("constant", u, 2, 3) for u in range(6)] == [1.0] * 6
    cos = [lr_multiplier("cosine", u, 2, 2) for u in range(5)]
    assert cos == pytest.approx([1.0, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, 0.5 - 0.5 * math.cos(math.pi / 4), 0.0])


def test_trainer_applies_the_step_and_inverse_time_policies(toy_cfg, tmp_path):
    cfg = toy_cfg(**{"train.steps": 5, "train.lr_policy": "step", "train.lr_step": 2, "train.lr_gamma": 0.1,
                     "train.lr": 1e-3})
    T.Trainer(cfg, tmp_path / "step").fit()
    # logged after the step's scheduler update: the rate the next step uses
    assert [r["lr_G"] for r in read_log(tmp_path / "step")] == pytest.approx(
        [1e-3 * 0.1 ** (s // 2) for s in range(1, 6)])
    cfg = toy_cfg(**{"train.steps": 3, "train.lr_policy": "inverse_time", "train.lr_decay_rate": 0.5,
                     "train.lr": 1e-3})
    T.Trainer(cfg, tmp_path / "inv").fit()
    assert [r["lr_D"] for r in read_log(tmp_path / "inv")] == pytest.approx([1e-3 / (1 + 0.5 * s) for s in (1, 2, 3)])


# ---- optimiser types -----------------------------------------------------------------------
@pytest.mark.parametrize("spec, reference", [
    ({"type": "adam", "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 1e-2},
     lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2)),
    ({"type": "adamw", "lr": 1e-3, "betas": [0.5, 0.999], "weight_decay": 1e-2},
     lambda p: torch.optim.AdamW(p, lr=1e-3, betas=(0.5, 0.999), weight_decay=1e-2)),
    ({"type": "rmsprop", "lr": 1e-4, "weight_decay": 1e-4, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5},
     lambda p: torch.optim.RMSprop(p, lr=1e-4, weight_decay=1e-4, alpha=0.9, eps=1e-6, momentum=0.5)),
    ({"type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)),
])
def test_each_optimizer_type_makes_torchs_update_with_the_given_settings(spec, reference):
    t = {**TRAIN_DEFAULTS, "optimizers": {"G": spec}}
    w = torch.nn.Parameter(torch.randn(500, generator=torch.Generator().manual_seed(0)))
    ref = torch.nn.Parameter(w.detach().clone())
    opt, plain = make_optimizer([w], optimizer_settings(t, "G")), reference([ref])
    assert type(opt) is type(plain)
    for i in range(4):
        g = torch.randn(500, generator=torch.Generator().manual_seed(i + 1))
        w.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        plain.step()
    torch.testing.assert_close(w.detach(), ref.detach(), rtol=0, atol=1e-7)
    assert not torch.equal(w.detach(), torch.randn(500, generator=torch.Generator().manual_seed(0)))


def test_per_group_optimizers_override_the_section(toy_cfg, tmp_path):
    cfg = toy_cfg(**{"train.steps": 1, "train.optimizers": "{G: {type: rmsprop, lr: 1e-4, weight_decay: 1e-4}}",
                     "train.lr": 3e-4})
    tr = T.Trainer(cfg, tmp_path / "run")
    tr.fit()
    g, d = tr.optimizers["G"], tr.optimizers["D"]
    assert isinstance(g, torch.optim.RMSprop) and g.defaults["lr"] == 1e-4 and g.defaults["weight_decay"] == 1e-4
    assert isinstance(d, torch.optim.Adam) and d.defaults["lr"] == 3e-4 and d.defaults["betas"] == (0.5, 0.999)
    rec = read_log(tmp_path / "run")[0]
    assert (rec["lr_G"], rec["lr_D"]) == (1e-4, 3e-4)  # steps_decay 0: linear stays constant


def test_a_group_can_have_its_own_lr_schedule(toy_cfg, tmp_path):
    """train.optimizers.<group> may set the group's lr_policy (and lr_step, lr_gamma,
    lr_decay_rate): here G decays by step while D keeps the section's constant rate; the
    schedules resume exactly."""
    over = {"train.steps": 4, "train.lr": 1e-3, "train.lr_policy": "constant",
            "train.optimizers": "{G: {lr_policy: step, lr_step: 2, lr_gamma: 0.5}}"}
    T.Trainer(toy_cfg(**over), tmp_path / "run").fit()
    log = read_log(tmp_path / "run")
    assert [r["lr_G"] for r in log] == pytest.approx([1e-3 * 0.5 ** (s // 2) for s in range(1, 5)])
    assert [r["lr_D"] for r in log] == pytest.approx([1e-3] * 4)
    # stopped after 2 steps and resumed: the same rates as the uninterrupted run
    T.Trainer(toy_cfg(**{**over, "train.steps": 2}), tmp_path / "half").fit()
    cut = toy_cfg(**over)
    T.Trainer(cut, tmp_path / "half", resume=True).fit()
    assert [r["lr_G"] for r in read_log(tmp_path / "half")][-2:] == pytest.approx([r["lr_G"] for r in log][-2:])


@pytest.mark.parametrize("override, message", [
    ("train.optimizers={G: {tpye: sgd}}", r"unknown option train.optimizers.G.tpye \(did you mean train.optimizers.G.type\?\)"),
    ("train.optimizers={G: {type: rmsporp}}", r"train.optimizers.G.type must be one of .* got 'rmsporp' \(did you mean rmsprop\?\)"),
    ("train.optimizer=adamm", r"train.optimizer must be one of adam, adamw, rmsprop, sgd, got 'adamm' \(did you mean adam\?\)"),
    ("train.lr_policy=inverse-time", r"train.lr_policy must be one of .* \(did you mean inverse_time\?\)"),
    ("train.optimizers={G: {lr: -1}}", r"train.optimizers.G.lr must be a non-negative number"),
    ("train.betas=[0.5]", r"train.betas must be two numbers"),
    ("train.ema_decay=1.5", r"train.ema_decay must be a number in \[0, 1\)"),
    ("train.lr_step=0", r"train.lr_step must be a positive integer"),
    ("train.optimizers={D: {lr_policy: stepp}}", r"train.optimizers.D.lr_policy must be one of .* \(did you mean step\?\)"),
    ("train.optimizers={D: {lr_step: 0}}", r"train.optimizers.D.lr_step must be a positive integer"),
])
def test_bad_optimizer_settings_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        C.resolve("tiny/cyclegan", overrides=[override])


def test_settings_for_a_group_the_method_lacks_are_an_error(h2z):
    cfg = C.resolve("tiny/cyclegan", overrides=["train.optimizers={g: {lr: 1e-4}}"])
    m = build_method(cfg["method"], **cfg["model"])
    with pytest.raises(ConfigError, match=r"cyclegan has no optimizer group 'g' \(did you mean train.optimizers.G\?\)"):
        T.build_optimizers(m, cfg["train"])


# ---- existing presets keep their behaviour --------------------------------------------------
def _old_optimizers(method, t):
    """The optimizers and schedules the trainer built before per-group settings existed."""
    kw = {"lr": t["lr"], "betas": tuple(t["betas"]), "weight_decay": t["weight_decay"]}
    opts = {}
    for name, params in method.optimizer_groups().items():
        try:
            opts[name] = torch.optim.Adam(list(params), fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            opts[name] = torch.optim.Adam(list(params), **kw)
    n, nd = t["steps"], t["steps_decay"]
    rule = lambda s: 1.0 - max(0, s + 1 - n) / float(nd + 1)  # noqa: E731
    return opts, {k: torch.optim.lr_scheduler.LambdaLR(o, rule) for k, o in opts.items()}


def _first_steps(cfg, batch, old: bool, n_steps=2):
    t = cfg["train"]
    T.seed_everything(t["seed"])
    m = build_method(cfg["method"], **cfg["model"])
    if old:
        opts, scheds = _old_optimizers(m, t)
    else:
        T.freeze_modules(m)
        opts = T.build_optimizers(m, t)
        tr = T.Trainer.__new__(T.Trainer)
        tr.cfg = cfg
        scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, tr._lr_lambda) for k, o in opts.items()}
    out = []
    for _ in range(n_steps):
        out.append(T.run_phases(m, opts, copy.deepcopy(batch)))
        for s in scheds.values():
            s.step()
    return out, [o.param_groups[0]["lr"] for o in opts.values()]


@pytest.mark.parametrize("preset, size", [("tiny/cyclegan", 32), ("tiny/ugatit-light", 96)])
def test_existing_presets_give_bit_identical_first_steps_with_the_new_optimizers(h2z, preset, size):
    cfg = C.resolve(preset, overrides=["train.steps=1", "train.steps_decay=2"])
    # the presets' own optimizer settings (U-GAT-IT: lr 1e-4, weight decay 1e-4)
    assert cfg["train"]["optimizer"] == "adam" and not cfg["train"]["optimizers"]

    def img(side):
        return to_tensor(load_rgb(list_images(h2z / f"train{side}")[0]).resize((size, size))).unsqueeze(0)

    batch = {"A": img("A"), "B": img("B")}
    new, new_lr = _first_steps(cfg, batch, old=False)
    old, old_lr = _first_steps(cfg, batch, old=True)
    assert new == old and new_lr == old_lr
    assert new_lr[0] < cfg["train"]["lr"]  # the linear decay was exercised
    assert new[0] != new[1]  # the steps really trained
