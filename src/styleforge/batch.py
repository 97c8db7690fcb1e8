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

The network is reached through a *translator*: any object with
``translate_tensor(x, direction, **kw)`` taking and returning N×C×H×W float tensors in [-1, 1]
(:class:`styleforge.pipeline.Pipeline` is one; another runtime can be another).
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .data.images import load_rgb
from .data.transforms import resize_longer_side
from .errors import CheckpointError, ConfigError, ImageLoadError

TMP_SUFFIX = ".tmp"  # save_image_atomic writes ".{name}.XXXXXXXX.tmp" beside the output


@dataclass
class BatchOptions:
    direction: str | None = None
    batch_size: int | None = None  # default: 1 on CPU (faster there, docs/benchmarks.md), 8 on GPU
    block_size: int | None = None  # files per block; default 4 × batch_size
    workers: int | None = None  # DataLoader workers; default min(4, CPUs)
    size: int | None = None  # resize the longer side first (outputs keep the original size)
    resume: bool = False  # skip finished outputs
    overwrite: bool = False  # replace existing outputs
    amp: bool = False  # bf16 autocast around the network
    progress: bool = True
    error_on_single_bad: bool = False  # one input that cannot be read is an error, not a skip
    heatmaps: bool = False  # also write the attention map as NAME_heatmap.EXT (has_heatmaps methods)


@dataclass
class BatchResult:
    translated: int = 0  # outputs written by this run (all ranks)
    resumed: int = 0  # outputs already there (resume)
    skipped: int = 0  # unreadable inputs
    seconds: float = 0.0

    def summary(self, direction: str, out) -> str:
        s = f"translated {self.translated} image(s) {direction} into {out}"
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
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    import torch.distributed as dist

    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        owns = True
    return Shard(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)


def load_translator(model_dir, device=None, runtime: str = "torch"):
    """The object that runs the network. Under ``torchrun`` with CUDA and ``device`` auto, each
    rank takes ``cuda:LOCAL_RANK``."""
    if not Path(model_dir).exists():
        raise CheckpointError(f"model not found: {model_dir} (a model directory, a run folder, or a file "
                              "made by 'styleforge export')")
    if runtime != "torch" and not (runtime == "auto" and Path(model_dir).is_dir()):
        from .export import load_runtime  # onnx / torchscript files from 'styleforge export'

        return load_runtime(model_dir, runtime, device=device)
    import styleforge

    if (device in (None, "auto") and not os.environ.get("STYLEFORGE_DEVICE")
            and int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.cuda.is_available()):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    return styleforge.load(model_dir, device=device)


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
            arr = np.asarray(resize_longer_side(img, self.size), dtype=np.uint8)
            items.append((j, torch.from_numpy(arr.transpose(2, 0, 1).copy()), orig, None))
        return items


def _identity(x):
    return x


def _to_float(batch_u8: torch.Tensor) -> torch.Tensor:
    # the same float32 arithmetic as data.transforms.to_tensor (x / 127.5 - 1)
    return batch_u8.to(torch.float32) / 127.5 - 1.0


def heatmap_name(name: str) -> str:
    p = Path(name)
    return f"{p.stem}_heatmap{p.suffix}"


def _write(y: torch.Tensor, orig: tuple[int, int], path: Path, heat: torch.Tensor | None = None) -> None:
    from .data.transforms import to_pil
    from .utils.images import save_image_atomic

    # the heatmap first: an output that exists is a finished one, heatmap included (resume)
    for t, target in ((heat, path.with_name(heatmap_name(path.name))), (y, path)):
        if t is None:
            continue
        img = to_pil(t)
        if img.size != orig:
            img = img.resize(orig, Image.BICUBIC)
        save_image_atomic(img, target)


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
def translate_files(translator, files: list[Path], names: list[str], out, opts: BatchOptions,
                    shard: Shard | None = None, **kw) -> BatchResult:
    """Translate ``files[i]`` into ``out / names[i]`` (see the module docstring). ``kw`` goes to
    ``translate_tensor`` (a method's inference options)."""
    out = Path(out)
    if len(files) != len(names):
        raise ValueError("files and names differ in length")
    if opts.batch_size is None:
        dev = getattr(translator, "device", torch.device("cpu"))
        opts = replace(opts, batch_size=8 if torch.device(dev).type == "cuda" else 1)
    for flag, value, low in (("--batch-size", opts.batch_size, 1), ("--block-size", opts.block_size, 1),
                             ("--size", opts.size, 1), ("--workers", opts.workers, 0)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} must be an integer >= {low}, got {value}")
    if opts.resume and opts.overwrite:
        raise ConfigError("--resume keeps finished outputs and --overwrite replaces them: give one")
    own_shard = shard is None
    shard = shard or shard_from_env()
    try:
        return _run(translator, files, names, out, opts, shard, kw)
    finally:
        if own_shard:
            shard.close()


