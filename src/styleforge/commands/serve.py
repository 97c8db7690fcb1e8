"""``styleforge serve MODEL_DIR...``: the local web app (styleforge.webapp)."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("serve", help="run a local web app that translates uploaded images",
                       description="Load the models once and serve a page where images are uploaded (or "
                       "dropped), translated and downloaded, plus a JSON/HTTP API (docs/serve.md). Binds "
                       "127.0.0.1 (this machine only) unless --host says otherwise.")
    p.add_argument("models", nargs="+", metavar="MODEL_DIR", help="model directories (or exported files)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 opens "
                   "it to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--max-upload-mb", type=float, default=20, help="largest request body in MB (default 20)")
    p.add_argument("--max-megapixels", type=float, default=25,
                   help="largest image, width × height from its header, in megapixels (default 25)")
    p.add_argument("--max-side", type=int, default=1024, help="longer sides above this are scaled down "
                   "before translating (default 1024)")
    p.add_argument("--workers", type=int, default=1, help="translations run at once (default 1)")
    p.add_argument("--queue", type=int, default=64, help="requests that may wait for a worker; more get "
                   "503 (default 64)")
    p.set_defaults(func=run)


def run(args, overrides) -> int:
    from ..errors import ConfigError
    from ..webapp import Limits, serve

    if overrides:
        raise ConfigError(f"serve takes no config overrides: {' '.join(overrides)}")
    for name in ("port", "max_side", "workers"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.queue < 0 or args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise ConfigError("--queue must be ≥ 0, --max-upload-mb and --max-megapixels > 0")
    limits = Limits(max_bytes=int(args.max_upload_mb * 1e6), max_pixels=int(args.max_megapixels * 1e6),
                    max_side=args.max_side, workers=args.workers, queue=args.queue)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: binding {args.host}: the app is reachable from other machines; it has no "
              "authentication", file=sys.stderr)
    serve(args.models, host=args.host, port=args.port, device=args.device, limits=limits)
    return 0
