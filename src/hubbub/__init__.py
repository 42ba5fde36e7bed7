"""hubbub: a real-time WebSocket messaging hub for Python web applications.

The names an application needs: :class:`Hub` (embed it, mount ``hub.asgi``),
the Python :class:`Client`, the HTTP :class:`Publisher` / :class:`AsyncPublisher`,
tokens, settings and the errors.
"""

from hubbub.auth import Credentials, issue_token
from hubbub.client import Client, Subscription
from hubbub.config import Settings, load_settings
from hubbub.core.protocol import StreamPosition
from hubbub.errors import (
    CloseCode,
    CommandError,
    ConfigError,
    EngineUnavailable,
    ErrorCode,
    HubbubError,
)
from hubbub.hub import Hub, RpcContext
from hubbub.publisher import AsyncPublisher, PublishCommand, Publisher, PublishError
from hubbub.version import version

__version__ = version()

__all__ = [
    "AsyncPublisher",
    "Client",
    "CloseCode",
    "CommandError",
    "ConfigError",
    "Credentials",
    "EngineUnavailable",
    "ErrorCode",
    "Hub",
    "HubbubError",
    "PublishCommand",
    "PublishError",
    "Publisher",
    "RpcContext",
    "Settings",
    "StreamPosition",
    "Subscription",
    "__version__",
    "issue_token",
    "load_settings",
]
