"""errors.py: the one-line messages the CLI prints."""
import pytest
import torch

from styleforge.errors import first_line


class _Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, 1, 3, 3))

    def forward(self, x):
        return torch.nn.functional.conv2d(x, self.weight)


def test_first_line_of_a_torchscript_error_is_its_reason_not_the_interpreters_header():
    """A scripted network (the bundled FID Inception behind gatys --encoder inception) on a too
    small image: the one-line error said '(The following operation failed in the TorchScript
    interpreter.)' instead of the kernel/input size reason."""
    net = torch.jit.script(_Conv())
    with pytest.raises(RuntimeError) as e:
        net(torch.zeros(1, 1, 2, 2))
    assert str(e.value).startswith("The following operation failed in the TorchScript interpreter")
    line = first_line(e.value)
    assert "Kernel size can't be greater than actual input size" in line
    assert "TorchScript" not in line and not line.startswith("RuntimeError")


def test_first_line_keeps_an_ordinary_message_and_names_an_empty_one():
    assert first_line(ValueError("bad value\nsecond line")) == "bad value"
    assert first_line(EOFError()) == "EOFError"
