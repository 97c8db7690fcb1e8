"""The local web app of ``styleforge serve``: FastAPI, one static page, models loaded once.

Endpoints (docs/serve.md has the details)::

    GET  /                 the page (web/index.html)
    GET  /api/models       the models: id, method, directions, inference options; the limits
    POST /api/translate    multipart: image, model, direction, option.<name> -> image/png
    GET  /api/health       {"status": "ok", "busy": n, "waiting": n}

Every error is a JSON ``{"error": message}`` with a 4xx status (503 when the queue is full).
An upload is checked in this order, each check before any costlier step: bytes while the body
is read (413, the reading stops at the limit), the header's format and size (415 not an image;
413 more pixels than allowed, before any pixel is decoded: decompression bombs), the mode
(415), then the decode (422 truncated/corrupt). Decoding and inference run together in worker
threads, at most ``workers`` at once; up to ``queue`` further requests wait their turn, more
get 503 with Retry-After, checked before the body is read and again before queueing. Images whose longer side exceeds ``max_side`` are scaled down to it first (CPU
time and memory grow with the pixels); the result has the processed size.
"""
from __future__ import annotations

import asyncio
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image
from starlette.requests import Request as StarletteRequest

from .errors import ImageLoadError, StyleforgeError

WEB_DIR = Path(__file__).resolve().parent / "web"

# modes whose conversion to RGB is well defined (data.images.to_rgb); LAB and HSV are refused:
# their colours depend on a white point / conversion the file does not state
ACCEPTED_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                  "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


