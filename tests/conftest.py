import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data"
SHARED = REPO.parent / "shared" / "data"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# Tests check bit-exact CPU behaviour (resume, data parallel); on a machine with a GPU, "auto"
# would pick it. Subprocesses (CLI, torchrun) inherit this. scripts/gpu_check.py covers CUDA.
os.environ["STYLEFORGE_DEVICE"] = "cpu"


@pytest.fixture
def h2z():
    """The bundled horse2zebra sample (real images, 128 px)."""
    return SAMPLE / "horse2zebra"


@pytest.fixture
def facades():
    return SAMPLE / "facades"


def shared_or_skip(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)}, which a plain clone does not have")
    return p


@pytest.fixture
def shared_data():
    """``shared_data("photo2cartoon", ...)``: a folder of ../shared/data, or skip the test.

    A fixture rather than an import: tests/data/conftest.py shadows ``import conftest``."""
    return shared_or_skip
