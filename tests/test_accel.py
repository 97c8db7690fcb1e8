"""The runtime paths (styleforge.accel through Pipeline.use_runtime): each one's output within its
stated bound of fp32 eager on a real image, ``auto``'s choice among allowed paths and its cache,
int8 export, and the one-line fall-backs."""
import json
import os
import subprocess
import sys

import onnx
import pytest
import torch

import styleforge
from styleforge import accel
from styleforge.checkpoint import save_model
from styleforge.errors import CheckpointError, ConfigError
from styleforge.export import export_int8, export_model
from styleforge.registry import build_method

INT8_TEST_PSNR = 30.0  # int8 on a tiny random network, stated looser than the 35 dB of trained ones


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("accel") / "m"
    save_model(d, build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))
    return d


@pytest.fixture(scope="module")
def int8_file(model_dir, tmp_path_factory):
    """The model directory's int8 file under export's default name, calibrated on real images."""
    from pathlib import Path

    h2z = Path(__file__).resolve().parents[1] / "data" / "horse2zebra" / "testA"
    return export_int8(model_dir, h2z, min_psnr=INT8_TEST_PSNR).path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "styleforge" / "runtimes.json"


def _image(h2z):
    return sorted((h2z / "testA").iterdir())[0]


def _rows(choice):
    return {r["name"]: r for r in choice.measured}


def test_fp32_paths_match_eager_exactly_and_bf16_within_its_psnr_bound(model_dir, h2z, cache):
    export_model(model_dir, model_dir / "cyclegan-AtoB.onnx", "onnx")
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("auto", sample=_image(h2z), candidates=("torch", "channels_last", "onnx"))
    rows = _rows(choice)
    assert {"torch", "channels_last", "onnx", "torch+bf16", "channels_last+bf16"} <= set(rows)
    for name in ("channels_last", "onnx"):
        assert rows[name]["ok"] and rows[name]["max_diff"] <= accel.EXACT_MAX_DIFF, rows[name]
    bf16 = rows["torch+bf16"]
    assert bf16["max_diff"] > 0, "bf16 autocast did not run in bf16"
    assert bf16["psnr"] >= accel.MIN_PSNR and bf16["ok"]
    (model_dir / "cyclegan-AtoB.onnx").unlink()


def test_int8_file_is_quantized_keeps_norms_and_output_in_float_and_stays_in_its_bound(model_dir, int8_file, h2z):
    proto = onnx.load(str(int8_file))
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and "InstanceNormalization" in ops
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["styleforge"])
    assert meta["int8"]["psnr_db"] >= INT8_TEST_PSNR and meta["int8"]["per_channel"]
    last = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")][-1]
    assert last.name in meta["int8"]["float_nodes"]
    # the output convolution reads float weights, not a dequantized int8 tensor
    dq_outputs = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    assert last.input[1] not in dq_outputs
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("int8", sample=_image(h2z))
    assert pipe.runtime == "int8" and choice.name == "int8", choice.note
    row = _rows(choice)["int8"]
    assert INT8_TEST_PSNR <= row["psnr"] < 80 and row["max_diff"] > accel.EXACT_MAX_DIFF  # int8 really ran
    # the file given as MODEL runs through the same path
    assert styleforge.load(int8_file, runtime="int8").runtime == "int8"


def test_int8_export_is_refused_below_its_psnr_bound_and_writes_nothing(model_dir, h2z, tmp_path):
    out = tmp_path / "m.int8.onnx"
    with pytest.raises(CheckpointError, match=r"PSNR .* < 99 dB .*not written"):
        export_int8(model_dir, h2z / "testA", out, min_psnr=99)
    assert not out.exists()


def test_auto_takes_only_a_path_within_the_bound_and_caches_its_choice(model_dir, int8_file, h2z, cache,
                                                                      monkeypatch):
    monkeypatch.setattr(accel, "MIN_PSNR", 500.0)  # no lossy path may be taken, however fast
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("auto", sample=_image(h2z), candidates=("torch", "channels_last", "int8"))
    rows = _rows(choice)
    assert not rows["int8"]["ok"] and not rows["torch+bf16"]["ok"]
    assert choice.name in ("torch", "channels_last") and not choice.cached
    assert f"auto took {choice.name}" in choice.note
    entries = json.loads(cache.read_text())
    assert [e["choice"] for e in entries.values()] == [choice.name]

    def no_measuring(*a, **k):
        raise AssertionError("measured again despite the cache")

    again = styleforge.load(model_dir)
    monkeypatch.setattr(type(again), "_measure", no_measuring)
    second = again.use_runtime("auto", sample=_image(h2z), candidates=("torch", "channels_last", "int8"))
    assert second.cached and second.name == choice.name and again.runtime == choice.name
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    assert torch.allclose(again(x), styleforge.load(model_dir)(x), atol=accel.EXACT_MAX_DIFF)


