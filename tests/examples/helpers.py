"""Loading example apps (plain directories, not packages) and running them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import ModuleType

import httpx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(example: str, module: str = "app") -> ModuleType:
    """Import ``examples/<example>/<module>.py`` afresh (a new hub each time)."""
    path = EXAMPLES / example / f"{module}.py"
    name = f"example_{example}_{module}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@contextlib.asynccontextmanager
async def subprocess_server(
    args: list[str], *, cwd: Path, env: Mapping[str, str], ready_url: str, start_timeout: float = 10
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """Run a server command until ``ready_url`` answers 200; stop it afterwards."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(  # noqa: ASYNC220 (starting it does not block)
        args, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + start_timeout
        async with httpx.AsyncClient() as http:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"{args} exited early:\n{output}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(ready_url)).status_code == 200:
                        break
                if loop.time() > deadline:
                    raise TimeoutError(f"{ready_url} not ready")
                await asyncio.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
