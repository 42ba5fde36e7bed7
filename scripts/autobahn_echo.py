"""Echo server and report summary for the Autobahn|Testsuite run (``scripts/autobahn.sh``).

Serve (the testee)::

    python scripts/autobahn_echo.py --port 9001 --ws hubbub [--compression] [--http hubbub]

runs a tiny ASGI echo app (accept, then send every text or bytes message back as
the same type until the peer disconnects) under uvicorn, with either hubbub's
WebSocket protocol (``hubbub.asgi.wsserver.HubbubWebSocketProtocol``) or, for
comparison, uvicorn's own ``wsproto`` or ``websockets-sansio`` one (the latter
on the same `websockets` sans-I/O parser as hubbub's). ``--http hubbub`` puts
hubbub's HTTP protocol (``hubbub.asgi.httpserver.HubbubHttpProtocol``, which
hands the parsed upgrade request over) in front, as ``hubbub serve`` does.

Summarise (after ``wstest -m fuzzingclient``)::

    python scripts/autobahn_echo.py --summary REPORT_DIR

prints, per agent in ``REPORT_DIR/index.json``, the number of cases per
behaviour and the cases that were not OK with the report's description and
result; exits 1 if any case's behaviour (or closing behaviour) is FAILED.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Large enough for the 9.x cases (16 MiB messages).
MAX_SIZE = 32 * 1024 * 1024
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")


async def echo(scope: Message, receive: Receive, send: Send) -> None:
    """Accept, then echo every message back as the same type until disconnect."""
    if scope["type"] == "lifespan":  # pragma: no cover - lifespan is off
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"websocket only"})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


def serve(
    port: int, ws: str, compression: bool, http: str = "httptools", host: str = "127.0.0.1"
) -> None:
    import uvicorn

    ws_class: Any
    http_class: Any = "httptools"
    if http == "hubbub":  # as `hubbub serve` runs: the upgrade request handed over parsed
        from hubbub.asgi.httpserver import HubbubHttpProtocol

        http_class = HubbubHttpProtocol
    if ws == "hubbub":
        import hubbub
        from hubbub.asgi.wsserver import HubbubWebSocketProtocol

        print(f"hubbub from {Path(hubbub.__file__).parent}", file=sys.stderr, flush=True)
        ws_class = HubbubWebSocketProtocol
    else:
        ws_class = ws
    uvicorn.run(
        echo,
        host=host,
        port=port,
        http=http_class,
        loop="uvloop",
        ws=ws_class,
        ws_max_size=MAX_SIZE,
        ws_ping_interval=None,
        ws_per_message_deflate=compression,
        lifespan="off",
        log_level="warning",
    )


def _case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split(".") if part.isdigit())


def _one_line(text: object, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _counts(counts: Counter[str]) -> str:
    """All five behaviours, then any other (closing behaviours also have e.g.
    ``WRONG CODE`` and ``UNCLEAN``)."""
    names = [*BEHAVIORS, *sorted(set(counts) - set(BEHAVIORS))]
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in names)


def summarize(report_dir: Path) -> int:
    """Print the per-agent summary of ``report_dir/index.json``; 1 if anything FAILED."""
    index: dict[str, dict[str, dict[str, Any]]] = json.loads(
        (report_dir / "index.json").read_text()
    )
    failed = False
    for agent, cases in sorted(index.items()):
        counts = Counter(case["behavior"] for case in cases.values())
        close_counts = Counter(case["behaviorClose"] for case in cases.values())
        print(f"== {agent}: {len(cases)} cases")
        print(f"   behavior:       {_counts(counts)}")
        print(f"   close behavior: {_counts(close_counts)}")
        for case_id in sorted(cases, key=_case_key):
            case = cases[case_id]
            behavior, close = case["behavior"], case["behaviorClose"]
            if behavior in ("OK", "INFORMATIONAL") and close in ("OK", "INFORMATIONAL"):
                continue
            if "FAILED" in (behavior, close):
                failed = True
            detail: dict[str, Any] = {}
            report_file = case.get("reportfile")
            if report_file and (report_dir / report_file).exists():
                detail = json.loads((report_dir / report_file).read_text())
            print(
                f"   {case_id}: {behavior} (close {close}, remote close code "
                f"{case.get('remoteCloseCode')}, {case.get('duration')} ms)"
            )
            if detail:
                print(f"      case:   {_one_line(detail.get('description', ''))}")
                print(f"      result: {_one_line(detail.get('result', ''))}")
                if close != "OK":
                    print(f"      close:  {_one_line(detail.get('resultClose', ''))}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--ws", choices=("hubbub", "wsproto", "websockets-sansio"), default="hubbub"
    )
    parser.add_argument("--compression", action="store_true", help="permessage-deflate on")
    parser.add_argument(
        "--http",
        choices=("httptools", "hubbub"),
        default="httptools",
        help="uvicorn's httptools protocol, or hubbub's subclass of it (as `hubbub serve`)",
    )
    parser.add_argument(
        "--summary", type=Path, metavar="REPORT_DIR", help="summarise a report instead"
    )
    args = parser.parse_args(argv)
    if args.summary is not None:
        return summarize(args.summary)
    if args.http == "hubbub" and args.ws != "hubbub":
        parser.error("--http hubbub needs --ws hubbub")
    serve(args.port, args.ws, args.compression, args.http, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
