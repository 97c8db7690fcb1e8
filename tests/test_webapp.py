"""The web app's API (styleforge.webapp) through FastAPI's TestClient: good uploads give the
pipeline's image, bad ones a 4xx JSON naming the problem; options come from the method; the
queue is bounded. The real server, the browser and the load test are in tests/commands/test_serve.py."""
import io
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import styleforge
from styleforge.checkpoint import save_model
from styleforge.methods.base import InferenceOption
from styleforge.registry import build_method
from styleforge.webapp import Limits, Model, create_app, load_models, read_limited

with warnings.catch_warnings():  # newer Starlette prefers httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LIMITS = Limits(max_bytes=300_000, max_pixels=300 * 300, max_side=256)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("serve") / "h2z" / "model"
    save_model(d, build_method("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks"))
    return d


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(create_app(load_models([model_dir]), LIMITS)) as c:
        yield c


@pytest.fixture
def horse(h2z):
    return sorted((h2z / "testA").iterdir())[0]


def post(client, data: bytes, name="x.jpg", **fields):
    return client.post("/api/translate", files={"image": (name, data, "application/octet-stream")}, data=fields)


def png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_runtime_onnx_without_an_exported_file_is_one_note_and_runs_torch(model_dir):
    notes = []
    pipe = load_models([model_dir], runtime="onnx", notes=notes)["h2z"].pipe
    assert pipe.runtime == "torch"
    assert len(notes) == 1 and "\n" not in notes[0], notes
    assert notes[0].startswith("h2z: runtime: no onnx file beside") and notes[0].endswith("running torch instead")
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    torch.testing.assert_close(pipe(x), styleforge.load(model_dir)(x), rtol=0, atol=0)


def test_bf16_reaches_the_pipeline_of_every_model(model_dir):
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    fp32 = load_models([model_dir], runtime="torch")["h2z"].pipe
    bf16 = load_models([model_dir], runtime="torch", bf16=True)["h2z"].pipe
    assert (fp32.runtime, bf16.runtime) == ("torch", "torch+bf16")
    diff = float((bf16(x) - fp32(x)).abs().max())
    assert 0 < diff < 0.2, diff  # bf16 rounding: not the fp32 picture, nor another one


