"""MUNIT, UNIT and FUNIT side by side with the authors' code, on the same machine and inputs.

    python benchmarks/latent_vs_official.py --official /tmp/official [--size 128] [--clock cpu]
        [--methods munit,unit,funit] [--funit-batch 2] [--shots 5] [--rounds 1]

``--official`` is a folder holding the three checkouts ``MUNIT/`` (NVlabs/MUNIT), ``UNIT/``
(mingyuliutw/UNIT) and ``FUNIT/`` (NVlabs/FUNIT), fetched by you to a temporary folder, never
committed. Both sides run at the options of the authors' shipped configs, read from their YAML
(MUNIT ``configs/edges2handbags_folder.yaml``, UNIT ``configs/unit_edges2handbags_folder.yaml``,
FUNIT ``configs/funit_animals.yaml``) and our presets ``munit/edges2handbags``, ``unit`` and
``funit``; only the image size (``--size``, theirs 256/256/128) and FUNIT's batch
(``--funit-batch``, theirs 64) are cut to what a CPU can time. Before timing, a child builds both
sides of each method and their parameter counts are printed and compared.

Train = one full step with each side's own update code: theirs ``trainer.dis_update`` then
``trainer.gen_update`` (then ``update_learning_rate`` for MUNIT/UNIT, the EMA ``gen_test`` inside
FUNIT's ``gen_update``), as their train.py calls them; ours the method's phases through the
trainer's ``run_phases`` (with the trainer's ``ModuleEMA`` for FUNIT). Infer = one translation as
their test scripts make it, under ``no_grad`` (MUNIT/UNIT ``gen_a.encode`` + ``gen_b.decode``
with a random style; FUNIT ``compute_k_style`` of K class images + ``translate_simple``), ours
``translate`` under ``inference_mode``. Variants: theirs, ours, ours-bf16 (the same under
``train.amp``'s bf16 autocast: a numerics change).

Their code needs only torch, but imports torchvision and ``torch.utils.serialization`` (gone
since torch 1.0) at module level and calls ``.cuda()`` everywhere: the child running their code
puts empty stand-ins for those modules in ``sys.modules`` (nothing of them is called on these
paths) and makes ``.cuda()`` return the tensor or module unchanged on CPU. Their files are not
changed.

Every variant runs in a fresh process: peak memory = that process's ``ru_maxrss`` (or CUDA
``max_memory_allocated``); ``base_mb`` is its RSS with the networks and optimisers built, so
``peak - base`` is what the training step itself adds (activations, gradients, optimiser state).
``--clock cpu`` times one thread by process CPU time: on a machine shared with other jobs,
wall-clock times swing 2-4×, one thread's CPU time barely moves.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

VARIANTS = ("theirs", "ours", "ours-bf16")
# method: (their folder, their config, our preset, what must be in their folder)
METHODS = {
    "munit": ("MUNIT", "configs/edges2handbags_folder.yaml", "munit/edges2handbags", "trainer.py"),
    "unit": ("UNIT", "configs/unit_edges2handbags_folder.yaml", "unit", "trainer.py"),
    "funit": ("FUNIT", "configs/funit_animals.yaml", "funit", "funit_model.py"),
}


cpu_time = common.cpu_time


_rss_mb = common.rss_mb


def _count(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def inputs(method: str, size: int, funit_batch: int, shots: int, dev) -> dict:
    """The same tensors for both sides: images in [-1, 1] and FUNIT class labels, from seed 0."""
    import torch

    g = torch.Generator().manual_seed(0)
    img = lambda n: (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(dev)  # noqa: E731
    if method != "funit":
        return {"A": img(1), "B": img(1), "style": torch.randn(1, 8, 1, 1, generator=g).to(dev)}
    n = funit_batch
    return {"xa": img(n), "la": torch.randint(0, 119, (n,), generator=g).to(dev),
            "xb": img(n), "lb": torch.randint(0, 119, (n,), generator=g).to(dev),
            "content": img(1), "class_images": img(shots)}


def _their_imports(folder: Path, dev) -> None:
    """Stand-ins for the modules their files import but never use on these paths; ``.cuda()`` a
    no-op when timing on CPU."""
    import torch

    for name in ("torchvision", "torchvision.transforms", "torchvision.utils", "torch.utils.serialization"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision"].utils = sys.modules["torchvision.utils"]
    sys.modules["torch.utils.serialization"].load_lua = None
    if dev.type == "cpu":
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    sys.path.insert(0, str(folder))


def theirs(method: str, official: str, x: dict, dev):
    """(train_step, infer, {network: parameters}) of the authors' trainer at their config."""
    import torch
    import yaml

    folder, cfg_file, _, _ = METHODS[method]
    folder = Path(official) / folder
    hp = yaml.safe_load((folder / cfg_file).read_text())
    _their_imports(folder, dev)
    torch.manual_seed(0)
    if method == "funit":
        from trainer import Trainer

        tr = Trainer(hp).to(dev)
        co, cl = (x["xa"], x["la"]), (x["xb"], x["lb"])

        def train_step():
            tr.dis_update(co, cl, hp)
            tr.gen_update(co, cl, hp, False)

        def infer():  # their test_k_shot.py: the EMA generator, K class codes averaged
            with torch.no_grad():
                code = tr.model.compute_k_style(x["class_images"], x["class_images"].shape[0])
                tr.model.translate_simple(x["content"], code)

        m = tr.model
        counts = {"gen": _count(m.gen), "dis": _count(m.dis), "gen_test": _count(m.gen_test)}
        return train_step, infer, counts
    from trainer import MUNIT_Trainer, UNIT_Trainer

    tr = (MUNIT_Trainer if method == "munit" else UNIT_Trainer)(hp).to(dev)

    def train_step():  # their train.py's loop body
        tr.update_learning_rate()
        tr.dis_update(x["A"], x["B"], hp)
        tr.gen_update(x["A"], x["B"], hp)

    def infer():  # their test.py, A to B
        tr.eval()
        with torch.no_grad():
            c, _ = tr.gen_a.encode(x["A"])
            tr.gen_b.decode(c, x["style"]) if method == "munit" else tr.gen_b.decode(c)
        tr.train()

    counts = {"gen_a": _count(tr.gen_a), "gen_b": _count(tr.gen_b), "dis_a": _count(tr.dis_a),
              "dis_b": _count(tr.dis_b)}
    return train_step, infer, counts


