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
``option.<name>`` fields are read too. Nothing returned names a file on the server.

Every error is a JSON ``{"error": message}`` with a 4xx status (503 when the queue is full).
An upload is checked in this order, each check before any costlier step: bytes while the body
is read (413, the reading stops at the limit), the number of files and fields (400), the
headers' formats and sizes (415 not an image; 413 more pixels than allowed in one image or in
the whole request, before any pixel is decoded: decompression bombs), the mode (415), then the
decode (422 truncated/corrupt). Decoding and inference run together in ``workers`` threads of
the app's own; up to ``queue`` further requests wait their turn, more get 503 with Retry-After,
checked before the body is read and again before queueing. Images whose longer side exceeds
``max_side`` are scaled down to it first (CPU time and memory grow with the pixels); the result
has the processed size, and a size input (AdaIN's ``style_size``: an int that sizes a reference
image) is capped at ``max_side`` too. Optimisation methods (Gatys, photo) get a budget per
request (``max_iterations`` over all stages, ``max_seconds``; ``utils/budget.py``): the image
reached when it is spent is the answer. A request whose client has gone gives up its place in
the queue, or stops its optimisation at the next iteration.

With a ``token``, every ``/api/`` route but ``/api/health`` needs it (``Authorization: Bearer
TOKEN`` or ``X-Styleforge-Token``); the page reads it from its address (``/#token=TOKEN``).
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import io
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as StarletteRequest

from .errors import ImageLoadError, StyleforgeError
from .utils.budget import work_budget

WEB_DIR = Path(__file__).resolve().parent / "web"

# modes whose conversion to RGB is well defined (data.images.to_rgb); LAB and HSV are refused:
# their colours depend on a white point / conversion the file does not state
ACCEPTED_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                  "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


@dataclass
class Limits:
    max_bytes: int = 20_000_000  # one request's body (all its images together)
    max_pixels: int = 25_000_000  # width × height of one image from its header, checked before decoding
    max_request_pixels: int = 50_000_000  # the same, summed over every image of one request
    max_side: int = 1024  # longer side is scaled down to this before translating; size inputs capped at it
    max_iterations: int = 1000  # optimisation iterations of one request (all stages together)
    max_seconds: float = 120.0  # optimisation time of one request
    workers: int = 1  # inferences at once
    queue: int = 64  # requests waiting for a worker before 503

    def public(self) -> dict:
        return {"max_upload_bytes": self.max_bytes, "max_pixels": self.max_pixels,
                "max_request_pixels": self.max_request_pixels, "max_side": self.max_side,
                "max_iterations": self.max_iterations, "max_seconds": self.max_seconds}


# the server options that set each limit (named in errors)
OPTION = {"max_side": "--max-side", "max_iterations": "--max-iterations", "max_seconds": "--max-seconds",
          "max_request_pixels": "--max-request-megapixels"}
MAX_FILES, MAX_FIELDS = 64, 128  # parts of one form
POLL_S = 0.25  # how often a waiting or working request looks whether its client is still there


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


def header_pixels(data: bytes) -> int:
    """width × height from an image's header, without decoding (0 where it is no image: the
    decode names the problem)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size[0] * im.size[1]
    except Exception:  # noqa: BLE001 - any unreadable header: decode_upload says what is wrong
        return 0


def check_request_pixels(items, limits: Limits) -> None:
    """413 when the images of one request (``items``: (name, bytes)) hold more pixels together
    than ``limits.max_request_pixels``, from their headers: nothing is decoded."""
    total = sum(header_pixels(data) for _, data in items)
    if total > limits.max_request_pixels:
        raise HTTPProblem(413, f"the {len(items)} images of this request hold {total:,} pixels together, more "
                          f"than {limits.max_request_pixels:,} (the server's {OPTION['max_request_pixels']})")


def fit_side(img: Image.Image, max_side: int) -> Image.Image:
    """The server's cap: an image larger than ``max_side`` shrunk by the pipeline's resize."""
    from .pipeline import sized

    return sized(img, max_side, only_shrink=True)


# ---- the models --------------------------------------------------------------------------
IMAGE_KINDS = ("reference", "images", "mask")


def _describe_input(inp) -> dict:
    d = asdict(inp)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def size_inputs(inputs) -> set[str]:
    """The int inputs that size a reference or K images (AdaIN's ``style_size``)."""
    return {i.size for i in inputs if isinstance(i.size, str)}


class Model:
    def __init__(self, model_id: str, path: str, pipe):
        # path stays on the server: nothing returned to a client names it
        self.id, self.path, self.pipe = model_id, path, pipe
        self.method_name = getattr(pipe.method, "method_name", type(pipe.method).__name__)
        self.declared = {i.name: i for i in pipe.inputs[1:]}
        self.inputs = dict(self.declared)
        self.caps: dict[str, tuple[int, str]] = {}  # input -> (the server's bound, its option)

    def apply_limits(self, limits: Limits) -> None:
        """Bound the inputs that decide how much work a request is: size inputs by ``max_side``,
        ``iterations`` by ``max_iterations``. The listing shows the bounded range; a value above
        it is a 422 naming the server's option; a default above it is lowered to it."""
        self.inputs, self.caps = dict(self.declared), {}
        bounds = {n: (limits.max_side, "max_side") for n in size_inputs(self.declared.values())}
        if "iterations" in self.declared:
            bounds["iterations"] = (limits.max_iterations, "max_iterations")
        for name, (bound, key) in bounds.items():
            inp = self.declared.get(name)
            if inp is None or inp.kind != "int" or (inp.max is not None and inp.max <= bound):
                continue
            default = inp.default if inp.default is None or inp.default <= bound else bound
            self.inputs[name] = replace(inp, max=bound, default=default)
            self.caps[name] = (bound, OPTION[key])

    @property
    def options(self) -> dict:
        """The declared inputs beyond the image and the direction (the form's extra fields)."""
        return {k: v for k, v in self.inputs.items() if k != "direction"}

    def describe(self) -> dict:
        return {"id": self.id, "method": self.method_name,
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
                    values[name] = self._check(inp, raw)
            except (StyleforgeError, ValueError) as e:
                raise HTTPProblem(422, str(e) if isinstance(e, StyleforgeError)
                                  else f"{name} must be numbers, got {raw!r}") from None
        for name, inp in self.inputs.items():  # a default above the server's bound is lowered to it
            if name in self.caps and name not in values and inp.default != self.declared[name].default:
                values[name] = inp.default
        return values, files

    def _check(self, inp, raw):
        from .pipeline import check_value

        if inp.name in self.caps:
            value = check_value(self.declared[inp.name], raw, inp.name)  # the method's own range first
            bound, option = self.caps[inp.name]
            if value > bound:
                raise HTTPProblem(422, f"{inp.name} {value} is more than this server allows: at most {bound} "
                                  f"(its {option})")
            return value
        return check_value(inp, raw, inp.name)


def _flag(v, name: str) -> bool:
    from .pipeline import parse_bool

    return False if v in (None, "") else parse_bool(v, name)


def load_models(paths, device=None, runtime: str | None = None, bf16: bool = False, notes=None) -> dict[str, Model]:
    """The models by id; each runs by ``runtime`` (default $STYLEFORGE_RUNTIME, else auto:
    ``Pipeline.use_runtime`` measures the paths once on a synthetic image, cached); ``notes``
    (a list) collects the line saying which each took."""
    from .accel import default_runtime
    from .pipeline import load_for_runtime

    runtime = runtime or default_runtime()

    models: dict[str, Model] = {}
    for p in paths:
        base = Path(p).resolve().name or "model"
        if base == "model":  # runs/h2z/model -> h2z
            base = Path(p).resolve().parent.name or base
        mid, i = base, 2
        while mid in models:
            mid, i = f"{base}-{i}", i + 1
        pipe = load_for_runtime(p, device=device, runtime=runtime)
        choice = pipe.use_runtime(runtime, bf16)
        if notes is not None and choice.note:
            notes.append(f"{mid}: {choice.note}")
        models[mid] = Model(mid, str(p), pipe)
    return models


# ---- the app -----------------------------------------------------------------------------
class Gate:
    """At most ``workers`` inferences at once, in a pool of that many threads of the app's own
    (so memory does not grow with the default pool's threads), at most ``queue`` waiting; the
    rest are told to retry (503) instead of piling up without bound."""

    def __init__(self, workers: int, queue: int):
        self.sem = asyncio.Semaphore(workers)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="styleforge-worker")
        self.queue, self.waiting, self.busy = queue, 0, 0

    def check(self) -> None:
        """503 when every worker is busy and the queue is full (cheap: no await)."""
        if self.sem.locked() and self.waiting >= self.queue:
            raise HTTPProblem(503, f"server busy: {self.waiting} requests already waiting "
                              f"(the server's --queue); try again shortly", {"Retry-After": "2"})

    async def run(self, fn, started: dict | None = None):
        """``fn()`` in a worker thread once a worker is free (503 if the queue is full);
        ``started["at"]`` is set once it holds a worker."""
        self.check()
        self.waiting += 1
        try:
            await self.sem.acquire()
        finally:
            self.waiting -= 1
        if started is not None:
            started["at"] = True
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn)
        finally:
            self.busy -= 1
            self.sem.release()

    async def run_for(self, request, fn, cancel: threading.Event):
        """:meth:`run` while the client is connected. A client that leaves while the request
        waits gives up its place; one that leaves while it runs sets ``cancel`` (an optimisation
        stops at its next iteration) and frees the worker as soon as ``fn`` returns."""
        started: dict = {}
        task = asyncio.ensure_future(self.run(fn, started))
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                cancel.set()
                if not started:  # still waiting: nothing runs in a thread yet
                    task.cancel()
                await asyncio.wait({task})  # a running fn is never abandoned with its worker freed
                if not task.cancelled():
                    task.exception()  # retrieved: the client is gone, nobody reads it
                raise HTTPProblem(400, "the client closed the connection; the work was stopped")


class TokenGate:
    """ASGI middleware: with a token, ``/api/`` routes (but ``/api/health``) answer 401 unless
    the request carries it (``Authorization: Bearer TOKEN`` or ``X-Styleforge-Token: TOKEN``)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    def allowed(self, headers: list) -> bool:
        for k, v in headers:
            k = k.lower()
            if k == b"authorization" and v[:7].lower() == b"bearer ":
                v = v[7:].strip()
            elif k != b"x-styleforge-token":
                continue
            if hmac.compare_digest(v, self.token):
                return True
        return False

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if (scope["type"] == "http" and path.startswith("/api/") and path != "/api/health"
                and not self.allowed(scope.get("headers", []))):
            resp = JSONResponse({"error": "this server needs its token: send 'Authorization: Bearer TOKEN' "
                                 "(the page: open it as /#token=TOKEN)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
            return await resp(scope, receive, send)
        return await self.app(scope, receive, send)


def _png(pil) -> bytes:
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _stopped_headers(stopped: str | None, limits: Limits) -> dict:
    """A header saying why an optimisation stopped before its iterations were done."""
    if stopped == "time":
        return {"X-Styleforge-Stopped": f"time: the server's {OPTION['max_seconds']} {limits.max_seconds:g}"}
    if stopped == "iterations":
        return {"X-Styleforge-Stopped": f"iterations: the server's {OPTION['max_iterations']} {limits.max_iterations}"}
    return {}


class App:
    """What the routes share: the models, the limits, the gate, the face preprocessor."""

    def __init__(self, models: dict[str, Model], limits: Limits):
        self.models, self.limits = models, limits
        for m in models.values():
            m.apply_limits(limits)
        self._gate: Gate | None = None
        self._faces = None

    @property
    def gate(self) -> Gate:  # made on first use, inside the server's event loop
        if self._gate is None:
            self._gate = Gate(self.limits.workers, self.limits.queue)
        return self._gate

    def preprocessor(self):  # the face detector and matte, made once, in a worker thread
        if self._faces is None:
            from .faces.pipeline import FacePreprocessor

            self._faces = FacePreprocessor()
        return self._faces

    def listing(self) -> dict:
        return {"models": [m.describe() for m in self.models.values()], "limits": self.limits.public()}

    # ---- reading a request ---------------------------------------------------------------
    async def form(self, request: Request):
        limits = self.limits
        self.gate.check()  # a full queue answers 503 before the body is read
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limits.max_bytes:
            raise HTTPProblem(413, f"upload too large: {_mb(int(length))}, more than {_mb(limits.max_bytes)} "
                              "(the server's --max-upload-mb)")
        body = await read_limited(request.stream(), limits.max_bytes)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            return await StarletteRequest(request.scope, replay).form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
        except StarletteHTTPException as e:  # too many files or fields, a malformed body
            raise HTTPProblem(e.status_code, f"{e.detail} (a form holds at most {MAX_FILES} files and "
                              f"{MAX_FIELDS} fields)" if "Maximum" in str(e.detail) else str(e.detail)) from None

    def model_upload(self, form) -> tuple[Model, object]:
        """The form's model (default the first) and its ``image`` upload, or a 4xx."""
        model_id = form.get("model") or next(iter(self.models))
        if model_id not in self.models:
            raise HTTPProblem(422, f"unknown model {model_id!r}; models: {', '.join(self.models)}")
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPProblem(400, "no image: send the file in the form field 'image'")
        return self.models[model_id], upload

    def load(self, data: bytes, name: str) -> Image.Image:
        return fit_side(decode_upload(data, name, self.limits), self.limits.max_side)

    async def work(self, request, fn):
        """``fn()`` under the request budget, in a worker, while the client is there;
        returns (its result, why an optimisation stopped early or None)."""
        cancel = threading.Event()
        limits = self.limits

        def budgeted():
            with work_budget(limits.max_iterations, limits.max_seconds, cancel) as b:
                return fn(), b.stopped

        return await self.gate.run_for(request, budgeted, cancel)

    # ---- the routes ----------------------------------------------------------------------
    async def translate(self, request: Request, form):
        model, upload = self.model_upload(form)
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
        check_request_pixels([(name, data), *[it for items in refs.values() for it in items]], self.limits)

        def run():  # in a gated worker thread: at most `workers` decodes + inferences at once
            img = self.load(data, name)
            args = dict(values)
            for k, items in refs.items():
                imgs = [self.load(rdata, rname) for rname, rdata in items]
                inp = model.inputs[k]
                args[k] = imgs if (inp.multiple or inp.kind == "images") else imgs[0]
            if direction is not None:
                args["direction"] = direction
            samples = model.pipe.run(img, num_outputs=n, outputs=wanted, **args)
            return [{key: _png(pil) for key, pil in sample.items()} for sample in samples]

        samples, stopped = await self.work(request, run)
        used = direction or model.pipe.directions[0]
        stem = Path(name).stem or "image"
        headers = {"X-Styleforge-Model": model.id, "X-Styleforge-Direction": used,
                   **_stopped_headers(stopped, self.limits)}
        if not as_json:
            return Response(samples[0]["image"], media_type="image/png", headers={
                "Content-Disposition": f'inline; filename="{stem}_{used}.png"', **headers})
        body = {"model": model.id, "direction": used,
                "samples": [{k: _data_url(v) for k, v in s.items()} for s in samples]}
        if stopped:
            body["stopped"] = headers["X-Styleforge-Stopped"]
        return JSONResponse(body, headers=headers)

    async def cartoonize(self, request: Request, form):
        from .errors import NoFaceError

        model, upload = self.model_upload(form)
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

        def run():
            from .faces.pipeline import cartoonize_image

            img = self.load(data, name)
            direction = values.pop("direction", None)
            try:
                res = cartoonize_image(model.pipe, img, self.preprocessor(), direction=direction, all_faces=every,
                                       paste_back=paste, source=name, **values)
            except NoFaceError as e:
                raise HTTPProblem(422, str(e)) from None
            return [_png(pic) for pic in ([res.image] if paste else res.faces)]

        pngs, _ = await self.work(request, run)
        stem = Path(name).stem or "image"
        if len(pngs) == 1:
            return Response(pngs[0], media_type="image/png", headers={
                "Content-Disposition": f'inline; filename="{stem}_cartoon.png"', "X-Styleforge-Model": model.id})
        return JSONResponse({"model": model.id, "samples": [{"image": _data_url(p)} for p in pngs]})


def create_app(models: dict[str, Model], limits: Limits | None = None, token: str | None = None):
    """The FastAPI app serving ``models`` (from :func:`load_models`); with ``token``, the API
    needs it (:class:`TokenGate`)."""
    state = App(models, limits or Limits())
    app = FastAPI(title="styleforge", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    if token:
        app.add_middleware(TokenGate, token=token)

    @app.exception_handler(HTTPProblem)
    async def _problem(request, exc: HTTPProblem):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StyleforgeError)
    async def _lib_error(request, exc: StyleforgeError):
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)  # 404, 405, ...: the same JSON as every error
    async def _http_error(request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/api/models")
    async def list_models():
        return state.listing()

    @app.get("/api/health")
    async def health():
        g = state.gate
        return {"status": "ok", "busy": g.busy, "waiting": g.waiting}

    def route(handler):
        async def endpoint(request: Request):
            form = await state.form(request)
            try:
                return await handler(request, form)
            finally:
                await form.close()
        return endpoint

    app.post("/api/translate")(route(state.translate))
    app.post("/api/cartoonize")(route(state.cartoonize))
    return app


def check_port(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be listened on (another server has it, an
    address not of this machine), as uvicorn binds it (SO_REUSEADDR)."""
    import socket

    from .errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            import errno

            hint = (" (another server on that port? choose another --port)" if e.errno == errno.EADDRINUSE
                    else " (--host must be an address of this machine)" if e.errno == errno.EADDRNOTAVAIL else "")
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None


def serve(model_paths, host: str = "127.0.0.1", port: int = 8000, device=None, limits: Limits | None = None,
          runtime: str | None = None, log_level: str = "info", token: str | None = None, bf16: bool = False) -> None:
    """Load the models once, then run the app under uvicorn until interrupted."""
    import uvicorn

    check_port(host, port)  # before minutes of loading and measuring: uvicorn would exit 3 after them
    notes: list[str] = []
    models = load_models(model_paths, device=device, runtime=runtime, bf16=bf16, notes=notes)
    for line in notes:
        print(line, file=sys.stderr)
    app = create_app(models, limits, token=token)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {', '.join(models)} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)