def test_page_and_model_listing(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and "/api/translate" in page.text
    j = client.get("/api/models").json()
    assert [(m["id"], m["method"], m["directions"]) for m in j["models"]] == [("h2z", "cyclegan", ["AtoB", "BtoA"])]
    assert j["limits"] == {"max_upload_bytes": 300_000, "max_pixels": 90_000, "max_request_pixels": 50_000_000,
                           "max_side": 256, "max_iterations": 1000, "max_seconds": 120.0}


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_upload_returns_the_pipelines_translation(client, model_dir, horse, direction):
    r = post(client, horse.read_bytes(), name=horse.name, direction=direction)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == f'inline; filename="{horse.stem}_{direction}.png"'
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    want = np.asarray(styleforge.load(model_dir)(horse, direction=direction))
    assert np.array_equal(got, want)


def test_large_sides_are_scaled_down_to_max_side(client, horse):
    with Image.open(horse) as im:
        big = im.convert("RGB").resize((280, 140))  # 39,200 pixels: allowed, but longer than 256
    r = post(client, png_bytes(big), name="big.png")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (256, 128)


def bomb_png(width: int, height: int) -> bytes:
    """A real 8×8 PNG whose header claims width × height (the pixel data stays tiny)."""
    data = bytearray(png_bytes(Image.new("RGB", (8, 8), (200, 30, 30))))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # IHDR's CRC
    return bytes(data)


def lab_tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("LAB", (16, 16), (50, 10, 10)).save(buf, format="TIFF")
    return buf.getvalue()


@pytest.mark.parametrize("case,status,needle", [
    ("text", 415, "not an image"),
    ("empty", 400, "empty file"),
    ("too_many_bytes", 413, "upload too large"),
    ("too_many_pixels", 413, "400×300 = 120,000 pixels"),
    ("bomb", 413, "5000×5000 = 25,000,000 pixels"),  # 8×8 stored: refused from the header, not decoded
    ("huge_bomb", 413, "decompression bomb"),  # over Pillow's own 2 × MAX_IMAGE_PIXELS
    ("lab_mode", 415, "unsupported image mode LAB"),
    ("truncated", 422, "truncated"),
    ("bad_direction", 422, "direction 'CtoD'"),
    ("unknown_model", 422, "unknown model 'nope'"),
    ("unknown_option", 422, "no input 'alpha'"),
    ("no_file", 400, "form field 'image'"),
])
def test_bad_uploads_get_a_4xx_json_naming_the_problem(client, horse, case, status, needle):
    good = horse.read_bytes()
    with Image.open(horse) as im:
        big = png_bytes(im.convert("RGB").resize((400, 300)))
        with_noise = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)))
    if case == "no_file":
        r = client.post("/api/translate", data={"model": "h2z"})
    else:
        data, fields = {"text": (b"just some words", {}), "empty": (b"", {}),
                        "too_many_bytes": (good * 40, {}), "too_many_pixels": (big, {}),
                        "bomb": (bomb_png(5_000, 5_000), {}), "huge_bomb": (bomb_png(60_000, 60_000), {}),
                        "lab_mode": (lab_tiff(), {}), "truncated": (with_noise[:len(with_noise) // 2], {}),
                        "bad_direction": (good, {"direction": "CtoD"}),
                        "unknown_model": (good, {"model": "nope"}),
                        "unknown_option": (good, {"option.alpha": "0.5"})}[case]
        r = post(client, data, **fields)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_unreadable_exif_is_ignored_as_by_the_cli(client, horse, monkeypatch):
    """A JPEG whose EXIF Pillow cannot apply: the CLI's load_rgb keeps the stored pixels, and
    so does the server (it reads uploads with load_rgb) instead of refusing the file."""
    from PIL import ImageOps

    from styleforge.data.images import load_rgb

    def broken(*a, **k):
        raise SyntaxError("corrupt EXIF data")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    assert load_rgb(horse).size == Image.open(horse).size
    r = post(client, horse.read_bytes(), name=horse.name)
    assert r.status_code == 200, r.text


def test_byte_limit_stops_reading_at_the_limit():
    import asyncio

    consumed = []

    async def chunks():
        for i in range(100):
            consumed.append(i)
            yield b"x" * 10_000

    with pytest.raises(Exception, match="upload too large"):
        asyncio.run(read_limited(chunks(), 25_000))
    assert len(consumed) == 3  # not the 1 MB the client would have sent


def test_a_body_without_content_length_is_limited_too(client):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n"
            + b"x" * 400_000 + b"\r\n--b--\r\n")

    def gen():
        for i in range(0, len(body), 50_000):
            yield body[i:i + 50_000]

    r = client.post("/api/translate", content=gen(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "upload too large" in r.json()["error"]


class Recorder:
    """Stands in for a method's translate: records its keyword arguments, returns the input."""

    def __init__(self, gate=None):
        self.calls, self.gate = [], gate

    def __call__(self, x, direction=None, **kw):
        if self.gate is not None:
            assert self.gate.wait(20)
        self.calls.append((direction, kw))
        return x


def patched_model(model_dir, options, recorder):
    from styleforge.pipeline import declared_inputs

    pipe = styleforge.load(model_dir)
    pipe.method.inference_options = lambda: options
    pipe.method.translate = recorder
    pipe.inputs = declared_inputs(pipe.method)
    return Model("m", str(model_dir), pipe)


def test_method_options_make_the_form_and_reach_translate(model_dir, horse, h2z):
    opts = [InferenceOption("alpha", "float", 1.0, 0.0, 1.0, help="style strength"),
            InferenceOption("style", "image"), InferenceOption("group", "choice", "a", choices=("a", "b")),
            InferenceOption("seed", "int", None, 0, 2**31 - 1), InferenceOption("dropout", "bool", False)]
    rec = Recorder()
    with TestClient(create_app({"m": patched_model(model_dir, opts, rec)}, LIMITS)) as c:
        listed = c.get("/api/models").json()["models"][0]["options"]
        assert [(o["name"], o["kind"]) for o in listed] == [(o.name, o.kind) for o in opts]
        assert {k: listed[0][k] for k in ("name", "kind", "default", "min", "max", "choices", "help")} == \
            {"name": "alpha", "kind": "float", "default": 1.0, "min": 0.0, "max": 1.0,
             "choices": [], "help": "style strength"}
        style = sorted((h2z / "testB").iterdir())[0]
        r = c.post("/api/translate", files={"image": (horse.name, horse.read_bytes()),
                                            "option.style": (style.name, style.read_bytes())},
                   data={"option.alpha": "0.25", "option.group": "b", "option.seed": "7", "option.dropout": "true"})
        assert r.status_code == 200, r.text
        (direction, kw), = rec.calls
        assert direction == "AtoB" and {k: kw[k] for k in ("alpha", "group", "seed", "dropout")} == \
            {"alpha": 0.25, "group": "b", "seed": 7, "dropout": True}
        from styleforge.data.images import load_rgb
        from styleforge.data.transforms import to_tensor

        assert torch.equal(kw["style"], to_tensor(load_rgb(style))[None])
        # translate returned its input: the response is the upload's pixels
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), np.asarray(load_rgb(horse)))
        for fields, needle in [({"option.alpha": "1.5"}, "alpha must be in [0, 1]"),
                               ({"option.group": "c"}, "group must be one of a, b"),
                               ({"option.seed": "x"}, "seed must be an integer"),
                               ({"option.style": "text"}, "style is an image")]:
            r = post(c, horse.read_bytes(), **fields)
            assert r.status_code == 422 and needle in r.json()["error"], r.text
        for name in ("alpha", "group", "seed", "dropout"):  # a file where text belongs: 422, not a crash
            r = c.post("/api/translate", files={"image": (horse.name, horse.read_bytes()),
                                                f"option.{name}": ("v.txt", b"1")})
            assert r.status_code == 422 and f"{name} is a" in r.json()["error"], r.text
        assert len(rec.calls) == 1


def test_requests_wait_in_a_bounded_queue_then_get_503(model_dir, horse, monkeypatch):
    import styleforge.webapp as W

    decoded = []
    real_decode = W.decode_upload
    monkeypatch.setattr(W, "decode_upload", lambda *a: decoded.append(a[1]) or real_decode(*a))
    release = threading.Event()
    rec = Recorder(gate=release)
    limits = Limits(max_bytes=300_000, max_pixels=300 * 300, max_side=256, workers=1, queue=2)
    with TestClient(create_app({"m": patched_model(model_dir, [], rec)}, limits)) as c:
        results = []

        def send():
            results.append(post(c, horse.read_bytes()).status_code)

        def wait_for(key, n):
            t0 = time.time()
            while c.get("/api/health").json()[key] != n:
                assert time.time() - t0 < 20, f"{key} never reached {n}"
                time.sleep(0.02)

        threads = [threading.Thread(target=send)]
        threads[0].start()
        wait_for("busy", 1)
        threads += [threading.Thread(target=send) for _ in range(2)]
        for t in threads[1:]:
            t.start()
        wait_for("waiting", 2)
        assert len(decoded) == 1  # the waiting requests decode only once a worker is theirs
        full = post(c, horse.read_bytes())  # one more than the queue holds
        assert full.status_code == 503 and "server busy" in full.json()["error"]
        assert full.headers["retry-after"] == "2"
        assert len(decoded) == 1  # refused without decoding
        release.set()
        for t in threads:
            t.join(30)
        assert results == [200, 200, 200] and len(rec.calls) == 3 and len(decoded) == 3


def test_pix2pix_options_from_its_method_drive_the_translation(tmp_path, facades):
    from styleforge import config as C

    torch.manual_seed(0)
    cfg = C.resolve("tiny/pix2pix")
    save_model(tmp_path / "p2p", build_method(cfg["method"], **cfg["model"]))
    photo = sorted(p for p in facades.rglob("*.jpg"))[0]
    with Image.open(photo) as im:  # one half of a side-by-side pair, 64 px (the U-Net's multiple)
        data = png_bytes(im.convert("RGB").crop((0, 0, im.height, im.height)).resize((64, 64)))
    with TestClient(create_app(load_models([tmp_path / "p2p"]), LIMITS)) as c:
        names = [o["name"] for o in c.get("/api/models").json()["models"][0]["options"]]
        assert {"dropout", "seed"} <= set(names)

        def run(**fields):
            r = post(c, data, name="f.png", **fields)
            assert r.status_code == 200, r.text
            return np.asarray(Image.open(io.BytesIO(r.content)))

        # test-time dropout is the paper's noise: a seed repeats it, another seed changes it,
        # and switching it off makes the output deterministic
        a, b, other = run(**{"option.seed": "3"}), run(**{"option.seed": "3"}), run(**{"option.seed": "4"})
        assert np.array_equal(a, b) and not np.array_equal(a, other)
        assert np.array_equal(run(**{"option.dropout": "false"}), run(**{"option.dropout": "false"}))


def test_cartoonize_endpoint_finds_the_face_and_pastes_it_back(model_dir, shared_data):
    """The web app's cartoonize path is the CLI's (faces.cartoonize_image): a real portrait gives
    the photo back at its size with the face region changed; a horse photo has no face (422)."""
    photo = shared_data("photo2cartoon_demo") / "photo_test.jpg"
    with TestClient(create_app(load_models([model_dir]), Limits(max_side=512))) as c:
        r = c.post("/api/cartoonize", files={"image": (photo.name, photo.read_bytes())},
                   data={"paste_back": "true"})
        assert r.status_code == 200, r.text
        out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=float)
        from styleforge.webapp import decode_upload, fit_side

        src = np.asarray(fit_side(decode_upload(photo.read_bytes(), photo.name, Limits()), 512), dtype=float)
        assert out.shape == src.shape
        changed = np.abs(out - src).mean(axis=2) > 8
        assert 0.02 < changed.mean() < 0.8  # the face region, not nothing and not the whole photo
        r = c.post("/api/cartoonize", files={"image": (photo.name, photo.read_bytes())})
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size[0] == 256  # the crop


