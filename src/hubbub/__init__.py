"""hubbub: a real-time WebSocket messaging hub for Python web applications."""

from hubbub.client import Client
from hubbub.publisher import AsyncPublisher, PublishCommand, Publisher, PublishError

__all__ = ["AsyncPublisher", "Client", "PublishCommand", "PublishError", "Publisher"]
