"""Batch translation at scale (styleforge.batch): streaming in blocks, equal-size batches, bad
files skipped and counted, exact resume, torchrun sharding. A folder of a few hundred small
real images made from the bundled sample; a tiny random CycleGAN."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge.batch import BatchOptions, translate_files
from styleforge.commands.inputs import output_name

SIZES = [(32, 32), (32, 32), (40, 28), (24, 36)]  # mostly one size, some others: several groups per block
N_GOOD = 300
BAD = {"truncated.jpg": "truncated", "notes.png": "not an image", "empty.jpg": "empty file"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    h2z = Path(__file__).resolve().parents[1] / "data" / "horse2zebra"  # the bundled sample
    src = sorted(p for sub in ("trainA", "trainB", "testA", "testB") for p in (h2z / sub).iterdir())
    d = tmp_path_factory.mktemp("batch") / "in"
    d.mkdir()
    for i in range(N_GOOD):
        with Image.open(src[i % len(src)]) as im:
            im = im.convert("RGB").resize(SIZES[i % len(SIZES)], Image.BICUBIC)
            im.save(d / f"img{i:04d}{'.png' if i % 3 == 0 else '.jpg'}", quality=90)
    (d / "truncated.jpg").write_bytes(src[0].read_bytes()[:400])
    (d / "notes.png").write_text("not an image")
    (d / "empty.jpg").write_bytes(b"")
    return d


def jobs(folder):
    files = sorted(folder.iterdir())
    return files, [output_name(f) for f in files]


def opts(**kw):
    base = dict(direction="AtoB", batch_size=4, block_size=16, workers=2, progress=False)
    return BatchOptions(**{**base, **kw})


@pytest.fixture(scope="module")
def reference(folder, tiny_cyclegan_dir, tmp_path_factory):
    """One uninterrupted single-process run."""
    out = tmp_path_factory.mktemp("ref") / "out"
    files, names = jobs(folder)
    r = translate_files(styleforge.load(tiny_cyclegan_dir), files, names, out, opts())
    return out, r


def test_batch_run_writes_every_readable_image_and_counts_the_bad_ones(reference, folder, capfd):
    out, r = reference
    assert (r.translated, r.skipped, r.resumed) == (N_GOOD, len(BAD), 0)
    good = [n for n in jobs(folder)[1] if not any(n.startswith(Path(b).stem) for b in BAD)]
    assert sorted(p.name for p in out.iterdir()) == sorted(good)  # no temporary files left


def test_batched_outputs_match_the_api_image_by_image(reference, folder, tiny_cyclegan_dir):
    out, _ = reference
    pipe = styleforge.load(tiny_cyclegan_dir)
    for f in sorted(folder.glob("img000*"))[:6]:
        api = pipe(f, direction="AtoB")
        if f.suffix == ".jpg":  # encoded as the batch job encodes (JPEG quality 95)
            buf = io.BytesIO()
            api.save(buf, format="JPEG", quality=95)
            api = Image.open(buf)
        want = np.asarray(api.convert("RGB"), dtype=int)
        with Image.open(out / output_name(f)) as im:
            got = np.asarray(im.convert("RGB"), dtype=int)
        assert got.shape == want.shape
        # a batched convolution may differ from a lone image's in the last float32 bit, which
        # flips a pixel's rounding now and then (and JPEG spreads such a flip over its block)
        assert np.abs(got - want).mean() < 0.05
        if f.suffix == ".png":
            assert np.abs(got - want).max() <= 1


class Recording:
    """A translator that records the (height, width) of every batch the network is given."""

    def __init__(self, pipe):
        self.pipe, self.device, self.shapes = pipe, pipe.device, []

    def run_tensor(self, x, *args, **kw):
        self.shapes += [tuple(x.shape[-2:])] * x.shape[0]
        return self.pipe.run_tensor(x, *args, **kw)


def test_size_option_runs_the_network_at_the_reduced_size_and_equals_the_api_at_that_size(folder,
                                                                                         tiny_cyclegan_dir, tmp_path):
    files = sorted(folder.glob("img*"))[:8]  # every size of SIZES, twice
    names = [output_name(f) for f in files]
    pipe = styleforge.load(tiny_cyclegan_dir)
    small, full = Recording(pipe), Recording(pipe)
    translate_files(small, files, names, tmp_path / "small", opts(size=20, workers=0))
    translate_files(full, files, names, tmp_path / "full", opts(workers=0))
    # longer side 20, aspect kept: 32x32 -> 20x20, 40x28 -> 20x14, 24x36 -> 13x20 (as h, w)
    want = sorted({(32, 32): (20, 20), (40, 28): (14, 20), (24, 36): (20, 13)}[SIZES[i % len(SIZES)]]
                  for i in range(len(files)))
    assert sorted(small.shapes) == want
    assert sorted(full.shapes) == sorted((h, w) for w, h in (SIZES[i % len(SIZES)] for i in range(len(files))))
    for f, n in zip(files, names):
        with Image.open(f) as a, Image.open(tmp_path / "small" / n) as b, Image.open(tmp_path / "full" / n) as c:
            assert a.size == b.size == c.size
            # translated at 20 px and scaled back up, not the full-size translation
            assert np.abs(np.asarray(b, dtype=int) - np.asarray(c, dtype=int)).mean() > 5
            # and what the API gives for that file at --size 20, pixel for pixel
            api = pipe.run(f, size=20, direction="AtoB")[0]["image"]
            if f.suffix == ".jpg":  # encoded as the batch job encodes (JPEG quality 95)
                buf = io.BytesIO()
                api.save(buf, format="JPEG", quality=95)
                api = Image.open(buf)
            diff = np.abs(np.asarray(b.convert("RGB"), dtype=int) - np.asarray(api.convert("RGB"), dtype=int))
            assert diff.max() == 0, (f.name, diff.max())


class StopAfter:
    """A translator that counts the images it translates and is 'interrupted' (Ctrl-C) at a
    given call."""

    def __init__(self, pipe, stop_at=None):
        self.pipe, self.stop_at, self.calls, self.images = pipe, stop_at, 0, 0
        self.device = pipe.device

    def run_tensor(self, x, *args, **kw):
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        self.images += x.shape[0]
        return self.pipe.run_tensor(x, *args, **kw)


def test_resume_keeps_finished_outputs_and_equals_an_uninterrupted_run(reference, folder, tiny_cyclegan_dir, tmp_path):
    ref, _ = reference
    files, names = jobs(folder)
    pipe = styleforge.load(tiny_cyclegan_dir)
    out = tmp_path / "out"
    # interrupted at the 12th forward pass: the last batch of the third block (a block holds
    # three size groups, four batches), so that block is cut short
    with pytest.raises(KeyboardInterrupt):
        translate_files(StopAfter(pipe, stop_at=12), files, names, out, opts())
    first = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.iterdir()}
    assert 0 < len(first) < N_GOOD and not any(n.startswith(".") for n in first)
    # a write that a kill cut short leaves only a hidden temporary file: resume removes it
    missing = next(n for n in names if n not in first and n.startswith("img"))
    (out / f".{missing}.abc123xy.tmp").write_bytes(b"partial")

    with pytest.raises(Exception, match="already exist.*--resume"):
        translate_files(pipe, files, names, out, opts())
    counting = StopAfter(pipe)
    r = translate_files(counting, files, names, out, opts(resume=True))
    assert r.resumed == len(first) and r.translated == N_GOOD - len(first) and r.skipped == len(BAD)
    # only the unfinished block is translated again, the finished blocks are not even read
    assert counting.images < N_GOOD - len(first) + 16
    for name, stamp in first.items():  # finished outputs untouched
        p = out / name
        assert (p.stat().st_mtime_ns, p.stat().st_ino) == stamp
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())
    for p in ref.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    # nothing left to do
    again = StopAfter(pipe)
    r = translate_files(again, files, names, out, opts(resume=True))
    assert (r.translated, r.resumed, again.images) == (0, N_GOOD, 0)


def test_torchrun_two_processes_write_each_output_once_and_equal_one_process(reference, folder, tiny_cyclegan_dir,
                                                                                tmp_path):
    ref, _ = reference
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "STYLEFORGE_DEVICE": "cpu"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "styleforge", "translate", str(tiny_cyclegan_dir), str(folder), "-o", str(out),
                        "--batch-size", "4", "--workers", "1", "--quiet", "--direction", "AtoB",
                        "--block-size", "16"],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    # counts summed over ranks: 300 writes for 300 distinct files = each written exactly once
    assert f"translated {N_GOOD} image(s) AtoB" in r.stdout and f"skipped {len(BAD)} unreadable" in r.stdout
    assert r.stdout.count("translated ") == 1  # one summary, from rank 0
    assert sum("skipped: cannot read image" in line for line in r.stderr.splitlines()) == len(BAD)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())
    assert_same_outputs(ref, out)


def assert_same_outputs(ref: Path, out: Path) -> None:
    """Every output in ``out`` is the single-process one. Two processes form the same batches, but
    a CPU BLAS need not round a float32 sum the same way in another process (oneDNN and MKL pick
    kernels and thread splits at run time; CI once saw one JPEG of 300 differ): a last-bit
    difference flips an 8-bit level now and then, and JPEG spreads such a flip over its block. A
    wrong shard (another image, another direction, a missed or doubled batch) differs by tens of
    levels everywhere."""
    for p in sorted(ref.iterdir()):
        with Image.open(p) as a, Image.open(out / p.name) as b:
            want, got = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
        assert got.shape == want.shape, p.name
        diff = np.abs(got - want)
        if p.suffix == ".png":
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01, p.name
        else:
            assert diff.mean() < 0.05, p.name
