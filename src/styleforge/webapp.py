"""The local web app of ``styleforge serve``: FastAPI, one static page, models loaded once.

Endpoints (docs/serve.md has the details)::

    GET  /                 the page (web/index.html)
    GET  /api/models       the models: id, method, directions, declared inputs and outputs; the limits
    POST /api/translate    multipart: image, model, one field per declared input (its name; files for
                           image inputs, several for a K-image input), num_outputs, outputs
                           -> image/png, or JSON with every sample and output (num_outputs > 1 or
                           optional outputs asked)
    POST /api/cartoonize   the same fields, plus paste_back / all_faces: faces found, aligned, segmented
                           and translated (styleforge.faces.cartoonize_image, as the CLI's cartoonize)
                           -> image/png (the photo with the faces pasted back, or the first face), or
                           JSON with every face (all_faces)
    GET  /api/health       {"status": "ok", "busy": n, "waiting": n}

The form and the API come from the model's declared inputs (``methods/base.py``), so a method
needs no code here: a reference image is a file field, K images several files, a number a
slider, a choice a select, a flag a checkbox; N outputs come back as a gallery. Older clients'
``option.<name>`` fields are read too.

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


# ---- the models --------------------------------------------------------------------------
IMAGE_KINDS = ("reference", "images", "mask")


def _describe_input(inp) -> dict:
    d = asdict(inp)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


class Model:
    def __init__(self, model_id: str, path: str, pipe):
        self.id, self.path, self.pipe = model_id, path, pipe
        self.method_name = getattr(pipe.method, "method_name", type(pipe.method).__name__)
        self.inputs = {i.name: i for i in pipe.inputs[1:]}

    @property
    def options(self) -> dict:
        """The declared inputs beyond the image and the direction (the form's extra fields)."""
        return {k: v for k, v in self.inputs.items() if k != "direction"}

    def describe(self) -> dict:
        return {"id": self.id, "method": self.method_name, "path": self.path,
                "directions": list(self.pipe.directions),
                "inputs": [_describe_input(i) for i in self.inputs.values()],
                "options": [_describe_input(i) for i in self.options.values()],
                "outputs": [_describe_input(o) for o in self.pipe.outputs],
                "stochastic": self.pipe.stochastic}

    def parse_inputs(self, form) -> tuple[dict, dict]:
        """Form fields -> (values of text inputs, checked; {input: [uploads]} of image inputs).
        A field is named as the input (``alpha``) or, as older clients send it, ``option.alpha``."""
        values, files = {}, {}
        reserved = {"image", "model", "num_outputs", "outputs", "format", "paste_back", "all_faces"}
        for key in form.keys():
            name = key[7:] if key.startswith("option.") else key
            if name in reserved:
                continue
            if name not in self.inputs:
                raise HTTPProblem(422, f"model {self.id} ({self.method_name}) has no input {name!r}"
                                  + (f"; its inputs: {', '.join(self.inputs)}" if self.inputs else ""))
        for name, inp in self.inputs.items():
            got = [v for k in (name, f"option.{name}") for v in form.getlist(k)]
            got = [v for v in got if not (isinstance(v, str) and v == "")]
            if not got:
                continue
            if inp.kind in IMAGE_KINDS or (inp.kind == "code" and not isinstance(got[0], str)):
                if any(isinstance(v, str) for v in got):
                    raise HTTPProblem(422, f"{name} is an image input: upload a file")
                if len(got) > 1 and not (inp.multiple or inp.kind == "images"):
                    raise HTTPProblem(422, f"{name} takes one image, got {len(got)}")
                files[name] = got
                continue
            if any(not isinstance(v, str) for v in got):  # a file sent for a text input
                raise HTTPProblem(422, f"{name} is a {inp.kind}, not a file: send it as a text field '{name}'")
            raw = got[0] if inp.kind != "floats" else " ".join(got)
            try:
                if inp.kind == "code":
                    values[name] = [float(x) for x in raw.replace(",", " ").split()]
                else:
                    from .pipeline import check_value

                    values[name] = check_value(inp, raw, name)
            except (StyleforgeError, ValueError) as e:
                raise HTTPProblem(422, str(e) if isinstance(e, StyleforgeError)
                                  else f"{name} must be numbers, got {raw!r}") from None
        return values, files


def _flag(v, name: str) -> bool:
    from .pipeline import parse_bool

    return False if v in (None, "") else parse_bool(v, name)


def load_models(paths, device=None, runtime: str = "auto") -> dict[str, Model]:
    from .pipeline import load

    models: dict[str, Model] = {}
    for p in paths:
        base = Path(p).resolve().name or "model"
        if base == "model":  # runs/h2z/model -> h2z
            base = Path(p).resolve().parent.name or base
        mid, i = base, 2
        while mid in models:
            mid, i = f"{base}-{i}", i + 1
        models[mid] = Model(mid, str(p), load(p, device=device, runtime=runtime))
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

    faces_holder: dict = {}

    def preprocessor():  # the face detector and matte, made once, in a worker thread
        if "p" not in faces_holder:
            from .faces.pipeline import FacePreprocessor

            faces_holder["p"] = FacePreprocessor()
        return faces_holder["p"]

    async def _form(request: Request):
        gate().check()  # a full queue answers 503 before the body is read
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limits.max_bytes:
            raise HTTPProblem(413, f"upload too large: {_mb(int(length))}, more than {_mb(limits.max_bytes)} "
                              "(the server's --max-upload-mb)")
        body = await read_limited(request.stream(), limits.max_bytes)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        return await StarletteRequest(request.scope, replay).form(max_files=64, max_fields=128)

    @app.post("/api/cartoonize")
    async def cartoonize(request: Request):
        form = await _form(request)
        try:
            return await _cartoonize(form)
        finally:
            await form.close()

    def _model_upload(form) -> tuple[Model, object]:
        """The form's model (default the first) and its ``image`` upload, or a 4xx."""
        model_id = form.get("model") or next(iter(models))
        if model_id not in models:
            raise HTTPProblem(422, f"unknown model {model_id!r}; models: {', '.join(models)}")
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPProblem(400, "no image: send the file in the form field 'image'")
        return models[model_id], upload

    async def _cartoonize(form):
        from .errors import NoFaceError

        model, upload = _model_upload(form)
        values, file_fields = model.parse_inputs(form)
        if file_fields:
            raise HTTPProblem(422, "cartoonize takes no image inputs besides the photo")
        try:
            paste = _flag(form.get("paste_back"), "paste_back")
            every = _flag(form.get("all_faces"), "all_faces")
        except StyleforgeError as e:
            raise HTTPProblem(422, str(e)) from None
        name = Path(upload.filename or "image").name
        data = await upload.read()

        def work():
            from .faces.pipeline import cartoonize_image

            img = fit_side(decode_upload(data, name, limits), limits.max_side)
            direction = values.pop("direction", None)
            try:
                res = cartoonize_image(model.pipe, img, preprocessor(), direction=direction, all_faces=every,
                                       paste_back=paste, source=name, **values)
            except NoFaceError as e:
                raise HTTPProblem(422, str(e)) from None
            pics = [res.image] if paste else res.faces
            out = []
            for pic in pics:
                buf = io.BytesIO()
                pic.save(buf, format="PNG")
                out.append(buf.getvalue())
            return out

        pngs = await gate().run(work)
        stem = Path(name).stem or "image"
        if len(pngs) == 1:
            return Response(pngs[0], media_type="image/png", headers={
                "Content-Disposition": f'inline; filename="{stem}_cartoon.png"', "X-Styleforge-Model": model.id})
        import base64

        return JSONResponse({"model": model.id, "samples": [
            {"image": "data:image/png;base64," + base64.b64encode(p).decode()} for p in pngs]})

    @app.post("/api/translate")
    async def translate(request: Request):
        form = await _form(request)
        try:
            return await _translate(form)
        finally:
            await form.close()

    async def _translate(form):
        model, upload = _model_upload(form)
        direction = form.get("direction") or form.get("option.direction") or None
        if direction is not None and direction not in model.pipe.directions:
            raise HTTPProblem(422, f"model {model.id} translates {', '.join(model.pipe.directions)}; "
                              f"got direction {direction!r}")
        values, file_fields = model.parse_inputs(form)
        try:
            n = model.pipe.check_num_outputs(form.get("num_outputs") or 1, "num_outputs")
        except StyleforgeError as e:
            raise HTTPProblem(422, str(e)) from None
        known = [o.name for o in model.pipe.outputs]
        extra = [o.strip() for o in (form.get("outputs") or "").split(",") if o.strip()]
        bad = [o for o in extra if o not in known]
        if bad:
            raise HTTPProblem(422, f"model {model.id} gives no output {bad[0]!r}; its outputs: {', '.join(known)}")
        wanted = ("image", *[o for o in extra if o != "image"])
        as_json = n > 1 or len(wanted) > 1 or form.get("format") == "json"
        name = Path(upload.filename or "image").name
        data = await upload.read()
        refs = {k: [(Path(f.filename or k).name, await f.read()) for f in fs] for k, fs in file_fields.items()}

        def work():  # in a gated worker thread: at most `workers` decodes + inferences at once
            img = fit_side(decode_upload(data, name, limits), limits.max_side)
            args = dict(values)
            for k, items in refs.items():
                imgs = [fit_side(decode_upload(rdata, rname, limits), limits.max_side) for rname, rdata in items]
                inp = model.inputs[k]
                args[k] = imgs if (inp.multiple or inp.kind == "images") else imgs[0]
            if direction is not None:
                args["direction"] = direction
            samples = model.pipe.run(img, num_outputs=n, outputs=wanted, **args)
            out = []
            for sample in samples:
                pngs = {}
                for key, pil in sample.items():
                    buf = io.BytesIO()
                    pil.save(buf, format="PNG")
                    pngs[key] = buf.getvalue()
                out.append(pngs)
            return out

        samples = await gate().run(work)
        used = direction or model.pipe.directions[0]
        stem = Path(name).stem or "image"
        headers = {"X-Styleforge-Model": model.id, "X-Styleforge-Direction": used}
        if not as_json:
            return Response(samples[0]["image"], media_type="image/png", headers={
                "Content-Disposition": f'inline; filename="{stem}_{used}.png"', **headers})
        import base64

        body = {"model": model.id, "direction": used, "samples": [
            {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in s.items()} for s in samples]}
        return JSONResponse(body, headers=headers)

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

