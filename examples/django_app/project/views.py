"""Login, and two ways to notify the logged-in user on ``#<user id>``."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

import hubbub
from project.realtime import hub


@require_GET
@ensure_csrf_cookie
def csrf(request: HttpRequest) -> JsonResponse:
    """Sets the csrftoken cookie for the JavaScript that posts below."""
    return JsonResponse({})


@require_POST
def login_view(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body or b"{}")
    user = authenticate(request, username=body.get("username"), password=body.get("password"))
    if user is None:
        return JsonResponse({"error": "wrong username or password"}, status=401)
    login(request, user)
    return JsonResponse({"user": user.pk})


@require_POST
async def notify(request: HttpRequest) -> JsonResponse:
    """Async view: the hub lives in this process, so ``await hub.publish``."""
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=401)
    position = await hub.publish(f"#{user.pk}", {"text": "hello from an async view"})
    return JsonResponse({"offset": position.offset})


@require_POST
def notify_sync(request: HttpRequest) -> JsonResponse:
    """Sync view (most Django code, Celery tasks, management commands): the
    HTTP API through ``hubbub.Publisher``; works whether the hub runs in this
    process or is a standalone ``hubbub serve``."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=401)
    with hubbub.Publisher(settings.HUBBUB_URL, settings.HUBBUB_API_KEY) as publisher:
        result = publisher.publish(f"#{request.user.pk}", {"text": "hello from a sync view"})
    return JsonResponse({"offset": result.offset})
