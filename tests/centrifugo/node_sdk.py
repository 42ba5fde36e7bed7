"""Runs ``tests/centrifugo/node/sdk.mjs``: the npm ``centrifuge`` SDK under Node with ``ws``.

``node_modules`` is installed on first use with ``npm ci`` from the committed
``package-lock.json`` (or by ``scripts/test-deps.sh``); it is never committed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from support import require

NODE_DIR = Path(__file__).resolve().parent / "node"
SDK_BUNDLE = NODE_DIR / "node_modules" / "centrifuge" / "dist" / "centrifuge.js"


def ensure_node_sdk() -> None:
    """Skip (locally) or fail (CI) without node/npm; install the SDK when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    require(node is not None and npm is not None, "node and npm are needed (Node 20)")
    if (NODE_DIR / "node_modules" / "centrifuge").exists():
        return
    assert npm is not None
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    require(result.returncode == 0, f"npm ci failed: {result.stderr[-2000:]}")


class NodeSdk:
    """One ``node sdk.mjs`` process; its JSON-line events, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, mode: str, url: str, token: str, channel: str) -> NodeSdk:
        node = shutil.which("node")
        assert node is not None
        process = await asyncio.create_subprocess_exec(
            node,
            str(NODE_DIR / "sdk.mjs"),
            mode,
            url,
            token,
            channel,
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def next(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next event named ``event`` (earlier ones stay in :attr:`events`)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    stderr = await self.process.stderr.read() if self.process.stderr else b""
                    raise AssertionError(f"node exited: {self.events} {stderr.decode()}")
                item = json.loads(line)
                self.events.append(item)
                if item["event"] == "failed":
                    raise AssertionError(f"node SDK failed: {item}")
                if item["event"] == event:
                    return item

    def seen(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    async def stop(self) -> None:
        if self.process.returncode is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
