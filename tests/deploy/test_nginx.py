"""deploy/nginx/hubbub.conf, for real: a WebSocket subscribe and an API publish
through nginx to a hub."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from hubbub.hub import Hub
from support import client, free_port, require

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "hubbub.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


def site_config(upstream: str, port: int) -> str:
    """deploy/nginx/hubbub.conf with only the addresses changed."""
    text = CONF.read_text()
    text, upstreams = re.subn(r"server 127\.0\.0\.1:8000;", f"server {upstream};", text)
    text, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", text)
    assert (upstreams, listens) == (1, 1), "the deploy config changed shape: update this test"
    return text


def test_timeouts_exceed_the_heartbeat() -> None:
    text = CONF.read_text()
    ws_block = text[text.index("location = /ws") :]
    ws_block = ws_block[: ws_block.index("}")]
    timeout = int(re.search(r"proxy_read_timeout (\d+)s;", ws_block).group(1))  # type: ignore[union-attr]
    assert timeout > 25 + 10  # ping_interval + pong_timeout defaults
    assert "proxy_set_header Upgrade $http_upgrade;" in ws_block
    assert "proxy_set_header Connection $connection_upgrade;" in ws_block
    assert "proxy_http_version 1.1;" in ws_block


async def test_websocket_and_api_through_nginx(
    server: str, hub: Hub, make_token: Callable[..., str], tmp_path: Path
) -> None:
    binary = nginx_binary()
    require(binary is not None, "nginx is not installed (apt-get install nginx)")
    assert binary is not None
    port = free_port()
    (tmp_path / "hubbub.conf").write_text(site_config(server, port))
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {tmp_path}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {tmp_path}/hubbub.conf;\n"
        "}\n"
    )
    check = await asyncio.to_thread(
        subprocess.run,
        [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(  # noqa: ASYNC220
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = f"127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{proxy}") as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/health")).status_code == 200:
                        break
                assert process.poll() is None, (tmp_path / "error.log").read_text()
                await asyncio.sleep(0.025)
            async with client(proxy, token=make_token("alice")) as ws:
                await ws.ok("subscribe", channel="chat:lobby")
                response = await http.post(
                    "/api/publish",
                    json={"channel": "chat:lobby", "data": {"via": "nginx"}},
                    headers={"Authorization": f"apikey {hub.settings.api_key}"},
                )
                assert response.status_code == 200, response.text
                message = await ws.next("message")
                assert message["data"] == {"via": "nginx"}
                # a browser handshake from the proxied host passes the same-host rule
            async with client(
                proxy,
                token=make_token("bob"),
                origin=f"http://{proxy}",  # type: ignore[arg-type]
            ) as browser:
                assert browser.welcome["user"] == "bob"
            assert (await http.get("/metrics")).status_code == 403
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
