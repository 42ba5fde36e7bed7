"""Minimal settings: sessions + auth on SQLite, and the hubbub keys."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
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
USE_TZ = True

# hubbub: the hub runs inside this ASGI process (see asgi.py).
HUBBUB_SECRET = os.environ.get("HUBBUB_SECRET", "dev-only-hubbub-secret-at-least-32-bytes")
HUBBUB_API_KEY = os.environ.get("HUBBUB_API_KEY", "dev-only-api-key")
# Where sync code (views, Celery tasks, cron) reaches the hub's HTTP API.
HUBBUB_URL = os.environ.get("HUBBUB_URL", "http://127.0.0.1:8000/hubbub")
