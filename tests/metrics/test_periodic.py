"""Periodic evaluation during training: KID logged with the losses, checkpoints/best kept by it,
training unchanged by it; a small TorchScript extractor by path keeps it fast."""
import hashlib
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import styleforge
from styleforge import config as C
from styleforge.errors import ConfigError
from styleforge.metrics import evaluate as E
from styleforge.metrics.features import load_feature_net
from styleforge.metrics.periodic import PeriodicEvaluator
from styleforge.pipeline import Pipeline
from styleforge.registry import build_method
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


SAMPLE = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize("preset,data", [("tiny/cyclegan", "horse2zebra"), ("tiny/pix2pix", "facades"),
                                         ("tiny/adain", "style_transfer"), ("tiny/funit", "animals")])
def test_periodic_evaluation_translates_the_first_jobs_of_evaluate_against_its_first_reals(
        preset, data, tiny_feature_net, monkeypatch):
    """What the model is given (the input's pixels, its style or class images, the direction) is
    recorded on both sides: the trainer's evaluator makes evaluate's first eval_images calls, and
    scores them against the first eval_images of evaluate's real images."""
    calls = []

    def record(self, image, num_outputs=1, **values):
        calls.append((image.size, hashlib.sha1(image.tobytes()).hexdigest(),
                      {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in values.items()}))
        return [{"image": Image.new("RGB", image.size, (len(calls) * 9 % 256, 0, 0))} for _ in range(num_outputs)]

    monkeypatch.setattr(Pipeline, "run", record)
    cfg = C.resolve(preset, overrides=[f"{k}={v}" for k, v in (("train.eval_every", 1), ("train.eval_images", 3),
                    ("train.eval_feature_net", tiny_feature_net), ("train.eval_feature_size", 32))])
    cfg["data"]["root"] = str(SAMPLE / data)
    torch.manual_seed(0)
    method = build_method(cfg["method"], **cfg["model"])
    pipe = Pipeline(method, device="cpu")
    E.evaluate_model(pipe, SAMPLE / data, None, "kid", load_feature_net(tiny_feature_net, 32),
                     E.EvalOptions(progress=False, use_cache=False))
    by_evaluate, calls[:] = list(calls), []
    ev = PeriodicEvaluator(cfg, torch.device("cpu"), method)
    ev(method)
    assert len(by_evaluate) > 3 and calls == by_evaluate[:3]
    reals = E.test_split(pipe, SAMPLE / data, method.check_direction(None)).reals[:3]
    key = lambda r: str(r) if isinstance(r, (str, Path)) else r.tobytes()  # noqa: E731
    assert [key(r) for r in ev.reals] == [key(r) for r in reals] and len(reals) == 3


def test_without_a_test_split_the_first_training_jobs_are_scored_with_a_note(tmp_path, tiny_feature_net, capsys):
    import shutil

    for side in "AB":
        shutil.copytree(SAMPLE / "horse2zebra" / f"train{side}", tmp_path / f"train{side}")
    cfg = cfg_for(tmp_path, **{"train.eval_every": 1, "train.eval_images": 2,
                               "train.eval_feature_net": str(tiny_feature_net), "train.eval_feature_size": 32})
    ev = PeriodicEvaluator(cfg, torch.device("cpu"), build_method(cfg["method"], **cfg["model"]))
    first = sorted((tmp_path / "trainA").iterdir())[:2]
    assert [j.image for j in ev.jobs] == first and ev.reals == sorted((tmp_path / "trainB").iterdir())[:2]
    assert "has no testA/ and testB/ folders" in capsys.readouterr().err


def test_a_model_without_the_input_the_layout_needs_fails_when_the_trainer_starts(tiny_feature_net):
    cfg = cfg_for(SAMPLE / "style_transfer", **{"train.eval_every": 1, "train.eval_feature_net": str(tiny_feature_net),
                                                "train.eval_feature_size": 32, "data.dataset": "content_style"})
    with pytest.raises(ConfigError, match="train.eval_every: .*style_transfer is a content/style dataset, and this "
                                          "cyclegan model takes no style image"):
        PeriodicEvaluator(cfg, torch.device("cpu"), build_method(cfg["method"], **cfg["model"]))
