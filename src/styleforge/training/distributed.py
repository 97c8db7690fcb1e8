"""Data-parallel training under ``torchrun``: one process per device, gradients averaged.

Every method's networks are wrapped by nothing: the trainer all-reduces each optimizer's
gradients (one flat buffer per optimizer) right before it steps. That is what
``DistributedDataParallel`` does, done at the one place every method shares, so methods that
freeze networks between phases, split a loss over several backward passes or run a network
several times per step need no care; DDP reduces at every backward (2.5x the bytes on CycleGAN,
``benchmarks/ddp.py``, docs/training.md). Frozen modules are in no optimizer, so in no traffic.
gloo on CPU, nccl on CUDA.

Checkpoints and restarts (docs/training.md, "Several processes"): every rank writes its own state
(RNG streams, image pools) into the checkpoint folder rank 0 creates; rank 0 commits the folder
only when every rank reports its file written (:func:`failed_ranks`). Ranks agree each step on
whether a signal arrived (:func:`max_over_ranks`), so they stop at the same step and save together.
Under ``torchrun --max-restarts N`` restarted workers see ``TORCHELASTIC_RESTART_COUNT`` > 0
(:func:`restart_count`) and the trainer resumes. A collective that fails because a peer died is
turned into one :class:`PeerLost` line naming that peer's rank (:func:`lost_peer`).
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import TrainingError

# what gloo (and NCCL) say when the other end of a connection went away
_LOST_CONNECTION = ("connection reset", "connection closed", "broken pipe", "connection refused",
                    "socket timeout", "timed out", "nccl communicator was aborted")


class PeerLost(TrainingError):
    """Another process of the run stopped (killed, or failed with its own message) while this
    one needed it; the message names its rank."""


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    peers: tuple = ()  # (host name, pid) of every rank, to name the one that died

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        store = _attempt_store(world)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=int(os.environ["RANK"]), world_size=world)
    peers: list = [None] * dist.get_world_size()
    dist.all_gather_object(peers, (socket.gethostname(), os.getpid()))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")),
                    tuple(tuple(p) for p in peers))


def _attempt_store(world: int):
    """The store of torchrun's agent under a prefix naming this attempt, or None for the default.

    torchrun keeps its store (``MASTER_PORT``) across restarts, and the addresses the stopped
    workers wrote stay in it (pytorch#135712): a restarted gloo group can read a dead worker's
    address and wait for it for 30 minutes (half of our restarts on one machine did). With one
    agent (one machine), its restart count names the attempt the same way on every worker; with
    several, the counts differ between machines (pytorch#108158), so the default stays and
    docs/training.md says to set ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` for restarts there."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or os.environ.get("GROUP_WORLD_SIZE") != "1":
        return None
    from torch.distributed.constants import default_pg_timeout

    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=False, timeout=default_pg_timeout)
    return dist.PrefixStore(f"styleforge/attempt_{restart_count()}/", store)


def restart_count() -> int:
    """How many times ``torchrun`` restarted this job's workers (0: the first attempt, or no
    torchrun)."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def run_id() -> str | None:
    """``torchrun``'s job id (``--rdzv_id``; a fresh one per ``--standalone`` job), or None."""
    return os.environ.get("TORCHELASTIC_RUN_ID") or None


def teardown(info: DistInfo, wait: bool = True) -> None:
    """Leave the process group. ``wait``: first meet the other ranks (rank 0 may still be writing
    the final checkpoint and model; a rank that tears gloo down alone can abort at exit)."""
    if info.enabled and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(params, world_size: int) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` (a picklable value) on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def max_over_ranks(value: int, info: DistInfo, device: torch.device) -> int:
    """The largest ``value`` of all ranks, on every rank (a signal that reached some ranks only)."""
    if not info.enabled:
        return value
    t = torch.tensor([int(value)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def failed_ranks(ok: bool, info: DistInfo, device: torch.device) -> list[int]:
    """The ranks whose ``ok`` is false, known to every rank."""
    if not info.enabled:
        return [] if ok else [0]
    t = torch.zeros(info.world_size, device=device)
    t[info.rank] = 0.0 if ok else 1.0
    dist.all_reduce(t)
    return [r for r, v in enumerate(t.tolist()) if v]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child stays a zombie until torchrun reaps it
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def dead_peers(info: DistInfo, wait: float = 3.0) -> list[int]:
    """Ranks on this machine whose process has ended, waiting up to ``wait`` seconds for one
    (a peer that failed with an error of its own is still writing its message)."""
    host = socket.gethostname()
    mine = [(r, pid) for r, (h, pid) in enumerate(info.peers) if r != info.rank and h == host]
    deadline = time.monotonic() + wait
    while True:
        dead = [r for r, pid in mine if not _alive(pid)]
        if dead or not mine or time.monotonic() >= deadline:
            return dead
        time.sleep(0.05)


def lost_peer(info: DistInfo, error: BaseException) -> PeerLost | None:
    """The one-line error for a collective that failed because another rank died, or None when
    ``error`` is not that (a bug of this process: let it through)."""
    if not info.enabled or not isinstance(error, RuntimeError):
        return None
    text = str(error).lower()
    looks_lost = isinstance(error, getattr(dist, "DistError", ())) or any(w in text for w in _LOST_CONNECTION)
    dead = dead_peers(info, wait=3.0 if looks_lost else 0.5)
    if not dead and not looks_lost:
        return None
    if dead:
        who = ", ".join(f"rank {r} (pid {info.peers[r][1]})" for r in dead)
        what = f"{who} of the {info.world_size} processes stopped (killed, or failed: see its own message)"
    else:
        away = sorted({h for r, (h, _) in enumerate(info.peers) if r != info.rank})
        what = (f"lost the connection to another of the {info.world_size} processes "
                f"(on {', '.join(away)}): {str(error).splitlines()[0][:160]}")
    return PeerLost(f"{what}; rank {info.rank} cannot go on without it. torchrun --max-restarts N "
                    "restarts the workers, which resume from the latest checkpoint; else resume with "
                    "styleforge train --resume RUN")


@contextlib.contextmanager
def peers_guard(info: DistInfo):
    """Turn a collective's failure after a peer died into :class:`PeerLost` (one line)."""
    try:
        yield
    except RuntimeError as e:
        lost = lost_peer(info, e)
        if lost is None:
            raise
        raise lost from None
