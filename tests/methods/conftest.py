"""Fixtures shared by the method tests (Photo2Cartoon and its few-shot group branches; a VGG-16 file
for the feed-forward style methods)."""
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


@pytest.fixture(scope="session")
def vgg16_file(tmp_path_factory):
    """A VGG-16 in torchvision's layout (``features.N.weight/bias`` of the 13 convs, the name of
    their ``vgg16-397923af.pth``) with random He-scaled weights, for the perceptual losses of the
    feed-forward style methods (Johnson, CIN)."""
    from styleforge.nn.vgg import conv_names, torchvision_indices

    g = torch.Generator().manual_seed(16)
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    sd, ch = {}, 3
    for name, w in zip(conv_names("vgg16"), widths):
        i = torchvision_indices("vgg16")[name]
        sd[f"features.{i}.weight"] = torch.randn(w, ch, 3, 3, generator=g) * (2 / (9 * ch)) ** 0.5
        sd[f"features.{i}.bias"] = torch.randn(w, generator=g) * 0.01
        ch = w
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save(sd, path)
    return path
