"""Peers (e) and (f): ``hubbub serve``, with a choice of uvicorn WebSocket implementation.

Same as ``hubbub serve --config benchmarks/hubbub.toml`` except that ``--ws``
picks uvicorn's WebSocket implementation (``wsproto``, ``websockets``,
``websockets-sansio``) so the benchmark can compare them; the default is the
one ``hubbub serve`` uses.

Run: python -m benchmarks.peers.hubbub_server --port 8005 [--engine redis://... --workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from hubbub.asgi.serve import WS_IMPLEMENTATION, export_settings, uvicorn_options
from hubbub.config import load_settings

CONFIG = Path(__file__).resolve().parent.parent / "hubbub.toml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8005)
    parser.add_argument("--engine", default="memory")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ws", default=WS_IMPLEMENTATION)
    args = parser.parse_args()
    settings = load_settings(
        CONFIG, overrides={"port": args.port, "engine": args.engine, "workers": args.workers}
    )
    export_settings(settings)
    options = uvicorn_options(settings)
    options["ws"] = args.ws
    uvicorn.run(
        "hubbub.asgi.serve:create_app",
        factory=True,
        workers=settings.workers,
        log_level="warning",
        **options,
    )


if __name__ == "__main__":
    main()
