"""Flask + a standalone hub (``hubbub serve``).

Flask stays a plain WSGI app; browsers connect straight to the hub with a
token this app signs, and views publish through ``hubbub.Publisher`` (one per
process: it keeps its HTTP connections alive and is safe to share between
threads).

Run:  HUBBUB_SECRET=... HUBBUB_API_KEY=... hubbub serve
      HUBBUB_SECRET=... HUBBUB_API_KEY=... flask --app app run --port 5000
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, request

import hubbub
from hubbub.auth import issue_token

HUBBUB_URL = os.environ.get("HUBBUB_URL", "http://127.0.0.1:8000")
HUBBUB_SECRET = os.environ.get("HUBBUB_SECRET", "")
HUBBUB_API_KEY = os.environ.get("HUBBUB_API_KEY", "")

app = Flask(__name__)
publisher = hubbub.Publisher(HUBBUB_URL, HUBBUB_API_KEY, timeout=3)


def current_user() -> str:
    # Stand-in for flask-login & co: a real app reads its session here.
    user = request.headers.get("X-User", "")
    if not user.isalnum():
        abort(401)
    return user


@app.get("/hubbub-token")
def hubbub_token() -> dict[str, Any]:
    """The browser connects to ws://<hub>/ws?token=... with this."""
    return {"token": issue_token(HUBBUB_SECRET, current_user(), ttl=3600), "url": HUBBUB_URL}


@app.post("/orders/<int:order_id>/ship")
def ship(order_id: int) -> dict[str, Any]:
    user = current_user()
    # ... mark the order shipped in the database, then tell every open tab:
    try:
        result = publisher.publish(f"#{user}", {"order": order_id, "status": "shipped"})
    except hubbub.PublishError as exc:
        # the order is saved either way; the notification is best effort here
        app.logger.warning("notification failed: %s", exc)
        return {"order": order_id, "notified": False}
    return {"order": order_id, "notified": True, "offset": result.offset}
