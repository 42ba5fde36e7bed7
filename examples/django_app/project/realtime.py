"""The hub, and the authenticator that turns the Django session into the hubbub user."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest

from hubbub.auth import Credentials
from hubbub.errors import AuthError
from hubbub.hub import Hub


def _session_key(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(value.decode("latin-1"))
            morsel = cookie.get(settings.SESSION_COOKIE_NAME)
            if morsel is not None:
                return morsel.value
    return None


def _user_id_for_session(session_key: str) -> str | None:
    """Exactly what Django does for a request: load the session, check the
    auth hash (a password change logs the session out), fetch the user."""
    request = HttpRequest()
    engine = __import__(settings.SESSION_ENGINE, fromlist=["SessionStore"])
    request.session = engine.SessionStore(session_key)
    user = get_user(request)  # type: ignore[arg-type]
    return str(user.pk) if user.is_authenticated else None


async def authenticate(scope: dict[str, Any]) -> Credentials:
    key = _session_key(scope)
    user_id = None if key is None else await sync_to_async(_user_id_for_session)(key)
    if user_id is None:
        raise AuthError("not logged in")  # handshake closed with 4001
    return Credentials(user=user_id)


hub = Hub(
    secret=settings.HUBBUB_SECRET,
    api_key=settings.HUBBUB_API_KEY,
    authenticator=authenticate,
)
