"""utils/seed.py: seeding decided in one place (the trainer's global streams, the pipeline's own
generators and its seed of output k)."""
import random
import re
from pathlib import Path

import numpy as np
import torch

from styleforge.utils.seed import output_seed, seed_everything, seeded_generator

PKG = Path(__file__).resolve().parents[2] / "src" / "styleforge"


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_the_same_seed_gives_the_same_draws_from_python_numpy_and_torch():
    seed_everything(7)
    first = _draws()
    _draws()  # move every stream on, so a stream the seed forgets is caught where it stands
    seed_everything(7)
    again = _draws()
    assert again == first
    seed_everything(8)
    other = _draws()
    assert all(a != b for a, b in zip(other, first)), (other, first)  # each stream follows the seed


def test_a_seeded_generator_draws_the_same_whatever_the_global_stream():
    torch.manual_seed(1)
    a = torch.randn(5, generator=seeded_generator(3))
    torch.manual_seed(2)
    torch.rand(10)
    assert torch.equal(torch.randn(5, generator=seeded_generator(3)), a)
    assert not torch.equal(torch.randn(5, generator=seeded_generator(4)), a)


def test_output_k_of_n_uses_seed_plus_k_and_a_lone_unseeded_output_none():
    assert [output_seed(10, k, 3) for k in range(3)] == [10, 11, 12]
    assert [output_seed(None, k, 2) for k in range(2)] == [0, 1]  # several outputs: repeatable from 0
    assert output_seed(5, 0, 1) == 5 and output_seed(None, 0, 1) is None


def test_only_utils_seeds_the_global_random_streams():
    """One place sets the global streams of random, NumPy and torch; a method or front end that
    seeds them itself changes every later draw of the process (a generator of its own, from
    seeded_generator, is fine)."""
    call = re.compile(r"(?<![\w.])(torch\.(?:cuda\.|random\.)?manual_seed(?:_all)?|(?:np|numpy)\.random\.seed"
                      r"|random\.seed)\s*\(")
    assert not _calls(call), _calls(call)


def test_only_utils_seeds_a_generator_of_its_own():
    """A local generator is seeded by ``seeded_generator`` (a CPU generator from the seed alone),
    not by its own ``torch.Generator(...).manual_seed(...)`` (or ``g.manual_seed(...)``)."""
    call = re.compile(r"(\.manual_seed)\s*\(")
    assert not _calls(call), _calls(call)


def _calls(call: re.Pattern) -> list[str]:
    """Where the library outside utils/ calls what ``call`` matches (group 1 names it)."""
    return [f"{f.relative_to(PKG)} line {text.count(chr(10), 0, m.start()) + 1} calls {m.group(1)}"
            for f in sorted(PKG.rglob("*.py")) if f.relative_to(PKG).parts[0] != "utils"
            for text in [f.read_text()] for m in call.finditer(text)]