def ours(method: str, x: dict, dev, amp):
    """(train_step, infer, {network: parameters}) of styleforge's method at the same options."""
    import torch

    sys.path.insert(0, str(HERE.parent / "src"))
    from styleforge import config as C
    from styleforge.registry import build_method
    from styleforge.training.ema import ModuleEMA
    from styleforge.training.trainer import build_optimizers, configure_backends, run_phases

    configure_backends(dev)
    cfg = C.resolve(METHODS[method][2])
    torch.manual_seed(0)
    m = build_method(cfg["method"], **cfg["model"]).to(dev)
    opts = build_optimizers(m, cfg["train"])
    ema = ModuleEMA(m, opts, cfg["train"]["ema_decay"]) if m.ema_modules else None
    if method == "funit":
        batch = {"image": x["xa"], "label": x["la"], "class_image": x["xb"], "class_label": x["lb"]}
        counts = {"gen": _count(m.gen), "dis": _count(m.dis), "gen_test": _count(m.gen_test)}
        run = lambda: m.translate(x["content"], class_images=x["class_images"])  # noqa: E731
    else:
        batch = {"A": x["A"], "B": x["B"]}
        counts = {"gen_a": _count(m.gen_a), "gen_b": _count(m.gen_b), "dis_a": _count(m.dis_a),
                  "dis_b": _count(m.dis_b)}
        kw = {"style": x["style"].flatten(1)} if method == "munit" else {}
        run = lambda: m.translate(x["A"], "AtoB", **kw)  # noqa: E731

    def train_step():
        m.train()
        with amp:
            run_phases(m, opts, batch, ema=ema)

    def infer():
        m.eval()
        with torch.inference_mode(), amp:
            run()

    return train_step, infer, counts


def child(method: str, variant: str, a) -> dict:
    from contextlib import nullcontext

    import torch

    if a.clock == "cpu":
        torch.set_num_threads(1)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    x = inputs(method, a.size, a.funit_batch, a.shots, dev)
    if variant == "count":  # both sides built, nothing run
        return {"theirs": theirs(method, a.official, x, dev)[2],
                "ours": ours(method, x, dev, nullcontext())[2]}
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if variant.endswith("bf16") else nullcontext()
    train_step, infer, counts = (theirs(method, a.official, x, dev) if variant == "theirs"
                                 else ours(method, x, dev, amp))
    base_mb = _rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    timer = common.median_time if a.clock == "wall" else cpu_time
    train_s = timer(train_step, a.warmup, a.iters, sync)
    peak_mb = common.peak_memory_mb(a.device)
    infer_s = timer(infer, 1, max(a.iters, 3), sync)
    return {"train_s": train_s, "infer_s": infer_s, "peak_mb": peak_mb, "base_mb": base_mb,
            "params": sum(counts.values())}


