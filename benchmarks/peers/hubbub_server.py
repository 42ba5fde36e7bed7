"""Peers (e) and (f): ``hubbub serve``, with a choice of uvicorn WebSocket implementation.

Same as ``hubbub serve --config benchmarks/hubbub.toml`` except that ``--ws``
can pick one of uvicorn's own WebSocket implementations (``wsproto``,
``websockets``, ``websockets-sansio``: plain ASGI sends, one writer task per
connection) instead of hubbub's default (``direct``: uvicorn's sans-I/O
protocol plus pre-framed direct writes), so the benchmark can compare them.

Run: python -m benchmarks.peers.hubbub_server --port 8005 [--engine redis://... --workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from hubbub.asgi.serve import export_settings, uvicorn_options
from hubbub.config import load_settings

CONFIG = Path(__file__).resolve().parent.parent / "hubbub.toml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8005)
    parser.add_argument("--engine", default="memory")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ws", default="direct")
    args = parser.parse_args()
    settings = load_settings(
        CONFIG, overrides={"port": args.port, "engine": args.engine, "workers": args.workers}
    )
    export_settings(settings)
    options = uvicorn_options(settings)
    if args.ws != "direct":
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
