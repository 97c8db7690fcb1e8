"""Static results pages: one ``index.html`` that needs no server (images are files beside it).

* :func:`write_index`: a page of image tables and pictures (the demo's page is one).
* :func:`write_comparison`: ``styleforge report RUN_DIR... --out DIR``: the runs side by side:
  a metric table (FID, KID of each run's model on the test split, the best periodic evaluation,
  steps, parameters), the same test inputs translated by every run, the loss curves
  (matplotlib PNG, one per run) and the periodic-evaluation curves of all runs in one plot.
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Sequence

from .runs import RunFolder
from .training.logging import read_log
from .utils.atomic import atomic_write_bytes, atomic_write_text

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}"
         "table{border-collapse:collapse}td,th{padding:4px 8px;text-align:center}"
         "table.metrics td,table.metrics th{border-bottom:1px solid #ddd}"
         "td img{width:192px;image-rendering:auto}h2+p,h2+p+p{max-width:900px}pre{background:#f4f4f4;padding:1em;overflow:auto}"
         ".warn{color:#8a5300}")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_fig(fig, path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _plt().close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def loss_keys(recs: list[dict]) -> list[str]:
    """Logged loss names: every key of any record but step/epoch, learning rates and
    periodic-evaluation values (``eval_*``), in first-seen order."""
    keys: dict[str, None] = {}
    for r in recs:
        for k in r:
            if k not in ("step", "epoch") and not k.startswith(("lr_", "eval_")):
                keys.setdefault(k)
    return list(keys)


def plot_losses(run_dir, path, title: str | None = None) -> Path | None:
    """All logged losses of a run in one panel (log scale)."""
    recs = read_log(run_dir)
    keys = loss_keys(recs)
    if not keys:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for k in keys:
        pts = [(r["step"], r[k]) for r in recs if k in r and r[k] > 0]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save_fig(fig, path)


def plot_curves(series: dict, path, xlabel: str, ylabel: str, log: bool = False,
                title: str | None = None) -> Path | None:
    """``series``: {label: [y at x = 1, 2, ...]} as lines in one panel."""
    if not any(series.values()):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for label, ys in series.items():
        ax.plot(range(1, len(ys) + 1), ys, label=label, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save_fig(fig, path)


def plot_eval_curves(runs: Sequence[tuple[str, Path]], path) -> Path | None:
    """The periodic-evaluation values (``eval_*`` in log.jsonl) of several runs, one plot."""
    series = []
    for label, run in runs:
        recs = read_log(run)
        for k in sorted({k for r in recs for k in r if k.startswith("eval_")}):
            pts = [(r["step"], r[k]) for r in recs if k in r]
            series.append((f"{label}: {k[5:]}", pts))
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for name, pts in series:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out metric (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_fig(fig, path)


# ---- pages ------------------------------------------------------------------------------------
def _img(src: str, alt: str) -> str:
    """An image that opens at full size when clicked."""
    return f"<a href='{html.escape(src)}'><img src='{html.escape(src)}' alt='{html.escape(alt)}'></a>"


def render_page(out_dir, title: str, sections: list[dict], config_text: str | None = None,
                notes: Sequence[str] = (), metric_table: dict | None = None,
                warnings: Sequence[str] = ()) -> Path:
    """Write ``out_dir/index.html``.

    ``sections``: ``{"title", "columns": [...], "rows": [[relative image paths]], "labels": [...]}``,
    ``{"title", "image": relative path}`` or ``{"title", "html": raw}``; any of them may have a
    ``"text"``: a paragraph under the title saying what the section shows. ``metric_table``:
    ``{"columns": [...], "rows": [[cells]]}`` (text cells), shown first."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for n in notes:
        parts.append(f"<p>{e(n)}</p>")
    if metric_table:
        parts.append("<h2>Metrics</h2><table class='metrics' id='metrics'><tr>"
                     + "".join(f"<th>{e(c)}</th>" for c in metric_table["columns"]) + "</tr>")
        for row in metric_table["rows"]:
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        for note in metric_table.get("notes", ()):
            parts.append(f"<p>{e(note)}</p>")
    for w in warnings:
        parts.append(f"<p class='warn'>warning: {e(w)}</p>")
    for s in sections:
        parts.append(f"<h2>{e(s['title'])}</h2>")
        if s.get("text"):
            parts.append(f"<p>{e(s['text'])}</p>")
        if "image" in s:
            parts.append(_img(s["image"], s["title"]))
            continue
        if "html" in s:
            parts.append(s["html"])
            continue
        parts.append("<table class='images'><tr>" + "".join(f"<th>{e(c)}</th>" for c in ["", *s["columns"]]) + "</tr>")
        for label, row in zip(s["labels"], s["rows"]):
            cells = "".join(f"<td>{_img(p, label)}</td>" for p in row)
            parts.append(f"<tr><td>{e(label)}</td>{cells}</tr>")
        parts.append("</table>")
    if config_text:
        parts.append(f"<h2>Config</h2><pre>{e(config_text)}</pre>")
    parts.append("</body></html>")
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, "\n".join(parts))
    return path