def test_compile_that_fails_falls_back_to_eager_in_one_line(model_dir, h2z, monkeypatch):
    def broken(fn, **kw):
        def run(*a, **k):
            raise RuntimeError("InductorError: no C++ compiler found\nlong trace")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("compile", sample=_image(h2z))
    assert choice.name == "torch" and pipe.runtime == "torch"
    assert "no C++ compiler found" in choice.note and "running torch instead" in choice.note
    assert "\n" not in choice.note and "long trace" not in choice.note


def test_compiled_path_compiles_and_runs_with_inductor_freezing(model_dir, h2z, monkeypatch):
    # freezing pre-packs the weights once (pix2pix's U-Net: 4x); torch.compile's options= did not apply it
    import torch._inductor.config as inductor_config

    seen = []

    def recording(fn, **kw):
        def run(*a, **k):
            seen.append(inductor_config.freezing)
            return fn(*a, **k)
        return run

    monkeypatch.setattr(torch, "compile", recording)
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("compile", sample=_image(h2z))
    assert choice.name == "compile" and seen and all(seen)
    assert inductor_config.freezing is False  # only while the compiled method runs


def test_missing_onnxruntime_falls_back_naming_torch(model_dir, int8_file, h2z, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("int8", sample=_image(h2z))
    assert pipe.runtime == "torch" and "onnxruntime is not installed" in choice.note
    assert choice.note.endswith("running torch instead")


def test_an_explicit_runtime_outside_its_bound_runs_torch_and_says_it_changes_the_picture(model_dir, int8_file,
                                                                                           h2z, monkeypatch):
    made = None  # the module's model folder is shared: an ONNX file left there changes later tests
    if accel.exported_file(model_dir, styleforge.load(model_dir).method, "onnx") is None:
        made = model_dir / "cyclegan-AtoB.onnx"
        export_model(model_dir, made, "onnx")
    monkeypatch.setattr(accel, "MIN_PSNR", 500.0)         # int8 (lossy): outside however close
    monkeypatch.setattr(accel, "EXACT_MAX_DIFF", -1.0)    # onnx (fp32): any difference is outside
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    want = styleforge.load(model_dir)(x)
    try:
        for runtime, bound in (("int8", "PSNR ≥ 500 dB"), ("onnx", "max |Δ| ≤ -1")):
            pipe = styleforge.load(model_dir)
            choice = pipe.use_runtime(runtime, sample=_image(h2z))
            assert choice.name == pipe.runtime == "torch", (runtime, choice.note)
            assert f"{runtime} changes this model's picture" in choice.note and bound in choice.note
            assert choice.note.endswith("running torch instead") and "\n" not in choice.note
            torch.testing.assert_close(pipe(x), want, rtol=0, atol=0)  # eager itself, not the file
    finally:
        if made is not None:
            made.unlink(missing_ok=True)


def test_inductor_cache_goes_to_styleforges_cache_unless_the_user_chose_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    accel.use_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "styleforge" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    accel.use_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


def test_optimisation_methods_take_no_runtime_but_eager():
    from styleforge import config as C
    from styleforge.pipeline import Pipeline

    cfg = C.resolve("tiny/gatys")
    pipe = Pipeline(build_method(cfg["method"], **cfg["model"]), device="cpu")
    choice = pipe.use_runtime("compile")
    assert pipe.runtime == "torch" and "does not apply" in choice.note


@pytest.mark.parametrize("preset", ["tiny/pix2pix", "tiny/ugatit-light"])
def test_bf16_paths_cast_conv_weights_once_and_give_autocasts_output_bit_for_bit(preset, h2z):
    # pix2pix: Conv2d and ConvTranspose2d; U-GAT-IT: its CAM reads a 1x1 conv's weight itself
    from styleforge import config as C
    from styleforge.data.images import load_rgb
    from styleforge.data.transforms import to_tensor
    from styleforge.pipeline import Pipeline

    torch.manual_seed(0)
    cfg = C.resolve(preset)
    method = build_method(cfg["method"], **cfg["model"]).eval()
    pipe = Pipeline(method, device="cpu")
    pipe.use_runtime("torch", bf16=True)
    x = to_tensor(load_rgb(_image(h2z)).resize((64, 64)))[None]  # in [-1, 1]
    kw = {i.name: 0 for i in pipe.inputs if i.kind == "seed"}  # pix2pix: the same dropout noise

    autocast_only = Pipeline(method, device="cpu")
    autocast_only.amp = True  # bf16 autocast casting the fp32 weights at every call

    def both():
        with torch.inference_mode():
            return pipe.run_tensor(x, **kw)[0]["image"], autocast_only.run_tensor(x, **kw)[0]["image"]

    ours, ref = both()
    assert pipe.runtime == "torch+bf16" and pipe.method is not method
    assert torch.equal(ours, ref)
    copies = [m for m in pipe.method.modules() if "_weight16" in m.__dict__]
    assert copies and all(m.__dict__["_weight16"][2].dtype == torch.bfloat16 for m in copies)
    # the fp32 method is the reference: its weights stay fp32, shared with the copy, not duplicated
    assert all(p.dtype == torch.float32 for p in method.parameters())
    assert {id(p) for p in pipe.method.parameters()} == {id(p) for p in method.parameters()}
    with torch.no_grad():  # weights changed in place (an encoder loading at its first call)
        for p in method.parameters():
            p.mul_(0.5)
    ours, ref = both()
    assert torch.equal(ours, ref)


@pytest.mark.skipif(not os.environ.get("STYLEFORGE_COMPILE_TESTS"),
                    reason="torch.compile takes 20-100 s on a 2-core box; STYLEFORGE_COMPILE_TESTS=1 runs it")
def test_compile_matches_eager_exactly(model_dir, h2z):
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("compile", sample=_image(h2z))
    assert choice.name == "compile", choice.note
    row = _rows(choice)["compile"]
    assert row["max_diff"] <= accel.EXACT_MAX_DIFF and row["setup_s"] > 0


# ---- the command line ------------------------------------------------------------------------------
def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "styleforge", *map(str, args)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})})


