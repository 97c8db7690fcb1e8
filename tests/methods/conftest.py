"""Fixtures shared by the method tests (Photo2Cartoon and its few-shot group branches)."""
import pytest
import torch

from styleforge.nn.mobilefacenet import MobileFaceNet


@pytest.fixture
def one_thread():
    """Run a test on one torch thread. The face-cartoon networks are tiny and run thousands of
    small ops: a second thread only adds synchronisation (several times slower on a busy 2-core
    machine). Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def facenet_file(tmp_path):
    """A randomly initialised MobileFaceNet saved as model_mobilefacenet.pth is (a plain state
    dict, batch-norm statistics included), with non-trivial running statistics."""
    torch.manual_seed(7)
    net = MobileFaceNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "model_mobilefacenet.pth"
    torch.save(net.state_dict(), path)
    return path