def write_index(out_dir, title: str, sections: list[dict], config_text: str | None = None,
                notes: Sequence[str] = (), metric_table: dict | None = None,
                warnings: Sequence[str] = ()) -> Path:
    """The single-run page (see :func:`render_page`)."""
    return render_page(out_dir, title, sections, config_text, notes, metric_table, warnings)


# ---- styleforge report ------------------------------------------------------------------------
def _run_model_dir(run: Path) -> Path:
    return RunFolder(run).inference_model()


def _labels(runs: Sequence[Path]) -> list[str]:
    # a generic folder name (the demo's run/, a model/) is shown with its parent's
    names = [r.resolve().name if r.resolve().name not in ("run", "model", "best")
             else f"{r.resolve().parent.name}/{r.resolve().name}" for r in runs]
    out = []
    for r, n in zip(runs, names):
        out.append(n if names.count(n) == 1 else f"{r.resolve().parent.name}/{n}")
    if len(set(out)) < len(out):
        out = [f"{i + 1}: {n}" for i, n in enumerate(out)]
    return out


def training_data_warning(run_dirs, data=None) -> str | None:
    """One sentence when the runs were trained on different data (``data.root`` or
    ``data.dataset`` of their config.yaml differ): their scores on one test split do not compare
    like for like. None when they agree, or only one run says what it trained on."""
    import yaml

    runs = [Path(r) for r in run_dirs]
    trained = {}
    for lab, run in zip(_labels(runs), runs):
        f = run / "config.yaml"
        if not f.is_file():
            continue
        d = (yaml.safe_load(f.read_text()) or {}).get("data") or {}
        root = d.get("root")
        trained[lab] = (str(Path(root).expanduser().resolve()) if root else "unknown data", d.get("dataset"))
    if len(set(trained.values())) < 2:
        return None
    each = "; ".join(f"{lab}: {root}" + (f" ({kind})" if kind else "") for lab, (root, kind) in trained.items())
    scored = data if data is not None else "the first run's data"
    return (f"these runs were trained on different data ({each}); all are scored on the test split of "
            f"{scored}, so their scores compare models, not training sets")


def _fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def write_comparison(run_dirs, out, metrics=("fid", "kid"), data=None, num_images: int = 6,
                     direction: str | None = None, opts=None, net=None, title: str | None = None,
                     device=None) -> Path:
    """``styleforge report``: one page comparing the runs (module docstring)."""
    from .metrics.evaluate import EvalOptions, parse_metrics

    out = Path(out)
    runs, labels, models, pipes, data, direction = _open_runs(run_dirs, data, direction, device)
    metrics = parse_metrics(metrics) if metrics else []
    table, results, warnings = _metric_table(runs, labels, models, pipes, data, direction, metrics,
                                             net, opts or EvalOptions(progress=False), device)
    sections = [_translations(pipes, labels, data, direction, num_images, out), *_run_sections(labels, runs, out)]
    if metrics:
        from .metrics.evaluate import json_ready

        atomic_write_text(out / "metrics.json", json.dumps(json_ready(
            {lab: res for lab, *_, res in results}), indent=2) + "\n")
    notes = [f"{len(runs)} run(s) on {data}, direction {direction}."]
    return render_page(out, title or "styleforge report", sections, None, notes, table, warnings)


def _open_runs(run_dirs, data, direction, device):
    """The runs' folders, labels, model directories and pipelines, the dataset (given, else the
    first run's ``data.root``) and the direction every run translates (given, else the first
    run's default)."""
    import yaml

    import styleforge
    from .errors import ConfigError, DataError

    runs = [Path(r) for r in run_dirs]
    if not runs:
        raise ConfigError("give at least one run folder")
    for r in runs:
        if not r.is_dir():
            raise DataError(f"run folder not found: {r}")
    models = [_run_model_dir(r) for r in runs]
    pipes = [styleforge.load(m, device=device) for m in models]
    if data is None:
        roots = ((yaml.safe_load((r / "config.yaml").read_text()) or {}).get("data", {}).get("root")
                 for r in runs if (r / "config.yaml").is_file())
        data = next((root for root in roots if root), None)
        if data is None:
            raise ConfigError("no dataset known for these runs: give --data DIR")
    direction = direction or pipes[0].method.directions[0]
    for p in pipes:
        p.method.check_direction(direction)
    return runs, _labels(runs), models, pipes, Path(data), direction


def _best_eval(run: Path) -> dict | None:
    f = RunFolder(run).best_dir / "eval.json"
    try:
        return json.loads(f.read_text()) if f.is_file() else None
    except json.JSONDecodeError:
        return None


