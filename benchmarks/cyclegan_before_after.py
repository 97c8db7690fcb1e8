"""CycleGAN training step, the authors' code against styleforge, interleaved in one process.

    python benchmarks/cyclegan_before_after.py SIZE SRC [--official /tmp/official]

``SRC`` is the ``src/`` folder of a styleforge checkout (this one, or a ``git worktree`` of an
older commit), so a change can be timed before and after against the same reference: theirs
and ours alternate step by step in one process, one thread, process CPU time (robust to other
load on a shared machine), median of 4 after 2 warm-up steps each. Options are CycleGAN's
defaults (ResNet-9, 70×70 PatchGAN, LSGAN, pool 50, λ 10/10/0.5, Adam 2e-4, batch 1).
``--official`` is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (never committed).
"""
import argparse
import sys
import time

import torch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("size", type=int)
    p.add_argument("src", help="styleforge's src/ folder to time")
    p.add_argument("--official", default="/tmp/official")
    p.add_argument("--steps", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, a.official)
    sys.path.insert(0, a.src)
    from models.cycle_gan_model import CycleGANModel

    from styleforge.registry import build_method
    from styleforge.training.trainer import build_optimizers, run_phases

    torch.manual_seed(0)
    A = torch.rand(1, 3, a.size, a.size) * 2 - 1
    B = torch.rand(1, 3, a.size, a.size) * 2 - 1
    opt = argparse.Namespace(
        isTrain=True, checkpoints_dir="/tmp/sf_bench_ckpt", name="bench", device=torch.device("cpu"),
        preprocess="resize_and_crop", input_nc=3, output_nc=3, ngf=64, ndf=64, netG="resnet_9blocks",
        netD="basic", n_layers_D=3, norm="instance", no_dropout=True, init_type="normal", init_gain=0.02,
        pool_size=50, gan_mode="lsgan", lr=2e-4, beta1=0.5, lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5,
        direction="AtoB", continue_train=False, load_iter=0, epoch="latest", verbose=False, lr_policy="linear",
        epoch_count=1, n_epochs=100, n_epochs_decay=100)
    model = CycleGANModel(opt)
    model.setup(opt)
    data = {"A": A, "B": B, "A_paths": ["a"], "B_paths": ["b"]}
    method = build_method("cyclegan")
    opts = build_optimizers(method, {"lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0})

    def theirs():
        model.set_input(data)
        model.optimize_parameters()

    def ours():
        run_phases(method, opts, {"A": A, "B": B})

    for f in (theirs, ours):
        f()
        f()
    res = {"theirs": [], "ours": []}
    for _ in range(a.steps):
        for name, f in (("theirs", theirs), ("ours", ours)):
            t = time.process_time()
            f()
            res[name].append(time.process_time() - t)
    med = {k: sorted(v)[len(v) // 2] for k, v in res.items()}
    print(a.size, a.src, {k: round(v, 3) for k, v in med.items()}, "theirs/ours", round(med["theirs"] / med["ours"], 3))


if __name__ == "__main__":
    main()