def test_translate_runtime_onnx_without_a_file_says_so_and_runs_torch(model_dir, h2z, tmp_path):
    r = _cli("translate", model_dir, _image(h2z), "-o", tmp_path / "o", "--runtime", "onnx", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "no onnx file beside" in r.stderr and "running torch instead" in r.stderr
    assert "Traceback" not in r.stderr and (tmp_path / "o" / _image(h2z).name).exists()


def test_a_model_name_with_runtime_onnx_loads_the_pulled_directory_like_a_path(model_dir, h2z, tmp_path):
    """translate NAME --runtime onnx: the name resolves to its pulled directory, which loads as
    PyTorch and says there is no ONNX file beside it, as a directory given by path does."""
    import shutil

    shutil.copytree(model_dir, tmp_path / "w" / "models" / "cyclegan" / "horse2zebra")
    r = _cli("translate", "cyclegan/horse2zebra", _image(h2z), "-o", tmp_path / "o", "--runtime", "onnx",
             "--quiet", env={"STYLEFORGE_WEIGHTS": str(tmp_path / "w")})
    assert r.returncode == 0, r.stderr
    assert "no onnx file beside" in r.stderr and "running torch instead" in r.stderr
    assert (tmp_path / "o" / _image(h2z).name).exists()


def test_use_runtime_again_switches_the_path_of_a_model_directory(model_dir, h2z):
    """A pipeline of a model directory can change its path: bf16, then back to fp32 eager (it
    said 'is a torch+bf16 file'), whose output is eager's exactly."""
    pipe = styleforge.load(model_dir)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    want = pipe(x)
    assert pipe.use_runtime("torch", bf16=True).name == "torch+bf16"
    assert not torch.equal(pipe(x), want)
    assert pipe.use_runtime("torch").name == pipe.runtime == "torch"
    torch.testing.assert_close(pipe(x), want, rtol=0, atol=0)
    assert pipe.use_runtime("onnx", sample=_image(h2z)).name == "torch"  # no file beside it: a note, torch


def test_an_exported_file_keeps_its_own_runtime(int8_file):
    from styleforge.errors import ConfigError

    pipe = styleforge.load(int8_file)
    assert pipe.use_runtime("auto").name == pipe.runtime == "int8"
    assert "--bf16 applies to PyTorch paths only" in pipe.use_runtime("auto", bf16=True).note
    with pytest.raises(ConfigError, match="is an int8 file"):
        pipe.use_runtime("compile")
    with pytest.raises(ConfigError, match="is an onnx file, not torchscript"):
        styleforge.load(int8_file, runtime="torchscript")


def test_auto_with_bf16_tries_only_bf16_paths(model_dir, h2z, cache):
    choice = styleforge.load(model_dir).use_runtime("auto", bf16=True, sample=_image(h2z), images=1)
    assert set(_rows(choice)) == {"torch", "torch+bf16", "channels_last+bf16"}
    assert choice.name in ("torch+bf16", "channels_last+bf16", "torch")


def test_translate_auto_says_which_runtime_it_took(model_dir, h2z, tmp_path):
    r = _cli("translate", model_dir, _image(h2z), "-o", tmp_path / "o", "--runtime", "auto", "--quiet",
             env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("runtime: auto took"))
    took = line.split("auto took ")[1].split(" ")[0]
    assert took.split("+")[0] in ("torch", "channels_last", "int8")  # one image: compile is not tried
    assert (tmp_path / "cache" / "styleforge" / "runtimes.json").is_file()


def test_export_int8_without_calibration_images_is_one_line(model_dir, tmp_path):
    r = _cli("export", model_dir, "--int8", "-o", tmp_path / "q.onnx")
    assert r.returncode == 2 and "--int8 needs --calibrate DIR" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and not (tmp_path / "q.onnx").exists()


def test_export_int8_with_only_unreadable_images_is_one_line(model_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    (bad / "b.jpg").write_bytes(b"")
    r = _cli("export", model_dir, "--int8", "--calibrate", bad, "-o", tmp_path / "q.onnx")
    assert r.returncode == 2 and "none of its 2 image(s) could be read" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and not (tmp_path / "q.onnx").exists()


def test_export_int8_skips_unreadable_images_in_one_line_each(model_dir, h2z, tmp_path):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(h2z / "testA", mixed)
    (mixed / "zz_broken.png").write_bytes(b"not a png")
    r = _cli("export", model_dir, "--int8", "--calibrate", mixed, "--min-psnr", str(INT8_TEST_PSNR),
             "-o", tmp_path / "q.onnx")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr and "zz_broken.png" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "q.onnx").is_file() and "int8 onnx" in r.stdout


def test_runtime_choice_rejects_an_unknown_name(model_dir):
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrt'"):
        styleforge.load(model_dir).use_runtime("tensorrt")


def test_translate_auto_measures_on_the_first_readable_input(model_dir, h2z, tmp_path):
    import shutil

    src = tmp_path / "in"
    src.mkdir()
    (src / "a_empty.jpg").write_bytes(b"")
    shutil.copy(_image(h2z), src / "b.jpg")
    r = _cli("translate", model_dir, src, "-o", tmp_path / "o", "--runtime", "auto", "--quiet",
             env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    assert "runtime: auto took" in r.stderr and "a_empty.jpg" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "o" / "b.jpg").exists()


def test_auto_without_a_sample_measures_on_an_image_of_the_models_channels(model_dir, tmp_path, cache):
    """A server chooses before any request: the synthetic sample has the model's 3 channels (it
    took an Input's mask ``channels``, 1, and every 3-channel model failed in its first conv),
    and a grey-input model gets one channel."""
    pipe = styleforge.load(model_dir)
    choice = pipe.use_runtime("auto", candidates=("torch", "channels_last"))
    assert choice.name in ("torch", "channels_last", "torch+bf16", "channels_last+bf16")
    assert pipe._sample(None, 32).shape == (1, 3, 32, 32)
    torch.manual_seed(0)
    save_model(tmp_path / "grey", build_method("pix2pix", netG="unet_64", ngf=4, ndf=4, in_channels=1))
    grey = styleforge.load(tmp_path / "grey")
    assert grey.method.image_channels == 1 and grey._sample(None, 64).shape == (1, 1, 64, 64)
    grey.use_runtime("auto", candidates=("torch",))