def test_cartoonize_endpoint_without_a_face_is_a_422(client, horse):
    r = client.post("/api/cartoonize", files={"image": (horse.name, horse.read_bytes())})
    assert r.status_code == 422 and "no face found" in r.json()["error"]


# ---- limits per request (issue 20 item 3) ------------------------------------------------
def tiny_model(tmp_path, preset, **over):
    from styleforge import config as C

    torch.manual_seed(0)
    cfg = C.resolve(f"tiny/{preset}")
    d = save_model(tmp_path / preset, build_method(cfg["method"], **{**cfg["model"], **over}))
    return load_models([d])


def test_optimisation_stops_at_the_servers_iteration_and_time_budget(tmp_path, horse):
    models = tiny_model(tmp_path, "gatys", stall_tol=0.0)
    style = png_bytes(Image.open(horse).convert("RGB").rotate(90).resize((32, 32)))
    files = {"image": ("c.png", png_bytes(Image.open(horse).convert("RGB").resize((32, 32)))),
             "style": ("s.png", style)}
    with TestClient(create_app(models, Limits(max_iterations=40, max_seconds=60))) as c:
        listed = {o["name"]: o for o in c.get("/api/models").json()["models"][0]["inputs"]}
        assert listed["iterations"]["max"] == 40  # the method allows 100,000
        r = c.post("/api/translate", files=files, data={"iterations": "41"})
        assert r.status_code == 422 and "at most 40 (its --max-iterations)" in r.json()["error"]
        r = c.post("/api/translate", files=files, data={"iterations": "40"})
        assert r.status_code == 200 and "x-styleforge-stopped" not in r.headers
    with TestClient(create_app(models, Limits(max_iterations=100_000, max_seconds=1.0))) as c:
        got = []  # in a thread: an unbounded optimisation (minutes) fails the test instead of hanging it
        t = threading.Thread(target=lambda: got.append(
            c.post("/api/translate", files=files, data={"iterations": "100000"})), daemon=True)
        t.start()
        t.join(15)
        assert got, "100,000 iterations went on past the server's --max-seconds 1"
    assert got[0].status_code == 200 and got[0].headers["x-styleforge-stopped"].startswith("time")


