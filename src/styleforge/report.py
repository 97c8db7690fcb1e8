"""Static results pages: loss curves (matplotlib PNG) and image tables in one ``index.html``
that needs no server (images are files beside it)."""
from __future__ import annotations

import html
import io
from pathlib import Path

from .checkpoint import atomic_write_bytes, atomic_write_text
from .training.logging import read_log


def plot_losses(run_dir, path) -> Path | None:
    """One panel per optimizer group of losses (keys not starting with ``lr_``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_log(run_dir)
    if not recs:
        return None
    keys = [k for k in recs[-1] if k not in ("step", "epoch") and not k.startswith("lr_")]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for k in keys:
        pts = [(r["step"], r[k]) for r in recs if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def write_index(out_dir, title: str, sections: list[dict], config_text: str | None = None,
                notes: list[str] = ()) -> Path:
    """``sections``: ``{"title", "columns": [...], "rows": [[relative image paths]], "labels": [...]}``
    or ``{"title", "image": relative path}``."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
             "table{border-collapse:collapse}td,th{padding:4px;text-align:center}"
             "td img{width:192px;image-rendering:auto}pre{background:#f4f4f4;padding:1em;overflow:auto}"
             "</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for n in notes:
        parts.append(f"<p>{html.escape(n)}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s['title'])}</h2>")
        if "image" in s:
            parts.append(f"<img src='{html.escape(s['image'])}' alt='{html.escape(s['title'])}'>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in ["", *s["columns"]]) + "</tr>")
        for label, row in zip(s["labels"], s["rows"]):
            cells = "".join(f"<td><img src='{html.escape(p)}' alt='{html.escape(label)}'></td>" for p in row)
            parts.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
        parts.append("</table>")
    if config_text:
        parts.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    parts.append("</body></html>")
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, "\n".join(parts))
    return path
