"""The model card: ``README.md`` in every model directory styleforge writes (train, import,
pull), with YAML front matter the Hugging Face Hub reads (``license``, ``library_name``,
``tags``, ``pipeline_tag``) and styleforge's own keys under ``styleforge:`` (method, paper,
source URL, licence, how the model was made, the import's equality check, the file's SHA-256).

:func:`card_text` is the one function that writes it; ``checkpoint.write_model_files`` calls it,
so no writer of a model directory can forget it. What it says of a method (paper, check) comes
from the catalogue's ``methods`` table (``zoo.yaml``), read as data.
"""
from __future__ import annotations

from pathlib import Path

import yaml

CARD_FILE = "README.md"
# what the Hub shows for a styleforge model; the "other" licence is spelled out in the card
HUB_TAGS = ["styleforge", "image-to-image", "style-transfer"]


def _method_info(method: str) -> dict:
    from .zoo import method_info

    return method_info(method)


def card_text(method: str, made: dict | None = None) -> str:
    """The card of a ``method`` model. ``made``: what is known of its making, with the keys
    ``how`` (a sentence: "trained with ...", "imported from ...", "pulled ..."), and where known
    ``name``, ``source`` (URL), ``page``, ``licence``, ``licence_id`` (the Hub's id),
    ``non_commercial``, ``file``, ``sha256``, ``checksum`` (published | computed). Missing
    keys are left out, never guessed; without a licence the card says none was recorded."""
    made = dict(made or {})
    info = _method_info(method)
    own = {"method": method, "paper": info.get("paper"), "paper_url": info.get("paper_url"),
           "how": made.get("how") or "written by styleforge", "name": made.get("name"),
           "source": made.get("source"), "page": made.get("page"), "licence": made.get("licence"),
           "non_commercial": bool(made.get("non_commercial")) or None,
           "file": made.get("file"), "sha256": made.get("sha256"), "checksum": made.get("checksum"),
           "equality_check": info.get("check") if made.get("imported") else None}
    own = {k: v for k, v in own.items() if v not in (None, "")}
    front = {"library_name": "styleforge", "license": made.get("licence_id") or "other"}
    if front["license"] == "other":  # the Hub asks for a name with "other"
        front["license_name"] = "see-card" if made.get("licence") else "not-recorded"
    front.update({"tags": HUB_TAGS + [method], "pipeline_tag": "image-to-image", "styleforge": own})
    title = made.get("name") or f"{method} model"
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", "",
             f"# {title}", "", f"A styleforge `{method}` model directory (`config.json` + `model.safetensors`).", ""]
    if own.get("paper"):
        lines += [f"- Paper: {own['paper']}" + (f" ({own['paper_url']})" if own.get("paper_url") else "")]
    lines += [f"- How it was made: {own['how']}"]
    if own.get("source"):
        lines += [f"- Source: {own['source']}" + (f" (from {own['page']})" if own.get("page") else "")]
    if own.get("sha256"):
        lines += [f"- SHA-256 of the source file: `{own['sha256']}` ("
                  + ("checked against the digest the source publishes" if own.get("checksum") == "published"
                     else "computed at download; the source publishes none") + ")"]
    if own.get("equality_check"):
        lines += [f"- Import check: {own['equality_check']}"]
    licence = own.get("licence") or "none recorded (a model you trained: your data's terms apply)"
    lines += [f"- Licence: {licence}"]
    if own.get("non_commercial"):
        lines += ["", "**Non-commercial licence: these weights may not be used commercially.**"]
    lines += ["", "Use: `styleforge.load(PATH)` in Python, or `styleforge translate PATH IMAGES... --out DIR`.", ""]
    return "\n".join(lines)


def read_card(folder) -> dict:
    """The front matter of ``folder``'s card ({} where there is none or it is not YAML)."""
    f = Path(folder) / CARD_FILE
    try:
        text = f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    if not text.startswith("---\n"):
        return {}
    head, sep, _ = text[4:].partition("\n---")
    try:
        data = yaml.safe_load(head) if sep else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}
