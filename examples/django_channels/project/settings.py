"""Minimal Django + Channels settings, plus the hubbub keys."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "project.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ASGI_APPLICATION = "project.asgi.application"
# Your existing layer (Redis in production) keeps working for your consumers.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

HUBBUB_SECRET = os.environ.get("HUBBUB_SECRET", "dev-only-hubbub-secret-at-least-32-bytes")
HUBBUB_API_KEY = os.environ.get("HUBBUB_API_KEY", "dev-only-api-key")
# The hub's HTTP API: the hub embedded in this process (asgi.py), or a standalone
# `hubbub serve` (then drop the /hubbub routing from asgi.py).
HUBBUB_URL = os.environ.get("HUBBUB_URL", "http://127.0.0.1:8000/hubbub")
