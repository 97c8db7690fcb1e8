"""``--runtime auto``'s batch size (Pipeline.choose_batch, accel.pick_batch): the size measured
fastest per image, stopping when a larger batch is not faster; refused where a batch changes an
image's output; cached by model, image size, path and device; an explicit --batch-size wins.
Timings are injected (a fake clock that a call of batch B advances by a set cost): no test
asserts a speed."""
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

import styleforge
from styleforge import accel
from styleforge.batch import BatchOptions, Shard, equal_size_images, translate_files
from styleforge.cli import main

JOB = accel.BATCH_MIN_IMAGES  # equal-size images enough to measure batches for an eager path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "styleforge" / "runtimes.json"


@pytest.fixture
def image(h2z):
    return sorted((h2z / "testA").iterdir())[0]


def fake_timing(monkeypatch, pipe, cost: dict[int, float]) -> list[int]:
    """accel.CLOCK stands still but for the network: a call on a batch of B adds ``cost[B]``
    seconds. Returns the batch sizes called, in order."""
    now, calls = [0.0], []
    monkeypatch.setattr(accel, "CLOCK", lambda: now[0])
    real = pipe.method.translate

    def translate(x, *a, **k):
        now[0] += cost[len(x)]
        calls.append(len(x))
        return real(x, *a, **k)

    monkeypatch.setattr(pipe.method, "translate", translate)
    return calls


def loaded(model_dir):
    pipe = styleforge.load(model_dir)
    pipe.use_runtime("torch")
    return pipe


def test_pick_batch_takes_the_fastest_per_image_and_stops_at_the_first_larger_batch_not_faster():
    asked = []

    def per_image(times):
        return lambda b: asked.append(b) or times[b]

    assert accel.pick_batch(per_image({1: 1.0, 2: 0.7, 4: 0.8}))[0] == 2
    assert accel.pick_batch(per_image({1: 1.0, 2: 0.8, 4: 0.5}))[0] == 4
    asked.clear()
    best, times = accel.pick_batch(per_image({1: 1.0, 2: 1.0, 4: 0.1}))
    assert best == 1 and asked == [1, 2] and 4 not in times  # not faster at 2: 4 is not measured
    assert accel.pick_batch(per_image({1: 1.0, 2: 0.99, 4: 0.98}))[0] == 1  # within the timing noise
    assert accel.pick_batch(lambda b: {1: 1.0, 2: None, 4: 0.1}[b])[0] == 1  # refused at 2


def test_chooser_takes_batch_2_where_measured_faster_per_image(tiny_cyclegan_dir, image, cache, monkeypatch):
    pipe = loaded(tiny_cyclegan_dir)
    calls = fake_timing(monkeypatch, pipe, {1: 1.0, 2: 1.4, 4: 4.0})  # per image: 1, 0.7, 1.0
    choice = pipe.choose_batch(image, images=JOB)
    assert choice.size == 2 and not choice.cached
    assert choice.per_image == pytest.approx({1: 1.0, 2: 0.7, 4: 1.0})
    assert choice.note.startswith("batch size: auto took 2 (measured on 128×128 with torch:")
    assert "\n" not in choice.note and set(calls) == {1, 2, 4}


def test_chooser_keeps_batch_1_where_batching_is_not_faster(tiny_cyclegan_dir, image, cache, monkeypatch):
    pipe = loaded(tiny_cyclegan_dir)
    calls = fake_timing(monkeypatch, pipe, {1: 1.0, 2: 2.0, 4: 4.0})
    choice = pipe.choose_batch(image, images=JOB)
    assert choice.size == 1 and "auto took 1" in choice.note
    assert 4 not in calls  # stopped after batch 2


def test_short_jobs_gpus_and_long_compiles_are_not_measured(tiny_cyclegan_dir, image, cache, monkeypatch):
    pipe = loaded(tiny_cyclegan_dir)
    calls = fake_timing(monkeypatch, pipe, {1: 1.0, 2: 1.0, 4: 1.0})
    assert pipe.choose_batch(image, images=JOB - 1).size is None and not calls and not cache.exists()
    # compile: the two new shapes' compiles (20 s each here) must be a tenth of the job at most
    row = {"seconds": 0.1, "setup_s": 20.1}
    assert not accel.batch_worth_measuring(100, "compile+bf16", row)
    assert accel.batch_worth_measuring(4000, "compile+bf16", row)
    assert not accel.batch_worth_measuring(4000, "compile", None)  # compile cost unknown
    assert accel.batch_worth_measuring(JOB, "channels_last", None)


def test_cached_choice_is_reused_without_measuring_for_its_size_only(tiny_cyclegan_dir, image, cache, monkeypatch):
    first = loaded(tiny_cyclegan_dir)
    fake_timing(monkeypatch, first, {1: 1.0, 2: 1.4, 4: 4.0})
    assert first.choose_batch(image, images=JOB).size == 2
    entries = [e for e in json.loads(cache.read_text()).values() if "batch" in e]
    assert [(e["batch"], e["runtime"], e["shape"]) for e in entries] == [(2, "torch", [1, 3, 128, 128])]

    again = loaded(tiny_cyclegan_dir)
    calls = fake_timing(monkeypatch, again, {1: 1.0, 2: 2.0, 4: 4.0})  # would choose 1 if measured
    second = again.choose_batch(image, images=JOB)
    assert second.cached and second.size == 2 and not calls and "measured earlier" in second.note
    # another image size is another key: measured, and this time batching is not faster
    third = again.choose_batch(image, size=64, images=JOB)
    assert not third.cached and third.size == 1 and calls
    # another path too
    again.use_runtime("torch", bf16=True)
    assert not again.choose_batch(image, images=JOB).cached