def _child_args(a, method: str, variant: str) -> list[str]:
    return ["--official", a.official, "--size", str(a.size), "--device", a.device, "--clock", a.clock,
            "--warmup", str(a.warmup), "--iters", str(a.iters), "--funit-batch", str(a.funit_batch),
            "--shots", str(a.shots), "--method", method, "--child", variant]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="folder holding MUNIT/, UNIT/ and FUNIT/ checkouts")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--size", type=int, default=128, help="image side for all three (theirs: 256, 256, 128)")
    p.add_argument("--funit-batch", type=int, default=2, help="FUNIT training batch (theirs: 64)")
    p.add_argument("--shots", type=int, default=5, help="FUNIT class images at inference (K)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall-clock time with torch's threads; cpu: one thread, process CPU time "
                   "(robust to other load on a shared machine)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a.method, a.child, a)))
        return
    methods = a.methods.split(",")
    for m in methods:
        if m not in METHODS:
            sys.exit(f"error: --methods: unknown method {m!r}; choose from {', '.join(METHODS)}")
        folder, _, _, need = METHODS[m]
        if not (Path(a.official) / folder / need).is_file():
            sys.exit(f"error: --official {a.official} has no {folder}/{need} (a checkout of the authors' {m})")
    info = common.machine()
    print(json.dumps(info), flush=True)
    load_before = os.getloadavg()
    counts_ok = {}
    for m in methods:
        res = common.run_variant(__file__, _child_args(a, m, "count"))
        if "error" in res:
            print(f"{m} parameter counts: {res['error']}", flush=True)
            counts_ok[m] = False
            continue
        t, o = res["theirs"], res["ours"]
        counts_ok[m] = t == o
        print(f"{m} parameters: theirs {sum(t.values()):,} {t}; ours {sum(o.values()):,} {o}; "
              f"{'equal' if t == o else 'DIFFERENT'}", flush=True)
    variants = a.variants.split(",")
    runs: dict[tuple, list[dict]] = {(m, v): [] for m in methods for v in variants}
    for r in range(a.rounds):
        for m in methods:
            for v in variants:
                res = common.run_variant(__file__, _child_args(a, m, v))
                print(f"round {r + 1} {m} {v}: {json.dumps(res)} load {os.getloadavg()[0]:.2f}",
                      file=sys.stderr, flush=True)
                runs[m, v].append(res)
    rows = []
    for m in methods:
        for v in variants:
            ok = [x for x in runs[m, v] if "error" not in x]
            row = {"method": m, "variant": v}
            if not ok:
                rows.append(row | {"train_s": runs[m, v][0]["error"][:120]})
                continue
            row |= {k: statistics.median(x[k] for x in ok) for k in ("train_s", "infer_s", "peak_mb", "base_mb")}
            row["params_M"] = ok[0]["params"] / 1e6
            row["step_mb"] = row["peak_mb"] - row["base_mb"]
            rows.append(row)
    for r in rows:
        base = next((b for b in rows if b["method"] == r["method"] and b["variant"] == "theirs"
                     and "infer_s" in b), None)
        if base and "infer_s" in r:
            r["train speed-up"] = base["train_s"] / r["train_s"]
            r["infer speed-up"] = base["infer_s"] / r["infer_s"]
            r["peak ratio"] = r["peak_mb"] / base["peak_mb"]
            r["step-mem ratio"] = r["step_mb"] / base["step_mb"]
    print(f"\n{a.size}px, batch 1 (FUNIT batch {a.funit_batch}, K={a.shots} at inference) on {a.device}, "
          f"clock {a.clock}, {a.rounds} round(s) of {a.warmup}+{a.iters} steps; load avg (1/5/15 min) "
          f"before {'/'.join(f'{v:.2f}' for v in load_before)}, after "
          f"{'/'.join(f'{v:.2f}' for v in os.getloadavg())}; parameter counts equal: "
          + ", ".join(f"{m} {'yes' if ok else 'NO'}" for m, ok in counts_ok.items()))
    print(common.table(rows, ["method", "variant", "params_M", "train_s", "infer_s", "peak_mb", "base_mb",
                              "step_mb", "train speed-up", "infer speed-up", "peak ratio", "step-mem ratio"]))


if __name__ == "__main__":
    main()
