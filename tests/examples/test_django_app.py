"""examples/django_app: plain ASGI routing, Django session → hubbub user, views publish."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from helpers import EXAMPLES, subprocess_server

from support import client, free_port, require

DIR = EXAMPLES / "django_app"


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=DIR, env=env, check=True, capture_output=True
    )


async def test_session_user_gets_notifications(tmp_path: Path) -> None:
    try:
        import django  # noqa: F401
    except ImportError:
        require(False, "django is not installed (pip install -e '.[dev]')")
    port = free_port()
    env = {
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
        "HUBBUB_URL": f"http://127.0.0.1:{port}/hubbub",
    }
    full_env = {**os.environ, **env}
    manage(full_env, "migrate", "--verbosity", "0")
    manage(
        full_env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_user('alice', password='s3cret-pw')",
    )
    args = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--port", str(port)]
    address = f"127.0.0.1:{port}"
    async with (
        subprocess_server(args, cwd=DIR, env=env, ready_url=f"http://{address}/hubbub/ready"),
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        await http.get("/csrf")
        csrf = {"X-CSRFToken": http.cookies["csrftoken"]}
        wrong = await http.post("/login", json={"username": "alice", "password": "x"}, headers=csrf)
        assert wrong.status_code == 401
        login = await http.post(
            "/login", json={"username": "alice", "password": "s3cret-pw"}, headers=csrf
        )
        assert login.status_code == 200, login.text
        user_id = str(login.json()["user"])
        csrf = {"X-CSRFToken": http.cookies["csrftoken"]}  # login() rotates the token
        cookie = f"sessionid={http.cookies['sessionid']}"
        async with client(address, additional_headers={"Cookie": cookie}) as ws:
            assert ws.welcome["user"] == user_id
            response = await http.post("/notify", headers=csrf)
            assert response.status_code == 200, response.text
            message = await ws.next("message")
            assert message["channel"] == f"#{user_id}"
            assert message["data"] == {"text": "hello from an async view"}
            response = await http.post("/notify-sync", headers=csrf)
            assert response.status_code == 200, response.text
            assert (await ws.next("message"))["data"] == {"text": "hello from a sync view"}
        # without the session cookie the handshake is refused
        async with client(address, welcome=False) as anonymous:
            assert await anonymous.closed() == 4001
        async with client(
            address, welcome=False, additional_headers={"Cookie": "sessionid=forged"}
        ) as forged:
            assert await forged.closed() == 4001