def test_batch_that_changes_an_images_output_is_refused(tiny_cyclegan_dir, image, cache, monkeypatch):
    pipe = loaded(tiny_cyclegan_dir)
    real = pipe.method.translate
    # a network that mixes the batch (statistics over images): alone, each image is its own
    monkeypatch.setattr(pipe.method, "translate", lambda x, *a, **k: real(x + 0.5 * (x.mean(0) - x), *a, **k))
    fake_timing(monkeypatch, pipe, {1: 1.0, 2: 1.0, 4: 1.0})
    choice = pipe.choose_batch(image, images=JOB)
    assert choice.size == 1 and choice.per_image[2] is None
    assert "batch 2 refused (max |Δ|" in choice.note


def test_equal_size_images_counts_the_most_common_header_size(tmp_path):
    files = []
    for i, size in enumerate([(32, 32)] * 5 + [(40, 28)] * 2):
        files.append(tmp_path / f"{i}.png")
        Image.new("RGB", size).save(files[-1])
    (tmp_path / "bad.jpg").write_bytes(b"")
    assert equal_size_images(files + [tmp_path / "bad.jpg"]) == 5
    assert equal_size_images(files, probe=4) == 7  # the first 4 all alike: the list is taken as alike


class Recording:
    """A translator that says it compiles each batch shape, recording the shapes it is given."""

    def __init__(self, pipe):
        self.pipe, self.device, self.static_batch, self.sizes = pipe, pipe.device, True, []

    def run_tensor(self, x, *a, **k):
        self.sizes.append(len(x))
        return self.pipe.run_tensor(x, *a, **k)


def test_compiled_network_gets_the_short_last_batch_in_powers_of_two_with_the_same_outputs(
        tiny_cyclegan_dir, image, tmp_path):
    files = [image] * 7
    names = [f"{i}.png" for i in range(7)]
    opts = BatchOptions(direction="AtoB", batch_size=4, block_size=8, workers=0, progress=False)
    rec = Recording(styleforge.load(tiny_cyclegan_dir))
    translate_files(rec, files, names, tmp_path / "static", opts, shard=Shard())
    assert rec.sizes == [4, 2, 1]  # not 4, 3: a shape of 3 would compile again
    rec.static_batch, rec.sizes = False, []
    translate_files(rec, files, names, tmp_path / "eager", opts, shard=Shard())
    assert rec.sizes == [4, 3]
    for n in names:
        a, b = (np.asarray(Image.open(tmp_path / d / n), dtype=int) for d in ("static", "eager"))
        assert np.abs(a - b).max() <= 1


@pytest.mark.skipif(not os.environ.get("STYLEFORGE_COMPILE_TESTS"),
                    reason="torch.compile takes 20-100 s a shape on a 2-core box; STYLEFORGE_COMPILE_TESTS=1 runs it")
def test_compiled_path_compiles_each_new_batch_shape_and_keeps_each_images_output(tiny_cyclegan_dir, image, cache,
                                                                                 monkeypatch):
    monkeypatch.setattr(accel, "BATCH_MIN_GAIN", -math.inf)  # batches 2 and 4 tried whatever their speed
    pipe = styleforge.load(tiny_cyclegan_dir)
    assert pipe.use_runtime("compile", sample=image).name == "compile"
    choice = pipe.choose_batch(image, images=10 ** 9)  # a job long enough to pay the compiles
    assert choice.size == 4 and pipe.static_batch, choice.note  # 4: its outputs equal each image's alone
    assert "batch 2" in choice.note and "compiled in" in choice.note


# ---- the command line ------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path, image):
    d = tmp_path / "in"
    d.mkdir()
    with Image.open(image) as im:
        im = im.convert("RGB").resize((32, 32))
        for i in range(JOB):
            im.save(d / f"img{i:03d}.png")
    return d


def _cli_batch_size(monkeypatch, args) -> dict:
    """What ``styleforge translate`` asks the chooser (``images``) and gives translate_files
    (``batch``), the chooser stubbed to take 2."""
    import styleforge.batch as batch
    from styleforge.pipeline import Pipeline

    seen = {}

    def choose_batch(self, *a, images=None, **k):
        seen["images"] = images
        return accel.BatchChoice(2, "batch size: auto took 2 (stub)")

    real = batch.translate_files

    def translate_files(translator, files, names, out, opts, **k):
        seen["batch"] = opts.batch_size
        return real(translator, files, names, out, opts, **k)

    monkeypatch.setattr(Pipeline, "use_runtime", lambda self, *a, **k: accel.Choice("torch", ""))
    monkeypatch.setattr(Pipeline, "choose_batch", choose_batch)
    monkeypatch.setattr(batch, "translate_files", translate_files)
    assert main(["translate", *map(str, args), "--quiet", "--workers", "0"]) == 0
    return seen


def test_translate_auto_runs_the_chosen_batch_size_and_says_so(tiny_cyclegan_dir, folder, tmp_path,
                                                               monkeypatch, capsys):
    seen = _cli_batch_size(monkeypatch, [tiny_cyclegan_dir, folder, "-o", tmp_path / "o", "--runtime", "auto"])
    assert seen == {"images": JOB, "batch": 2}
    assert "batch size: auto took 2" in capsys.readouterr().err
    assert len(list((tmp_path / "o").iterdir())) == JOB


def test_an_explicit_batch_size_wins_over_auto(tiny_cyclegan_dir, folder, tmp_path, monkeypatch, capsys):
    seen = _cli_batch_size(monkeypatch, [tiny_cyclegan_dir, folder, "-o", tmp_path / "o", "--runtime", "auto",
                                         "--batch-size", "3"])
    assert seen == {"batch": 3} and "batch size: auto" not in capsys.readouterr().err
