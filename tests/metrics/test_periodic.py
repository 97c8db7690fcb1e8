"""Periodic evaluation during training: KID logged with the losses, checkpoints/best kept by it,
training unchanged by it; a small TorchScript extractor by path keeps it fast."""
import json

import pytest
import torch

import styleforge
from styleforge import config as C
from styleforge.errors import ConfigError
from styleforge.metrics.periodic import PeriodicEvaluator
from styleforge.training.logging import read_log
from styleforge.training.trainer import Trainer


def cfg_for(root, **over):
    cfg = C.resolve("tiny/cyclegan", overrides=[f"{k}={v}" for k, v in over.items()])
    cfg["data"]["root"] = str(root)
    return cfg


LOSSES = ("G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B")


def test_kid_is_logged_and_best_keeps_the_lowest(h2z, tmp_path, tiny_feature_net):
    cfg = cfg_for(h2z, **{"train.steps": 4, "train.steps_decay": 0, "train.eval_every": 2, "train.eval_images": 6,
                          "train.eval_feature_net": str(tiny_feature_net), "train.eval_feature_size": 32})
    Trainer(cfg, tmp_path / "run").fit()
    recs = read_log(tmp_path / "run")
    evals = {r["step"]: r["eval_kid"] for r in recs if "eval_kid" in r}
    assert sorted(evals) == [2, 4]
    best_step = min(evals, key=evals.get)
    best = tmp_path / "run" / "checkpoints" / "best"
    rec = json.loads((best / "eval.json").read_text())
    assert rec == {"metric": "kid", "value": pytest.approx(evals[best_step]), "step": best_step, "images": 6}
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()
    # best holds the weights of that step: scoring them again gives the logged value
    ev = PeriodicEvaluator(cfg, torch.device("cpu"))
    assert ev(styleforge.load(best).method) == pytest.approx(evals[best_step], rel=1e-6)

    # the same run without evaluation has the same losses (evaluation leaves the RNGs alone)
    Trainer(cfg_for(h2z, **{"train.steps": 4, "train.steps_decay": 0}), tmp_path / "plain").fit()
    plain = read_log(tmp_path / "plain")
    assert [[r[k] for k in LOSSES] for r in plain] == [[r[k] for k in LOSSES] for r in recs if "G_A" in r]


def test_fid_by_the_exact_low_rank_route_can_be_the_metric(h2z, tmp_path, tiny_feature_net):
    cfg = cfg_for(h2z, **{"train.steps": 1, "train.steps_decay": 0, "train.eval_every": 1, "train.eval_metric": "fid",
                          "train.eval_images": 4, "train.eval_feature_net": str(tiny_feature_net),
                          "train.eval_feature_size": 32})
    Trainer(cfg, tmp_path / "run").fit()
    assert json.loads((tmp_path / "run" / "checkpoints" / "best" / "eval.json").read_text())["metric"] == "fid"
    assert any("eval_fid" in r for r in read_log(tmp_path / "run"))


@pytest.mark.parametrize("over,msg", [
    ({"train.eval_metric": "lpips"}, "train.eval_metric must be one of kid, fid"),
    ({"train.eval_images": 1}, "train.eval_images must be an integer >= 2"),
    ({"train.eval_feature_net": "/no/such/net.pt"}, "train.eval_feature_net: feature network not found"),
    ({"train.eval_feature_size": 64}, "eval_feature_size=64 applies to train.eval_feature_net"),
])
def test_bad_evaluation_options_fail_when_the_trainer_starts(h2z, tmp_path, over, msg):
    with pytest.raises(ConfigError, match=msg):
        Trainer(cfg_for(h2z, **{"train.eval_every": 2, **over}), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "checkpoints").exists()