@dataclass
class Limits:
    max_bytes: int = 20_000_000  # one request's body (all its images together)
    max_pixels: int = 25_000_000  # width × height from the header, checked before decoding
    max_side: int = 1024  # longer side is scaled down to this before translating
    workers: int = 1  # inferences at once
    queue: int = 64  # requests waiting for a worker before 503


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _mb(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


# ---- reading and checking an upload ------------------------------------------------------
async def read_limited(chunks, limit: int) -> bytes:
    """Join an async iterator of byte chunks, stopping (413) as soon as more than ``limit``
    bytes have come."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise HTTPProblem(413, f"upload too large: more than {_mb(limit)} (the server's --max-upload-mb)")
    return bytes(buf)


_STATUS = {"empty": 400, "too_large": 413, "not_image": 415, "no_pixels": 415, "mode": 415}


def decode_upload(data: bytes, name: str, limits: Limits) -> Image.Image:
    """Bytes of one uploaded file -> RGB image, or :class:`HTTPProblem` naming what is wrong.

    :func:`styleforge.data.images.load_rgb` reads it, as for the CLI, with the server's pixel
    limit and modes; its error kinds map to statuses (other failures: 422 truncated/corrupt)."""
    from .data.images import load_rgb

    try:
        return load_rgb(data, name, max_pixels=limits.max_pixels, modes=ACCEPTED_MODES)
    except ImageLoadError as e:
        kind, msg = getattr(e, "kind", "corrupt"), f"{name}: {e.reason}"
        if kind == "mode":
            msg += "; accepted: grayscale, palette, RGB(A), CMYK, YCbCr, 16-bit and float grayscale"
        elif kind == "too_large" and "not decoded" in e.reason:  # our limit, not Pillow's
            msg += " (the server's --max-megapixels)"
        raise HTTPProblem(_STATUS.get(kind, 422), msg) from None  # 422: truncated, corrupt


def fit_side(img: Image.Image, max_side: int) -> Image.Image:
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    s = max_side / max(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)


def to_tensor(img: Image.Image) -> torch.Tensor:
    from .data.transforms import to_tensor as tt

    return tt(img)[None]


# ---- the models --------------------------------------------------------------------------
class Model:
    def __init__(self, model_id: str, path: str, pipe):
        self.id, self.path, self.pipe = model_id, path, pipe
        method = pipe.method
        self.method_name = getattr(method, "method_name", type(method).__name__)
        opts = getattr(method, "inference_options", None)
        self.options = {o.name: o for o in (opts() if opts else [])}

    def describe(self) -> dict:
        return {"id": self.id, "method": self.method_name, "path": self.path,
                "directions": list(self.pipe.directions),
                "options": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(o).items()}
                            for o in self.options.values()]}

    def parse_options(self, form) -> dict:
        """``option.<name>`` form fields -> keyword arguments of ``translate`` (checked)."""
        kw = {}
        unknown = [k[7:] for k in form.keys() if k.startswith("option.") and k[7:] not in self.options]
        if unknown:
            raise HTTPProblem(422, f"model {self.id} ({self.method_name}) has no option {unknown[0]!r}"
                              + (f"; its options: {', '.join(self.options)}" if self.options else ""))
        for name, o in self.options.items():
            v = form.get(f"option.{name}")
            if v is None or (isinstance(v, str) and v == ""):
                continue
            kw[name] = self._value(o, v)
        return kw

    def _value(self, o, v):
        if o.kind == "image":
            if isinstance(v, str):
                raise HTTPProblem(422, f"option {o.name} is an image: upload a file")
            return ("image", v)
        if not isinstance(v, str):  # a file sent for a text option
            raise HTTPProblem(422, f"option {o.name} is a {o.kind}, not a file: send it as a text field "
                              f"'option.{o.name}'")
        if o.kind == "bool":
            if v.lower() not in ("true", "false", "1", "0", "on", "off"):
                raise HTTPProblem(422, f"option {o.name} must be true or false, got {v!r}")
            return v.lower() in ("true", "1", "on")
        if o.kind == "choice":
            if v not in [str(c) for c in o.choices]:
                raise HTTPProblem(422, f"option {o.name} must be one of {', '.join(map(str, o.choices))}, got {v!r}")
            return v
        try:
            x = int(v) if o.kind == "int" else float(v)
        except ValueError:
            raise HTTPProblem(422, f"option {o.name} must be a{'n integer' if o.kind == 'int' else ' number'}, "
                              f"got {v!r}") from None
        if (o.min is not None and x < o.min) or (o.max is not None and x > o.max) or x != x:
            raise HTTPProblem(422, f"option {o.name} must be in [{o.min}, {o.max}], got {v}")
        return x


def load_models(paths, device=None, runtime: str = "auto") -> dict[str, Model]:
    from .batch import load_translator

    models: dict[str, Model] = {}
    for p in paths:
        base = Path(p).resolve().name or "model"
        if base == "model":  # runs/h2z/model -> h2z
            base = Path(p).resolve().parent.name or base
        mid, i = base, 2
        while mid in models:
            mid, i = f"{base}-{i}", i + 1
        models[mid] = Model(mid, str(p), load_translator(p, device=device, runtime=runtime))
    return models


# ---- the app -----------------------------------------------------------------------------
class Gate:
    """At most ``workers`` inferences at once, at most ``queue`` waiting; the rest are told
    to retry (503) instead of piling up without bound."""

    def __init__(self, workers: int, queue: int):
        self.sem = asyncio.Semaphore(workers)
        self.queue, self.waiting, self.busy = queue, 0, 0

    def check(self) -> None:
        """503 when every worker is busy and the queue is full (cheap: no await)."""
        if self.sem.locked() and self.waiting >= self.queue:
            raise HTTPProblem(503, f"server busy: {self.waiting} requests already waiting "
                              f"(the server's --queue); try again shortly", {"Retry-After": "2"})

    async def run(self, fn, *args):
        """``fn(*args)`` in a worker thread once a worker is free (503 if the queue is full)."""
        self.check()
        self.waiting += 1
        try:
            await self.sem.acquire()
        finally:
            self.waiting -= 1
        self.busy += 1
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self.busy -= 1
            self.sem.release()


def create_app(models: dict[str, Model], limits: Limits | None = None):
    """The FastAPI app serving ``models`` (from :func:`load_models`)."""
    limits = limits or Limits()
    app = FastAPI(title="styleforge", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    gate_holder: dict = {}

    def gate() -> Gate:  # made on first use, inside the server's event loop
        if "g" not in gate_holder:
            gate_holder["g"] = Gate(limits.workers, limits.queue)
        return gate_holder["g"]

    @app.exception_handler(HTTPProblem)
    async def _problem(request, exc: HTTPProblem):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StyleforgeError)
    async def _lib_error(request, exc: StyleforgeError):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/api/models")
    async def list_models():
        return {"models": [m.describe() for m in models.values()],
                "limits": {"max_upload_bytes": limits.max_bytes, "max_pixels": limits.max_pixels,
                           "max_side": limits.max_side}}

    @app.get("/api/health")
    async def health():
        g = gate()
        return {"status": "ok", "busy": g.busy, "waiting": g.waiting}

    @app.post("/api/translate")
    async def translate(request: Request):
        gate().check()  # a full queue answers 503 before the body is read
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limits.max_bytes:
            raise HTTPProblem(413, f"upload too large: {_mb(int(length))}, more than {_mb(limits.max_bytes)} "
                              "(the server's --max-upload-mb)")
        body = await read_limited(request.stream(), limits.max_bytes)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        form = await StarletteRequest(request.scope, replay).form(max_files=8, max_fields=64)
        try:
            return await _translate(form)
        finally:
            await form.close()

    async def _translate(form):
        model_id = form.get("model") or next(iter(models))
        if model_id not in models:
            raise HTTPProblem(422, f"unknown model {model_id!r}; models: {', '.join(models)}")
        model = models[model_id]
        direction = form.get("direction") or None
        if direction is not None and direction not in model.pipe.directions:
            raise HTTPProblem(422, f"model {model_id} translates {', '.join(model.pipe.directions)}; "
                              f"got direction {direction!r}")
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPProblem(400, "no image: send the file in the form field 'image'")
        kw = model.parse_options(form)
        name = Path(upload.filename or "image").name
        data = await upload.read()
        refs = {k: (Path(v[1].filename or k).name, await v[1].read())
                for k, v in kw.items() if isinstance(v, tuple) and v and v[0] == "image"}

        def work():  # in a gated worker thread: at most `workers` decodes + inferences at once
            from .data.transforms import to_pil

            img = fit_side(decode_upload(data, name, limits), limits.max_side)
            args = dict(kw)
            for k, (rname, rdata) in refs.items():
                args[k] = to_tensor(fit_side(decode_upload(rdata, rname, limits), limits.max_side))
            y = model.pipe.translate_tensor(to_tensor(img), direction, **args)
            buf = io.BytesIO()
            to_pil(y[0].float().cpu()).save(buf, format="PNG")
            return buf.getvalue()

        png = await gate().run(work)
        used = direction or model.pipe.directions[0]
        stem = Path(name).stem or "image"
        return Response(png, media_type="image/png", headers={
            "Content-Disposition": f'inline; filename="{stem}_{used}.png"',
            "X-Styleforge-Model": model.id, "X-Styleforge-Direction": used})

    return app


def serve(model_paths, host: str = "127.0.0.1", port: int = 8000, device=None, limits: Limits | None = None,
          runtime: str = "auto", log_level: str = "info") -> None:
    """Load the models once, then run the app under uvicorn until interrupted."""
    import uvicorn

    models = load_models(model_paths, device=device, runtime=runtime)
    app = create_app(models, limits)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {', '.join(models)} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)

