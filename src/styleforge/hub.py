"""Model directories on the Hugging Face Hub, both ways (the optional ``hub`` extra:
``pip install 'styleforge[hub]'``).

A model directory is already what a Hub model repository holds: ``config.json`` +
``model.safetensors`` + ``README.md`` (the card, whose front matter the Hub reads).
:func:`push` uploads one; :func:`download` (``styleforge.load("hf:org/name")``) fetches one
through the hub library's own cache, so ``HF_HUB_OFFLINE=1``, ``HF_HOME``, ``HF_ENDPOINT`` and
tokens behave as for every other Hub library. Without ``huggingface_hub``: a one-line error
saying what to install.
"""
from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError, ConfigError, DownloadError, first_line

INSTALL = "pip install 'styleforge[hub]' (or: pip install 'huggingface_hub>=0.24')"
FILES = ["config.json", "model.safetensors", "README.md"]


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError(f"Hugging Face Hub models need the huggingface_hub package: {INSTALL}") from None
    return huggingface_hub


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"a Hub model is named ORG/NAME (hf:ORG/NAME), got {repo_id!r}")


def download(repo_id: str, revision: str | None = None) -> Path:
    """The model directory of Hub repository ``repo_id`` in the hub's cache (downloaded if
    needed; with ``HF_HUB_OFFLINE=1`` only the cache is read)."""
    hf = _hub()
    _check_repo_id(repo_id)
    from . import __version__

    try:
        path = hf.snapshot_download(repo_id, revision=revision, allow_patterns=FILES,
                                    library_name="styleforge", library_version=__version__)
    except hf.errors.LocalEntryNotFoundError:
        raise CheckpointError(f"hf:{repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set "
                              "(or the Hub cannot be reached); download it once online") from None
    except hf.errors.RepositoryNotFoundError:
        raise CheckpointError(f"hf:{repo_id}: no such model repository on the Hub (or it is private: "
                              "log in with 'hf auth login')") from None
    except (hf.errors.HfHubHTTPError, OSError, ValueError) as e:
        raise DownloadError(f"cannot download hf:{repo_id}: {first_line(e)}") from None
    return Path(path)


def push(folder, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload the model directory ``folder`` (its config, weights and card) to ``repo_id``,
    creating the repository if need be; returns the commit's URL. A folder without a card gets
    one first (directories written before cards existed)."""
    from .card import CARD_FILE, card_text
    from .checkpoint import read_model_config, resolve_model_dir
    from .utils.atomic import atomic_write_text

    hf = _hub()
    _check_repo_id(repo_id)
    folder = resolve_model_dir(folder)
    meta = read_model_config(folder)  # a one-line error for a folder that is not a model
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"{folder} has no model.safetensors")
    if not (folder / CARD_FILE).is_file():
        atomic_write_text(folder / CARD_FILE, card_text(meta["method"]))
    api = hf.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), allow_patterns=FILES,
                                 commit_message=f"styleforge push: a {meta['method']} model")
    except (hf.errors.HfHubHTTPError, OSError, ValueError) as e:
        raise DownloadError(f"cannot push {folder} to hf:{repo_id}: {first_line(e)}") from None
    return getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}"
