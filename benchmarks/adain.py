"""AdaIN side by side with pytorch-AdaIN, on the same machine, weights and inputs.

    python benchmarks/adain.py --official /tmp/pytorch-AdaIN [--size 512] [--train-size 256]
                               [--batch 8] [--rounds 2] [--device cuda]

``--official`` is a checkout of naoto0804/pytorch-AdaIN (fetched by you to a temporary folder,
never committed); only its ``net.py`` and ``function.py`` are imported (its ``test.py`` parses
the command line on import and needs torchvision, so its four-line ``style_transfer`` is
written out below, calling their modules). Both sides get the same random weights (their
Sequential state dicts, imported into styleforge with ``import adain``) and the outputs are
compared. Every variant runs in a fresh process (peak memory: that process's ru_maxrss, or CUDA
max_memory_allocated); variants run round-robin ``--rounds`` times and the median is reported.

Variants: theirs; ours (styleforge's ``AdaIN.translate`` / ``training_step`` through the
trainer's ``run_phases``, channels_last, the default); ours-nchw (``channels_last=False``);
ours-bf16 (bf16 autocast; CUDA only: CPU bf16 convolutions are slower than fp32 on most CPUs).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

VARIANTS = ("theirs", "ours", "ours-nchw", "ours-bf16")


def their_networks(official: str, seed: int = 0):
    import torch

    sys.path.insert(0, official)
    import net  # their module

    torch.manual_seed(seed)
    for m in [*net.vgg.modules(), *net.decoder.modules()]:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.uniform_(m.bias, -0.01, 0.01)
    return net


def child(variant: str, official: str, size: int, train_size: int, batch: int, device: str,
          warmup: int, iters: int) -> dict:
    from contextlib import nullcontext

    import torch

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    net = their_networks(official)
    g = torch.Generator().manual_seed(1)
    content = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(dev)
    style = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(dev)
    tc = (torch.rand(batch, 3, train_size, train_size, generator=g) * 2 - 1).to(dev)
    ts = (torch.rand(batch, 3, train_size, train_size, generator=g) * 2 - 1).to(dev)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if variant.endswith("bf16") else nullcontext()
    if variant == "theirs":
        from function import adaptive_instance_normalization

        vgg = torch.nn.Sequential(*list(net.vgg.children())[:31]).to(dev).eval()
        decoder = net.decoder.to(dev).eval()

        def stylise():  # test.py's style_transfer with alpha 1, on [0, 1] images
            with torch.no_grad():
                return decoder(adaptive_instance_normalization(vgg((content + 1) / 2), vgg((style + 1) / 2)))

        native = stylise

        network = net.Net(net.vgg, net.decoder).to(dev).train()
        opt = torch.optim.Adam(network.decoder.parameters(), lr=1e-4)

        def train_step():  # train.py's loop body (content weight 1, style weight 10)
            loss_c, loss_s = network((tc + 1) / 2, (ts + 1) / 2)
            loss = 1.0 * loss_c + 10.0 * loss_s
            opt.zero_grad()
            loss.backward()
            opt.step()

    else:
        sys.path.insert(0, str(HERE.parent / "src"))
        from styleforge.methods.adain import AdaIN, import_adain
        from styleforge.training.trainer import build_optimizers, configure_backends, run_phases

        configure_backends(dev)
        with tempfile.TemporaryDirectory() as d:
            torch.save(net.vgg.state_dict(), Path(d) / "vgg_normalised.pth")
            torch.save(net.decoder.state_dict(), Path(d) / "decoder.pth")
            model = import_adain(Path(d) / "decoder.pth", vgg=Path(d) / "vgg_normalised.pth")
        if variant == "ours-nchw":
            flat = AdaIN(channels_last=False)
            flat.load_state_dict(model.state_dict())
            flat.ensure_encoder()
            model = flat
        model = model.to(dev).eval()

        def stylise():
            with torch.inference_mode(), amp:
                return model.translate(content, style=[style])

        def native():  # the decoder's [0, 1] output before translate's clamp, to compare
            with torch.inference_mode(), amp:
                return model._stylise(content, [style], None, 1.0, None)

        model.train()
        opts = build_optimizers(model, {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.0})
        tb = {"content": tc, "style": ts}

        def train_step():
            with amp:
                run_phases(model, opts, tb)

    out = native().float()
    # relative to the output's scale (random weights give large, unclamped values)
    digest = (out / out.abs().max()).flatten()[:: max(1, out.numel() // 4096)].cpu().tolist()
    stylise_s = common.median_time(stylise, warmup, iters, sync)
    peak_infer = common.peak_memory_mb(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_s = common.median_time(train_step, warmup, iters, sync)
    return {"variant": variant, "stylise_s": stylise_s, "train_step_s": train_s,
            "peak_infer_mb": peak_infer, "peak_total_mb": common.peak_memory_mb(device),
            "digest": digest}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="a pytorch-AdaIN checkout (net.py, function.py)")
    ap.add_argument("--size", type=int, default=512, help="content and style side for stylisation")
    ap.add_argument("--train-size", type=int, default=256, help="crop side of a training step")
    ap.add_argument("--batch", type=int, default=8, help="training batch (the authors' 8)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--variants", default=None, help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.official, args.size, args.train_size, args.batch, args.device,
                               args.warmup, args.iters)))
        return 0
    variants = args.variants.split(",") if args.variants else [
        v for v in VARIANTS if v != "ours-bf16" or args.device.startswith("cuda")]
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            r = common.run_variant(__file__, [*sys.argv[1:], "--child", v])
            results[v].append(r)
    print(json.dumps({"machine": common.machine(), "size": args.size, "train_size": args.train_size,
                      "batch": args.batch, "device": args.device}, indent=1))
    rows = []
    theirs = None
    for v, rs in results.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            rows.append({"variant": v, "error": rs[0]["error"]})
            continue
        row = {"variant": v}
        for k in ("stylise_s", "train_step_s", "peak_infer_mb", "peak_total_mb"):
            row[k] = statistics.median(r[k] for r in ok)
        if v == "theirs":
            theirs = ok[0]
        elif theirs is not None:
            row["max_abs_diff"] = max(abs(a - b) for a, b in zip(ok[0]["digest"], theirs["digest"]))
        rows.append(row)
    if theirs is not None:
        t = next(r for r in rows if r["variant"] == "theirs")
        for r in rows:
            if "stylise_s" in r:
                r["stylise_speedup"] = t["stylise_s"] / r["stylise_s"]
                r["train_speedup"] = t["train_step_s"] / r["train_step_s"]
    print(common.table(rows, ["variant", "stylise_s", "stylise_speedup", "train_step_s", "train_speedup",
                              "peak_infer_mb", "peak_total_mb", "max_abs_diff", "error"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
