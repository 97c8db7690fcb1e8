"""One FUNIT training step of styleforge beside the authors' code (NVlabs/FUNIT), on the same
networks, images and optimiser: the discriminator's losses and gradients, one RMSprop step of
D, then the generator's losses and gradients against the updated D, compared term by term.

The authors' code is not part of styleforge (CC BY-NC-SA 4.0): give a checkout of it,
    git clone https://github.com/NVlabs/FUNIT /tmp/FUNIT
    python benchmarks/funit_reference.py --authors /tmp/FUNIT
(only their blocks.py, networks.py and funit_model.py are read). It runs on the CPU (their
``.cuda()`` calls become no-ops here) and takes a few seconds; it exits 1 if a loss or a
gradient differs by more than 1e-6.
Result in docs/benchmarks.md ("FUNIT vs the authors' losses and gradients")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# a small configuration with every part of theirs: 2 content and class down-samplings, residual
# blocks, the 3-block MLP, a discriminator with 4 residual blocks (2 levels) and 4 classes
GEN = dict(nf=8, n_res_blks=1, nf_mlp=16, latent_dim=8, n_mlp_blks=3, n_downs_content=2, n_downs_class=2)
DIS = dict(nf=8, n_res_blks=4, num_classes=4)
WEIGHTS = dict(gan_w=1.0, r_w=0.1, fm_w=1.0)
LR, WEIGHT_DECAY = 1e-4, 1e-4


def animals(size=32):
    """(content images, labels, class images, labels): the bundled animal faces, 4 classes;
    each content image's partner is an image of another folder (any class would do)."""
    root = REPO / "data" / "animals"
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files = [(sorted((root / c).glob("*.jpg"))[:2], i) for i, c in enumerate(classes)]
    xs, ls = [], []
    for fs, label in files:
        for f in fs:
            a = np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BICUBIC), np.float32)
            xs.append(torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1)
            ls.append(label)
    x, y = torch.stack(xs), torch.tensor(ls)
    order = torch.arange(len(x)).roll(3)  # partners from other folders
    return x, y, x[order].clone(), y[order].clone()


def max_diff(a: dict, b: dict) -> tuple[float, str]:
    worst, where = 0.0, ""
    for k in a:
        d = (a[k] - b[k]).abs().max().item()
        if d > worst:
            worst, where = d, k
    return worst, where


def grads(module) -> dict:
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", required=True, type=Path, help="a checkout of github.com/NVlabs/FUNIT")
    args = ap.parse_args()
    if not (args.authors / "funit_model.py").is_file():
        print(f"error: {args.authors} is not a FUNIT checkout (no funit_model.py)", file=sys.stderr)
        return 2
    torch.Tensor.cuda = lambda self, *a, **k: self  # their code moves tensors to the GPU by hand
    sys.path.insert(0, str(args.authors))
    from funit_model import FUNITModel  # noqa: E402  (theirs)

    from styleforge.methods.funit import FUNIT  # noqa: E402

    torch.manual_seed(0)
    theirs = FUNITModel({"gen": GEN, "dis": DIS})
    ours = FUNIT(**{k: v for k, v in GEN.items()}, dis_nf=DIS["nf"], dis_n_res_blks=DIS["n_res_blks"],
                 num_classes=DIS["num_classes"], gp_w=10.0, class_image_size=32, **WEIGHTS)
    for name in ("gen", "dis"):
        sd = {k: v for k, v in getattr(theirs, name).state_dict().items() if "running_" not in k
              and "num_batches" not in k}
        missing, unexpected = getattr(ours, name).load_state_dict(sd, strict=False)
        if unexpected or [k for k in missing if "running_" not in k]:
            print(f"error: key mismatch in {name}: {missing[:3]} {unexpected[:3]}", file=sys.stderr)
            return 1
    xa, la, xb, lb = animals()
    hp = dict(WEIGHTS)
    rms = dict(lr=LR, weight_decay=WEIGHT_DECAY)
    opt_t = {"D": torch.optim.RMSprop(theirs.dis.parameters(), **rms),
             "G": torch.optim.RMSprop(theirs.gen.parameters(), **rms)}
    opt_o = {"D": torch.optim.RMSprop(ours.dis.parameters(), **rms),
             "G": torch.optim.RMSprop(ours.gen.parameters(), **rms)}

    rows = []
    # D: their dis_update (real hinge + 10 x penalty, fake hinge), our D phase
    theirs.zero_grad()
    _, l_fake, l_real, l_reg, _ = theirs((xa, la), (xb.clone(), lb), hp, "dis_update")
    phases = ours.training_step({"image": xa, "label": la, "class_image": xb, "class_label": lb})
    d = next(phases)
    ours.zero_grad()
    sum(d.losses.values()).backward()
    for key, t in (("D_real", l_real), ("D_fake", l_fake), ("D_gp", 10 * l_reg)):
        rows.append((f"D loss {key}", abs(t.item() - d.losses[key].item())))
    rows.append(("D gradients (max over %d tensors, worst: %s)" % (len(grads(ours.dis)), max_diff(
        grads(theirs.dis), grads(ours.dis))[1]), max_diff(grads(theirs.dis), grads(ours.dis))[0]))
    opt_t["D"].step()
    opt_o["D"].step()
    rows.append(("D weights after one RMSprop step", max_diff(dict(theirs.dis.named_parameters()),
                                                               dict(ours.dis.named_parameters()))[0]))
    # G against the updated D: their gen_update, our G phase
    theirs.zero_grad()
    total, l_adv, l_x_rec, l_c_rec, l_m_rec, _ = theirs((xa, la), (xb, lb), hp, "gen_update")
    g = next(phases)
    ours.gen.zero_grad()
    sum(g.losses.values()).backward()
    rows.append(("G loss G_adv", abs(float(hp["gan_w"] * l_adv) - float(g.losses["G_adv"]))))
    rows.append(("G loss G_rec", abs(float(hp["r_w"] * l_x_rec) - float(g.losses["G_rec"]))))
    rows.append(("G loss G_fm", abs(float(hp["fm_w"] * (l_c_rec + l_m_rec)) - float(g.losses["G_fm"]))))
    gd = max_diff(grads(theirs.gen), grads(ours.gen))
    rows.append((f"G gradients (max over {len(grads(ours.gen))} tensors, worst: {gd[1]})", gd[0]))
    opt_t["G"].step()
    opt_o["G"].step()
    rows.append(("G weights after one RMSprop step", max_diff(dict(theirs.gen.named_parameters()),
                                                               dict(ours.gen.named_parameters()))[0]))
    print(f"FUNIT one step, styleforge vs NVlabs/FUNIT ({len(xa)} animal faces at 32 px, torch "
          f"{torch.__version__}, float32, CPU)")
    print("| quantity | max abs difference |\n|---|---|")
    for name, v in rows:
        print(f"| {name} | {v:.2g} |")
    # losses and gradients agree to float32 rounding; after a step RMSprop divides each gradient
    # by its own running RMS, so a gradient near 0 turns a 1e-9 difference into a larger one
    worst = max(v for name, v in rows if "after" not in name)
    print(f"largest loss or gradient difference: {worst:.2g}")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