def test_size_inputs_are_capped_at_max_side(tmp_path, horse):
    """AdaIN's style_size (the method allows 4096) cannot make the server process a style image
    larger than --max-side: above it is a 422, and the model's default is lowered to it."""
    models = tiny_model(tmp_path, "adain")
    seen = []
    method = models["adain"].pipe.method
    real = method.translate
    method.translate = lambda x, **kw: seen.append(kw["style"][0].shape[-2:]) or real(x, **kw)
    with Image.open(horse) as im:
        content, style = png_bytes(im.convert("RGB").resize((64, 64))), png_bytes(im.convert("RGB").resize((200, 100)))
    files = {"image": ("c.png", content), "style": ("s.png", style)}
    with TestClient(create_app(models, Limits(max_side=128))) as c:
        listed = {o["name"]: o for o in c.get("/api/models").json()["models"][0]["inputs"]}
        assert listed["style_size"]["max"] == 128 and listed["style_size"]["default"] <= 128
        r = c.post("/api/translate", files=files, data={"style_size": "4096"})
        assert r.status_code == 422 and "at most 128 (its --max-side)" in r.json()["error"], r.text
        assert c.post("/api/translate", files=files).status_code == 200
        assert c.post("/api/translate", files=files, data={"style_size": "100"}).status_code == 200
    assert [max(s) for s in seen] == [128, 100]  # the default (512) lowered to 128


