"""FastAPI + hubbub: a chat room and personal notifications.

The app owns login: it signs its own session JWT into a cookie. hubbub reuses
that: ``hub.authenticator`` reads the same cookie at the WebSocket handshake,
so the browser needs no second token, and the HTTP endpoints use the same
function as a FastAPI dependency. Clients may only *read* chat rooms; messages
go through ``POST /rooms/{room}/messages``, where the app validates (and would
store) them before ``hub.publish`` fans them out.

Run:  uvicorn app:app --port 8000   (from this directory)
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection
from starlette.types import Scope

from hubbub.auth import Credentials
from hubbub.errors import AuthError
from hubbub.hub import Hub

APP_SECRET = os.environ.get("APP_SECRET", "change-me-this-is-the-apps-own-jwt-secret")
SESSION_COOKIE = "session"


# -- the app's own authentication ------------------------------------------------


def sign_session(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 86400}, APP_SECRET, "HS256")


def user_from_session(token: str | None) -> str | None:
    if not token:
        return None
    try:
        claims = jwt.decode(token, APP_SECRET, algorithms=["HS256"], options={"require": ["sub"]})
    except jwt.InvalidTokenError:
        return None
    return str(claims["sub"])


def current_user(request: Request) -> str:
    """FastAPI dependency: the logged-in user or 401."""
    user = user_from_session(request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise HTTPException(401, "log in first")
    return user


User = Annotated[str, Depends(current_user)]


async def authenticate(scope: Scope) -> Credentials | None:
    """hubbub authenticator: the same session cookie, at the WebSocket handshake."""
    user = user_from_session(HTTPConnection(scope).cookies.get(SESSION_COOKIE))
    if user is None:
        raise AuthError("not logged in")  # the handshake is closed with 4001
    return Credentials(user=user)


# -- the hub ------------------------------------------------------------------------

hub = Hub(
    # A hubbub secret is still needed (subscription tokens, `hubbub token`); the
    # API key enables the HTTP API for other processes (workers, cron).
    secret=os.environ.get("HUBBUB_SECRET", "change-me-hubbub-secret-at-least-32-bytes"),
    api_key=os.environ.get("HUBBUB_API_KEY"),
    authenticator=authenticate,
    namespaces={"chat": {"publish": False}},  # clients read rooms; the app publishes
)

app = FastAPI(lifespan=hub.lifespan)
app.mount("/realtime", hub.asgi)  # WebSocket: ws://host/realtime/ws


class Login(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")


class ChatMessage(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class Notification(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


@app.post("/login")
async def login(body: Login, response: Response) -> dict[str, str]:
    # A real app checks a password here.
    response.set_cookie(SESSION_COOKIE, sign_session(body.name), httponly=True, samesite="lax")
    return {"user": body.name}


@app.post("/rooms/{room}/messages")
async def post_message(room: str, body: ChatMessage, user: User) -> dict[str, Any]:
    # validate, store in your database, then fan out:
    position = await hub.publish(f"chat:{room}", {"user": user, "text": body.text})
    return {"offset": position.offset, "epoch": position.epoch}


@app.post("/notify/{recipient}")
async def notify(recipient: str, body: Notification, user: User) -> dict[str, Any]:
    """Reaches every open tab of ``recipient``, on every node (its ``#user`` channel)."""
    position = await hub.publish(f"#{recipient}", {"from": user, "text": body.text})
    return {"offset": position.offset}
