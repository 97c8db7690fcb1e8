"""Translating large folders: streaming, batching, resume, sharding (``styleforge translate``).

The inputs are cut into *blocks* of ``block_size`` consecutive files (default 4 × the batch
size). A block is one DataLoader item: a worker decodes its images (:func:`load_rgb`, so every
mode becomes RGB and unreadable files become one skip message each), the main process groups
them by size and runs each size group through the network in batches of at most
``batch_size``; a thread pool encodes and writes the outputs atomically (temporary file +
rename), so an output file that exists is a finished one. Memory is bounded by the blocks in
flight (``workers × 2`` prefetched + the one being translated) and the writes queued.

Why blocks rather than a global sort by size: no header pass over tens of thousands of files
before the first output, and a batch's members are a function of the input list alone. That
is what makes resume and sharding exact: a batched convolution can differ from the same image
alone in the last bit of float32, so the same image must always meet the same batch.

* **Resume** (``resume=True``): a block whose outputs all exist is not even read; a block cut
  short is translated again but its finished outputs are not rewritten (a block whose only
  missing outputs belong to unreadable files is read, to find that out, but not translated).
  Stray temporary files of an interrupted write are removed. The outputs equal those of an
  uninterrupted run.
* **Sharding**: under ``torchrun`` (``WORLD_SIZE`` > 1) block ``i`` goes to rank
  ``i % world_size``: the ranks' inputs are disjoint and together cover the list, and every
  output is the one a single process would write. gloo carries only the final counts (and a
  barrier after the overwrite check). With CUDA, each rank uses ``cuda:LOCAL_RANK``.

What a job translates is a list of *jobs*, one per input file and combination of per-file
inputs: the options fixed for the folder (``values``: ``--alpha 0.5``, ``--direction BtoA``)
apply to every job; a *grid* (``grid={"style": [s1, s2, ...]}``: a style folder against a
content folder) makes one job per content × style pair, written ``CONTENT__STYLE.EXT``; with
``num_outputs`` N each job writes ``NAME_k.EXT`` for k < N; optional outputs add
``NAME_<output>.EXT`` (the heatmap). Blocks, batches, resume and sharding work on jobs exactly
as on files: a batch holds jobs of one block with the same size and the same per-job inputs.

The batch size: ``--batch-size``, else on CPU ``--runtime auto``'s measured choice for jobs with
enough equal-size images (:meth:`styleforge.pipeline.Pipeline.choose_batch`, from
:func:`equal_size_images`), else 1 on CPU and 8 on GPU. A translator whose network compiles each
new batch shape (``static_batch``: torch.compile) gets a group's shorter last batch cut into
powers of two (3 = 2 + 1), so a job compiles at most log2(batch size) + 1 shapes.

The network is reached through a *translator*: an object with ``run_tensor(x, num_outputs,
outputs, labels, **values)`` as :class:`styleforge.pipeline.Pipeline` has (N×C×H×W float
tensors in [-1, 1] in, one dict of named outputs per sample out).
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data.images import load_rgb
from .errors import CheckpointError, ConfigError, ImageLoadError
from .pipeline import as_input, as_picture, sized
from .utils.device import torchrun_rank

TMP_SUFFIX = ".tmp"  # save_image_atomic writes ".{name}.XXXXXXXX.tmp" beside the output


@dataclass
class BatchOptions:
    direction: str | None = None
    batch_size: int | None = None  # default: 1 on CPU, 8 on GPU (translate --runtime auto measures 1, 2, 4 on CPU)
    block_size: int | None = None  # files per block; default 4 × batch_size
    workers: int | None = None  # DataLoader workers; default min(4, CPUs)
    size: int | None = None  # resize the longer side first (outputs keep the original size)
    resume: bool = False  # skip finished outputs
    overwrite: bool = False  # replace existing outputs
    amp: bool = False  # bf16 autocast around the network
    progress: bool = True
    error_on_single_bad: bool = False  # one input that cannot be read is an error, not a skip
    heatmaps: bool = False  # also write the attention map as NAME_heatmap.EXT (has_heatmaps methods)
    num_outputs: int = 1  # samples per input (methods with a code or seed): NAME_k.EXT
    outputs: tuple = ()  # optional outputs to write beside the image (e.g. ("heatmap",))
    labels: dict = field(default_factory=dict)  # how errors name each input (the CLI's --flags)

    def wanted(self) -> tuple[str, ...]:
        extra = tuple(self.outputs) + (("heatmap",) if self.heatmaps and "heatmap" not in self.outputs else ())
        return ("image", *extra)


@dataclass
class BatchResult:
    translated: int = 0  # outputs written by this run (all ranks)
    resumed: int = 0  # outputs already there (resume)
    skipped: int = 0  # unreadable inputs
    seconds: float = 0.0

    def summary(self, direction: str | None, out) -> str:
        s = f"translated {self.translated} image(s){' ' + direction if direction else ''} into {out}"
        if self.resumed:
            s += f"; {self.resumed} already done (resumed)"
        if self.skipped:
            s += f"; skipped {self.skipped} unreadable"
        return s


# ---- distributed -----------------------------------------------------------------------------
@dataclass
class Shard:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def sum(self, values: list[int]) -> list[int]:
        if self.world_size == 1:
            return values
        t = torch.tensor(values, dtype=torch.int64)
        torch.distributed.all_reduce(t)
        return [int(v) for v in t]

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def shard_from_env() -> Shard:
    """The shard of this process under ``torchrun`` (gloo), or the whole job."""
    place = torchrun_rank()
    if not place.distributed:
        return Shard()
    import torch.distributed as dist

    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        owns = True
    return Shard(dist.get_rank(), dist.get_world_size(), place.local_rank, owns)


# ---- reading ---------------------------------------------------------------------------------
class _BlockDataset(Dataset):
    """Item ``i``: the decoded images of block ``i`` as ``(index, uint8 C×H×W or None,
    original (w, h), the reason it could not be read or None)``."""

    def __init__(self, files: list[Path], blocks: list[list[int]], size: int | None):
        self.files, self.blocks, self.size = files, blocks, size

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int):
        items = []
        for j in self.blocks[i]:
            try:
                img = load_rgb(self.files[j])
            except ImageLoadError as e:
                items.append((j, None, None, e.reason))
                continue
            orig = img.size
            arr = np.asarray(sized(img, self.size), dtype=np.uint8)
            items.append((j, torch.from_numpy(arr.transpose(2, 0, 1).copy()), orig, None))
        return items


def _identity(x):
    return x


def heatmap_name(name: str) -> str:
    p = Path(name)
    return f"{p.stem}_heatmap{p.suffix}"


def output_names(name: str, num_outputs: int = 1, outputs=("image",), tag: str | None = None) -> list[dict[str, str]]:
    """The files one job writes: per sample k, ``{output: file name}`` (see the module docstring)."""
    from .pipeline import pil_outputs_name

    ks = [None] if num_outputs == 1 else list(range(num_outputs))
    return [{o: pil_outputs_name(name, k, o, tag) for o in outputs} for k in ks]


@dataclass
class Job:
    """One translation: input file ``file``, its own inputs ``values`` (a grid's style), the files
    it writes (``names``: per sample, output -> file name)."""

    file: int
    values: dict
    names: list[dict[str, str]]

    def all_names(self) -> list[str]:
        return [n for sample in self.names for n in sample.values()]


def _stem(v) -> str:
    if isinstance(v, (list, tuple)):  # a several-image input's value: its files' stems
        return "+".join(_stem(x) for x in v)
    return Path(str(v)).stem if isinstance(v, (str, Path)) else str(v)


def make_jobs(names: list[str], opts: BatchOptions, grid: dict | None = None) -> list[Job]:
    """Jobs for input files named ``names``: one per file, or one per file × grid combination
    (content-major order, named ``CONTENT__STYLE``)."""
    wanted = opts.wanted()
    if not grid:
        return [Job(j, {}, output_names(n, opts.num_outputs, wanted)) for j, n in enumerate(names)]
    keys = list(grid)
    jobs = []
    for j, n in enumerate(names):
        for combo in product(*(grid[k] for k in keys)):
            tag = "__".join(_stem(v) for v in combo)
            jobs.append(Job(j, dict(zip(keys, combo)), output_names(n, opts.num_outputs, wanted, tag)))
    return jobs


def check_output_names(files: list[Path], jobs: list[Job]) -> None:
    """A :class:`ConfigError` naming, for each output file that several jobs would write, the
    inputs behind it (``a/x.jpg and b/x.jpg would both write x.jpg``), in one line."""
    writes = []
    for job in jobs:
        src = str(files[job.file]) + "".join(f" with {k}={_stem(v)}" for k, v in job.values.items())
        writes += [(src, n) for n in job.all_names()]
    check_name_clashes(writes)


def check_name_clashes(writes) -> None:
    """``writes``: (input, output name) pairs; a :class:`ConfigError` naming, for each output
    name written by several inputs, those inputs, in one line."""
    sources: dict[str, list[str]] = {}
    for src, n in writes:
        sources.setdefault(n, []).append(src)
    clashes = [(n, srcs) for n, srcs in sorted(sources.items()) if len(srcs) > 1]
    if not clashes:
        return
    said = []
    for n, srcs in clashes[:3]:
        who = ", ".join(srcs[:-1]) + " and " + srcs[-1]
        said.append(f"{who} would {'both' if len(srcs) == 2 else 'all'} write {n}")
    more = f" (and {len(clashes) - 3} more output name(s))" if len(clashes) > 3 else ""
    raise ConfigError("; ".join(said) + more + ": rename one, or translate them into different folders")


def _write(job: Job, samples: list[dict[str, torch.Tensor]], i: int, orig: tuple[int, int], out: Path,
           keep: frozenset = frozenset()) -> None:
    from .utils.images import save_image_atomic

    # optional outputs first, the image last: an image that exists is a finished job (resume);
    # files in ``keep`` (finished by an earlier run) are not rewritten
    for names, sample in zip(job.names, samples):
        for o in sorted(names, key=lambda o: o == "image"):
            if names[o] not in keep:
                save_image_atomic(as_picture(sample[o][i], orig), out / names[o])


def _existing(out: Path) -> set[str]:
    if not out.is_dir():
        return set()
    with os.scandir(out) as it:
        return {e.name for e in it}


def _remove_stale_temps(out: Path, names: set[str], listing: set[str]) -> None:
    """Delete ``.{name}.XXXX.tmp`` left by a killed run, only for this shard's names (another
    rank may be writing its own right now)."""
    for entry in listing:
        if entry.startswith(".") and entry.endswith(TMP_SUFFIX):
            base = entry[1:-len(TMP_SUFFIX)].rpartition(".")[0]
            if base in names:
                (out / entry).unlink(missing_ok=True)


# ---- the job ---------------------------------------------------------------------------------
def check_options(opts: BatchOptions) -> None:
    """A one-line ConfigError for a count below its least value or --resume with --overwrite;
    front ends call it before measuring runtimes too (a batch size left ``None`` is chosen later)."""
    for flag, value, low in (("--batch-size", opts.batch_size, 1), ("--block-size", opts.block_size, 1),
                             ("--size", opts.size, 1), ("--workers", opts.workers, 0)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} must be an integer >= {low}, got {value}")
    if opts.resume and opts.overwrite:
        raise ConfigError("--resume keeps finished outputs and --overwrite replaces them: give one")


def translate_files(translator, files: list[Path], names: list[str], out, opts: BatchOptions,
                    shard: Shard | None = None, grid: dict | None = None, **values) -> BatchResult:
    """Translate ``files[i]`` into ``out / names[i]`` (see the module docstring). ``values``: the
    inputs fixed for the folder; ``grid``: inputs that take each of several values (every
    combination per file)."""
    out = Path(out)
    if len(files) != len(names):
        raise ValueError("files and names differ in length")
    if opts.batch_size is None:
        dev = getattr(translator, "device", torch.device("cpu"))
        opts = replace(opts, batch_size=8 if torch.device(dev).type == "cuda" else 1)
    check_options(opts)
    if opts.direction is not None:
        values.setdefault("direction", opts.direction)
    if hasattr(translator, "check_num_outputs"):
        translator.check_num_outputs(opts.num_outputs, opts.labels.get("num_outputs", "--num-outputs"))
    if hasattr(translator, "check_call"):  # a code a mode ignores, N outputs of nothing random: before any write
        translator.check_call({**values, **{k: vs[0] for k, vs in (grid or {}).items() if vs}}, opts.num_outputs,
                              opts.labels)
    if grid:
        for k, vs in grid.items():
            if not vs:
                raise ConfigError(f"{opts.labels.get(k, k)}: no values to combine")
    jobs = make_jobs(names, opts, grid)
    check_output_names(files, jobs)
    own_shard = shard is None
    shard = shard or shard_from_env()
    try:
        return _run(translator, files, jobs, out, opts, shard, values)
    finally:
        if own_shard:
            shard.close()


def equal_size_images(files: list[Path], probe: int = 64) -> int:
    """About how many of ``files`` share one image size: the most common size among the first
    ``probe`` files' headers (nothing decoded), scaled to the whole list. What ``--runtime auto``
    weighs before measuring batch sizes; a header pass over every file would delay the first
    output of a large folder."""
    from collections import Counter

    from PIL import Image

    sizes = Counter()
    for f in files[:probe]:
        try:
            with Image.open(f) as im:
                sizes[im.size] += 1
        except Exception:  # unreadable: skipped later, one line each
            continue
    if not sizes:
        return 0
    return round(sizes.most_common(1)[0][1] * len(files) / min(len(files), probe))


def _values_key(values: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in values.items()))


def _run(translator, files, jobs: list[Job], out: Path, opts: BatchOptions, shard: Shard, values) -> BatchResult:
    t0 = time.perf_counter()
    listing = _check_outputs(out, jobs, opts)
    shard.barrier()  # every rank has checked before any writes
    out.mkdir(parents=True, exist_ok=True)
    todo, done = _plan(jobs, out, opts, shard, listing)
    loader = _block_loader(translator, files, jobs, todo, opts)
    bar = _progress_bar(sum(len(b) for b in todo), opts, shard)
    static = getattr(translator, "static_batch", False)
    translated = skipped = 0
    with _Writer(out, listing if opts.resume else None, 4 * opts.batch_size) as writer:
        for b, items in zip(todo, loader):
            decoded, bad = _decoded(items, files, opts, bar)
            skipped += sum(1 for q in b if jobs[q].file in bad)
            for group in _size_groups(b, jobs, decoded, done):
                job_values = {**values, **jobs[group[0][0]].values}
                for chunk in _chunks(group, opts.batch_size, static):
                    samples = _translate(translator, [a for _, a, _ in chunk], opts, job_values)
                    for i, (q, _, orig) in enumerate(chunk):
                        if q not in done:
                            writer.submit(jobs[q], samples, i, orig)
                            translated += 1
            bar.update(len(b))
            if skipped:
                bar.set_postfix(skipped=skipped, refresh=False)
    bar.close()
    translated, resumed, skipped = shard.sum([translated, len(done), skipped])
    return BatchResult(translated, resumed, skipped, time.perf_counter() - t0)


def _progress_bar(pending: int, opts: BatchOptions, shard: Shard):
    from tqdm import tqdm

    return tqdm(total=pending, unit="img", file=sys.stderr, dynamic_ncols=True,
                desc=f"rank {shard.rank}/{shard.world_size}" if shard.world_size > 1 else None,
                disable=not opts.progress or shard.rank != 0 or pending < 2)


# ---- reading and grouping ----------------------------------------------------------------------
def _check_outputs(out: Path, jobs: list[Job], opts: BatchOptions) -> set[str]:
    """The names in ``out`` now; an error if some are outputs and neither --resume nor
    --overwrite says what to do with them."""
    listing = _existing(out)
    if not opts.resume and not opts.overwrite:
        existing = [n for job in jobs for n in job.all_names() if n in listing]
        if existing:
            raise ConfigError(f"{len(existing)} output(s) already exist in {out} (e.g. {existing[0]}); "
                              "use --resume to keep them and translate the rest, or --overwrite to replace them")
    return listing


def _plan(jobs: list[Job], out: Path, opts: BatchOptions, shard: Shard, listing: set[str]):
    """(this shard's blocks with something left to do, the jobs of them already done)."""
    block = opts.block_size or 4 * opts.batch_size
    blocks = [list(range(s, min(s + block, len(jobs)))) for s in range(0, len(jobs), block)]
    mine = blocks[shard.rank::shard.world_size]
    done = {q for b in mine for q in b if opts.resume and all(n in listing for n in jobs[q].all_names())}
    if opts.resume:
        _remove_stale_temps(out, {n for b in mine for q in b for n in jobs[q].all_names()}, listing)
    return [b for b in mine if any(q not in done for q in b)], done


def _block_loader(translator, files, jobs: list[Job], todo: list[list[int]], opts: BatchOptions) -> DataLoader:
    # a block is decoded as the files its jobs read (each file once)
    file_blocks = [sorted({jobs[q].file for q in b}) for b in todo]
    workers = min(4, os.cpu_count() or 1) if opts.workers is None else opts.workers
    workers = min(workers, len(todo))
    return DataLoader(_BlockDataset(files, file_blocks, opts.size), batch_size=None, shuffle=False,
                      num_workers=workers, collate_fn=_identity, prefetch_factor=2 if workers else None,
                      pin_memory=getattr(translator, "device", torch.device("cpu")).type == "cuda")


def _decoded(items, files, opts: BatchOptions, bar) -> tuple[dict, set]:
    """({file: (uint8 C×H×W, original size)}, the unreadable files, each said in one line or,
    with ``error_on_single_bad``, an error)."""
    decoded, bad = {}, set()
    for j, arr, orig, err in items:
        if err is not None:
            if opts.error_on_single_bad:
                raise ImageLoadError(files[j], err)
            bar.write(f"skipped: {ImageLoadError(files[j], err)}", file=sys.stderr)
            bad.add(j)
            continue
        decoded[j] = (arr, orig)
    return decoded, bad


def _size_groups(block: list[int], jobs: list[Job], decoded: dict, done: set) -> list[list]:
    """The readable jobs of ``block`` as groups of one image size and one set of per-job inputs,
    each a list of (job, uint8 image, original size) in input order; none when every missing
    output of the block belongs to an unreadable file (resumed)."""
    groups: dict[tuple, list] = {}
    for q in block:
        job = jobs[q]
        if job.file in decoded:
            arr, orig = decoded[job.file]
            groups.setdefault((tuple(arr.shape), _values_key(job.values)), []).append((q, arr, orig))
    if all(q in done for g in groups.values() for q, _, _ in g):
        return []
    return list(groups.values())


def _chunks(group: list, batch_size: int, static: bool = False) -> list[list]:
    """``group`` in consecutive batches of ``batch_size``. ``static`` (a compiled network: each
    new batch shape compiles again): the last, shorter batch is cut into powers of two (3 = 2 + 1),
    so a job compiles at most log2(batch_size) + 1 shapes, those ``auto`` measured."""
    full = len(group) - len(group) % batch_size if static else len(group)
    out = [group[s:s + batch_size] for s in range(0, full, batch_size)]
    s = full
    while s < len(group):
        n = 1 << ((len(group) - s).bit_length() - 1)
        out.append(group[s:s + n])
        s += n
    return out


# ---- running and writing -----------------------------------------------------------------------
def _translate(translator, images: list[torch.Tensor], opts: BatchOptions, values: dict) -> list[dict]:
    """The network on equal-size uint8 images: one dict of CPU float outputs per sample."""
    x = as_input(torch.stack(images))
    device_type = getattr(translator, "device", torch.device("cpu")).type
    with torch.autocast(device_type, dtype=torch.bfloat16) if opts.amp else nullcontext():
        samples = translator.run_tensor(x, opts.num_outputs, opts.wanted(), opts.labels, **values)
    return [{k: v.float().cpu() for k, v in smp.items()} for smp in samples]


class _Writer:
    """Writer threads for the outputs; at most ``max_writes`` decoded outputs wait for them.
    ``listing`` (resume): the names already in the folder, which are not rewritten."""

    def __init__(self, out: Path, listing: set[str] | None, max_writes: int):
        self.out, self.listing, self.max_writes = out, listing, max_writes
        self.writes: deque = deque()

    def __enter__(self):
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="styleforge-write").__enter__()
        return self

    def submit(self, job: Job, samples: list[dict], i: int, orig: tuple[int, int]) -> None:
        keep = frozenset(n for n in job.all_names() if n in self.listing) if self.listing is not None \
            else frozenset()
        self.writes.append(self.pool.submit(_write, job, samples, i, orig, self.out, keep))
        while len(self.writes) > self.max_writes:
            self.writes.popleft().result()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                while self.writes:
                    self.writes.popleft().result()
        finally:
            self.pool.__exit__(*exc)
