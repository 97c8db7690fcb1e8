"""``styleforge serve MODEL_DIR...``: the local web app (styleforge.webapp)."""
from __future__ import annotations

import os
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "STYLEFORGE_TOKEN"


def register(sub) -> None:
    p = sub.add_parser("serve", help="run a local web app that translates uploaded images",
                       description="Load the models once and serve a page where images are uploaded (or "
                       "dropped), translated and downloaded, plus a JSON/HTTP API (docs/serve.md). Binds "
                       "127.0.0.1 (this machine only) unless --host says otherwise.")
    p.add_argument("models", nargs="+", metavar="MODEL_DIR", help="model directories (or exported files)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 opens "
                   "it to the network, and then a token is required)")
    p.add_argument("--token", help="a secret every API request must carry (Authorization: Bearer TOKEN; the "
                   f"page: open /#token=TOKEN); required with a --host other than loopback; also read from "
                   f"--token-file or ${TOKEN_ENV}. Visible to other users in the process list: prefer those")
    p.add_argument("--token-file", help="read the token from this file (its first line)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--max-upload-mb", type=float, default=20, help="largest request body in MB (default 20)")
    p.add_argument("--max-megapixels", type=float, default=25,
                   help="largest image, width × height from its header, in megapixels (default 25)")
    p.add_argument("--max-side", type=int, default=1024, help="longer sides above this are scaled down "
                   "before translating, and size inputs (AdaIN's style_size) are capped at it (default 1024)")
    p.add_argument("--max-request-megapixels", type=float, default=50,
                   help="all the images of one request together, from their headers, in megapixels (default 50)")
    p.add_argument("--max-iterations", type=int, default=1000, help="optimisation methods (gatys, photo): "
                   "iterations of one request, every stage together (default 1000)")
    p.add_argument("--max-seconds", type=float, default=120, help="optimisation methods: seconds of one "
                   "request; the image reached then is the answer (default 120)")
    p.add_argument("--workers", type=int, default=1, help="translations run at once (default 1)")
    p.add_argument("--queue", type=int, default=64, help="requests that may wait for a worker; more get "
                   "503 (default 64)")
    from .translate import add_runtime_flag

    add_runtime_flag(p)
    p.add_argument("--bf16", action="store_true", help="run the networks under bf16 autocast (faster on CPUs "
                   "with AVX-512 BF16/AMX and on GPUs; outputs differ by bf16 rounding)")
    p.set_defaults(func=run)


def read_token(args) -> str | None:
    """The token from --token, else --token-file, else $STYLEFORGE_TOKEN (None: no token)."""
    from ..errors import ConfigError

    if args.token is not None and args.token_file is not None:
        raise ConfigError("give --token or --token-file, not both")
    token = args.token
    if args.token_file is not None:
        try:
            lines = open(args.token_file, encoding="utf-8").read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--token-file {args.token_file}: cannot read it ({e.__class__.__name__})") from None
        token = lines[0] if lines else ""
    elif token is None:
        token = os.environ.get(TOKEN_ENV)
        if token is None:
            return None
    token = token.strip()
    if len(token) < 16:
        where = "--token-file" if args.token_file else ("--token" if args.token is not None else f"${TOKEN_ENV}")
        raise ConfigError(f"{where}: the token must be at least 16 characters, got {len(token)} "
                          "(python -c 'import secrets; print(secrets.token_urlsafe())' makes one)")
    return token


def run(args, overrides) -> int:
    from ..errors import ConfigError
    from ..webapp import Limits, serve

    if overrides:
        raise ConfigError(f"serve takes no config overrides: {' '.join(overrides)}")
    for name in ("port", "max_side", "workers", "max_iterations"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.queue < 0:
        raise ConfigError(f"--queue must be ≥ 0, got {args.queue}")
    for name in ("max_upload_mb", "max_megapixels", "max_request_megapixels", "max_seconds"):
        if not getattr(args, name) > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    token = read_token(args)
    if args.host not in LOOPBACK and not token:
        raise ConfigError(f"--host {args.host} makes the app reachable from other machines: give it a token "
                          f"(--token-file FILE or ${TOKEN_ENV}; clients send 'Authorization: Bearer TOKEN')")
    limits = Limits(max_bytes=int(args.max_upload_mb * 1e6), max_pixels=int(args.max_megapixels * 1e6),
                    max_request_pixels=int(args.max_request_megapixels * 1e6), max_side=args.max_side,
                    max_iterations=args.max_iterations, max_seconds=args.max_seconds, workers=args.workers,
                    queue=args.queue)
    if args.host not in LOOPBACK:
        print(f"note: binding {args.host}: the app is reachable from other machines; the API needs the token "
              "(no TLS: put a reverse proxy with HTTPS in front beyond a trusted network)", file=sys.stderr)
    serve(args.models, host=args.host, port=args.port, device=args.device, limits=limits, token=token,
          runtime=args.runtime, bf16=args.bf16)
    return 0