def _run(translator, files, names, out: Path, opts: BatchOptions, shard: Shard, kw) -> BatchResult:
    t0 = time.perf_counter()
    listing = _existing(out)
    if not opts.resume and not opts.overwrite:
        existing = [n for n in names if n in listing
                    or (opts.heatmaps and heatmap_name(n) in listing)]
        if existing:
            raise ConfigError(f"{len(existing)} output(s) already exist in {out} (e.g. {existing[0]}); "
                              "use --resume to keep them and translate the rest, or --overwrite to replace them")
    shard.barrier()  # every rank has checked before any writes
    out.mkdir(parents=True, exist_ok=True)

    block = opts.block_size or 4 * opts.batch_size
    blocks = [list(range(s, min(s + block, len(files)))) for s in range(0, len(files), block)]
    mine = blocks[shard.rank::shard.world_size]
    done = {j for b in mine for j in b if opts.resume and names[j] in listing}
    if opts.resume:
        mine_names = {names[j] for b in mine for j in b}
        if opts.heatmaps:
            mine_names |= {heatmap_name(n) for n in mine_names}
        _remove_stale_temps(out, mine_names, listing)
    todo = [b for b in mine if any(j not in done for j in b)]
    resumed = len(done)
    pending = sum(len(b) for b in todo)

    workers = min(4, os.cpu_count() or 1) if opts.workers is None else opts.workers
    workers = min(workers, len(todo))
    loader = DataLoader(_BlockDataset(files, todo, opts.size), batch_size=None, shuffle=False,
                        num_workers=workers, collate_fn=_identity,
                        prefetch_factor=2 if workers else None,
                        pin_memory=getattr(translator, "device", torch.device("cpu")).type == "cuda")
    from tqdm import tqdm

    bar = tqdm(total=pending, unit="img", file=sys.stderr, dynamic_ncols=True,
               desc=f"rank {shard.rank}/{shard.world_size}" if shard.world_size > 1 else None,
               disable=not opts.progress or shard.rank != 0 or pending < 2)
    device_type = getattr(translator, "device", torch.device("cpu")).type
    autocast = (torch.autocast(device_type, dtype=torch.bfloat16) if opts.amp else nullcontext())
    translated = skipped = 0
    writes: deque = deque()
    max_writes = 4 * opts.batch_size  # bounds the decoded outputs waiting for the writer threads
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="styleforge-write") as pool:
        for items in loader:
            groups: dict[tuple, list] = {}
            for j, arr, orig, err in items:
                if err is not None:
                    if opts.error_on_single_bad:
                        raise ImageLoadError(files[j], err)
                    bar.write(f"skipped: {ImageLoadError(files[j], err)}", file=sys.stderr)
                    skipped += 1
                    continue
                groups.setdefault(tuple(arr.shape), []).append((j, arr, orig))
            if all(j in done for g in groups.values() for j, _, _ in g):
                groups = {}  # resumed: only unreadable files lacked an output
            for group in groups.values():
                for s in range(0, len(group), opts.batch_size):
                    chunk = group[s:s + opts.batch_size]
                    x = _to_float(torch.stack([a for _, a, _ in chunk]))
                    with autocast:
                        if opts.heatmaps:
                            y, heat = translator.translate_tensor(x, opts.direction, return_heatmap=True, **kw)
                            heat = heat.float().cpu()
                        else:
                            y, heat = translator.translate_tensor(x, opts.direction, **kw), None
                    y = y.float().cpu()
                    for i, ((j, _, orig), yj) in enumerate(zip(chunk, y)):
                        if j in done:
                            continue
                        writes.append(pool.submit(_write, yj, orig, out / names[j],
                                                  None if heat is None else heat[i]))
                        translated += 1
                    while len(writes) > max_writes:
                        writes.popleft().result()
            bar.update(len(items))
            if skipped:
                bar.set_postfix(skipped=skipped, refresh=False)
        while writes:
            writes.popleft().result()
    bar.close()
    translated, resumed, skipped = shard.sum([translated, resumed, skipped])
    return BatchResult(translated, resumed, skipped, time.perf_counter() - t0)