def _metric_table(runs, labels, models, pipes, data, direction, metrics, net, opts, device):
    """The table (run, method, model, steps, parameters, each metric, the best held-out score
    where a run kept one), the per-run results ``(label, run, model, pipe, log, best, scores)``
    and the warnings (a metric's, said once with the runs it applies to; mixed training data)."""
    from .metrics.evaluate import evaluate_model

    if metrics and net is None:
        from .metrics.features import load_feature_net
        from .utils.device import pick_device

        net = load_feature_net(device=pick_device(device))
    warned: dict[str, list[str]] = {}  # warning -> runs it applies to
    results = []
    for lab, run, model, pipe in zip(labels, runs, models, pipes):
        res = evaluate_model(pipe, data, direction, metrics, net, opts) if metrics else None
        for w in (res or {}).get("warnings", []):
            warned.setdefault(w, []).append(lab)
        results.append((lab, run, model, pipe, read_log(run), _best_eval(run), res))
    show_best = any(b for *_, b, _ in results)
    mcols = [c for m, c in (("fid", "FID"), ("kid", "KID x100"), ("is", "IS")) if m in metrics]
    cols = ["run", "method", "model", "steps", "parameters", *mcols] + (["best held-out (step)"] if show_best else [])
    rows = []
    for lab, run, model, pipe, recs, best, res in results:
        steps = max((r.get("step", 0) for r in recs), default=None)
        nparams = sum(v for k, v in pipe.method.parameter_counts().items()
                      if k in getattr(pipe.method, "inference_modules", ()) or not pipe.method.inference_modules)
        row = [lab, pipe.method.method_name, str(model.relative_to(run)) if model.is_relative_to(run) else str(model),
               "-" if steps is None else f"{steps:,}", f"{nparams:,}"]
        m = res["metrics"] if res else {}
        if "fid" in metrics:
            row.append(_fmt(m["fid"]["value"]))
        if "kid" in metrics:
            row.append(f"{m['kid']['mean']:.2f} ± {m['kid']['std']:.2f}")
        if "is" in metrics:
            row.append(f"{m['is']['mean']:.2f} ± {m['is']['std']:.2f}")
        if show_best:
            row.append(f"{best['metric']} {best['value']:.3g} ({best['step']})" if best else "-")
        rows.append(row)
    table_notes = []
    if metrics:
        r0 = results[0][-1]
        table_notes.append(f"{', '.join(m.upper() for m in metrics)} of each model's {direction} translations of "
                           f"the {r0['n_fake']} test inputs against {r0['n_real']} real images of {r0['real']} "
                           f"({r0['feature_net']}; {r0['resize']}; FID by {r0['fid_method']}). Lower is better.")
    warnings = [f"{', '.join(labs)}: {w}" if len(labs) < len(runs) else w for w, labs in warned.items()]
    mixed = training_data_warning(runs, data)
    if mixed:
        warnings.insert(0, mixed)
    return {"columns": cols, "rows": rows, "notes": table_notes}, results, warnings


def _translations(pipes, labels, data, direction, num_images: int, out: Path) -> dict:
    """The section of the first ``num_images`` test inputs translated by each run (the images
    written under ``out/images``)."""
    from .data.images import load_rgb
    from .metrics.evaluate import test_split
    from .utils.images import save_image_atomic

    jobs, _, _ = test_split(pipes[0], data, direction)
    srows, slabels = [], []
    for i, job in enumerate(jobs[:num_images]):
        item = job.image
        img = load_rgb(item) if isinstance(item, (str, Path)) else item
        rel = f"images/{i:03d}_input.png"
        save_image_atomic(img, out / rel)
        row = [rel]
        for j, pipe in enumerate(pipes):
            rel = f"images/{i:03d}_run{j}.png"
            values = dict(job.values)
            if len(pipe.directions) > 1:
                values["direction"] = direction
            save_image_atomic(pipe.run(img, **values)[0]["image"], out / rel)
            row.append(rel)
        srows.append(row)
        slabels.append(Path(item).name if isinstance(item, (str, Path)) else f"#{i}")
    return {"title": f"Test inputs translated {direction}", "columns": ["input", *labels],
            "rows": srows, "labels": slabels}


def _run_sections(labels, runs, out: Path) -> list[dict]:
    """Each run's loss curves, the periodic-evaluation curves of all, and the configs."""
    sections = []
    for j, (lab, run) in enumerate(zip(labels, runs)):
        if plot_losses(run, out / f"losses_run{j}.png", title=lab):
            sections.append({"title": f"Training losses: {lab}", "image": f"losses_run{j}.png"})
    if plot_eval_curves(list(zip(labels, runs)), out / "eval_curves.png"):
        sections.append({"title": "Periodic evaluation on the held-out subset", "image": "eval_curves.png"})
    cfg_html = "".join(
        f"<details><summary>{html.escape(lab)}</summary><pre>{html.escape((run / 'config.yaml').read_text())}</pre></details>"
        for lab, run in zip(labels, runs) if (run / "config.yaml").is_file())
    if cfg_html:
        sections.append({"title": "Configs", "html": cfg_html})
    return sections