def test_pixels_are_bounded_per_request_before_any_decode(tmp_path, monkeypatch):
    """Many small, highly compressible class images: refused from their headers (413), none decoded."""
    import styleforge.webapp as W

    models = tiny_model(tmp_path, "funit")
    decoded = []
    real = W.decode_upload
    monkeypatch.setattr(W, "decode_upload", lambda *a: decoded.append(a[1]) or real(*a))
    flat = png_bytes(Image.new("RGB", (1000, 1000), (90, 140, 200)))  # 1 MP in a few kB
    files = [("image", ("c.png", flat))] + [("class_images", (f"k{i}.png", flat)) for i in range(8)]
    with TestClient(create_app(models, Limits(max_pixels=2_000_000, max_request_pixels=5_000_000,
                                              max_side=64))) as c:
        r = c.post("/api/translate", files=files)
        assert r.status_code == 413 and "9 images of this request hold 9,000,000 pixels" in r.json()["error"]
        assert "--max-request-megapixels" in r.json()["error"] and decoded == []
        r = c.post("/api/translate", files=files[:4])
        assert r.status_code == 200, r.text


def test_too_many_files_and_unknown_routes_answer_the_json_error(client, horse):
    files = [("image", ("a.png", horse.read_bytes()))] + [("x", (f"{i}.png", b"1")) for i in range(70)]
    r = client.post("/api/translate", files=files)
    assert r.status_code == 400 and "at most 64 files" in r.json()["error"], r.text
    r = client.get("/api/translate")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_listing_names_no_server_path(client, model_dir):
    text = client.get("/api/models").text
    assert str(model_dir) not in text and str(model_dir.parent) not in text and '"path"' not in text


def test_token_is_required_by_the_api_when_set(model_dir, horse):
    token = "s3cret-token-of-16+chars"
    with TestClient(create_app(load_models([model_dir]), LIMITS, token=token)) as c:
        assert c.get("/").status_code == 200 and c.get("/api/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": token}):
            r = c.get("/api/models", headers=headers)
            assert r.status_code == 401 and "needs its token" in r.json()["error"]
        r = c.post("/api/translate", files={"image": (horse.name, horse.read_bytes())})
        assert r.status_code == 401
        assert c.get("/api/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        r = c.post("/api/translate", files={"image": (horse.name, horse.read_bytes())},
                   headers={"X-Styleforge-Token": token})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_a_client_that_leaves_stops_its_optimisation(tmp_path, horse):
    """A real server (uvicorn in a thread): the client gives up after 1 s on a 100,000-iteration
    request; the worker is free again within seconds, and the next request is answered."""
    import socket

    import httpx
    import uvicorn

    from styleforge.utils import budget as B

    models = tiny_model(tmp_path, "gatys", stall_tol=0.0)
    spent = []
    real_spend = B.Budget.spend
    B_spend = lambda self: spent.append(self) or real_spend(self)  # noqa: E731
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(models, Limits(max_iterations=100_000, max_seconds=300))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    img = png_bytes(Image.open(horse).convert("RGB").resize((32, 32)))
    files = {"image": ("c.png", img), "style": ("s.png", img)}
    try:
        t0 = time.time()
        while not server.started:
            assert time.time() - t0 < 20
            time.sleep(0.05)
        B.Budget.spend = B_spend
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/api/translate", files=files, data={"iterations": "100000"}, timeout=1.5)
        t1 = time.time()
        while httpx.get(url + "/api/health").json()["busy"]:
            assert time.time() - t1 < 10, "the optimisation went on after its client left"
            time.sleep(0.1)
        assert spent and spent[-1].stopped == "cancelled" and spent[-1].iterations < 100_000
        r = httpx.post(url + "/api/translate", files=files, data={"iterations": "2"}, timeout=30)
        assert r.status_code == 200
    finally:
        B.Budget.spend = real_spend
        server.should_exit = True
        thread.join(10)


def test_serve_on_a_port_in_use_is_one_line_before_any_model_loads(tmp_path, monkeypatch, capsys):
    """uvicorn found the port taken only after the models were loaded and measured, logged it and
    exited 3 (the code of a NaN in training), under a 'serving ... at' line."""
    import socket

    import styleforge.webapp as W
    from styleforge.cli import main

    loaded = []
    monkeypatch.setattr(W, "load_models", lambda *a, **k: loaded.append(a) or {})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(tmp_path / "m"), "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
                                                 "(another server on that port? choose another --port)"]
    assert loaded == [] and "serving" not in captured.out
