"""Prometheus metrics of one hub, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "HubMetrics"]

_COMMAND_TYPES = (
    "auth",
    "subscribe",
    "unsubscribe",
    "publish",
    "history",
    "presence",
    "presence_stats",
    "rpc",
    "ping",
    "pong",
)


class HubMetrics:
    """Collectors for connections, subscriptions, traffic, errors and latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.connections = Gauge("hubbub_connections", "Open client connections.", registry=r)
        self.subscriptions = Gauge(
            "hubbub_subscriptions", "Client subscriptions on this node.", registry=r
        )
        self.messages_in = Counter(
            "hubbub_messages_in", "Frames received from clients, by type.", ["type"], registry=r
        )
        self.messages_out = Counter(
            "hubbub_messages_out", "Frames queued to clients, by type.", ["type"], registry=r
        )
        self.errors = Counter(
            "hubbub_errors", "Error replies and abnormal closes, by code.", ["code"], registry=r
        )
        self.publish_latency = Histogram(
            "hubbub_publish_seconds",
            "Time for the engine to accept a publication.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.queue_overflows = Counter(
            "hubbub_queue_overflows",
            "Connections closed because their outbound queue overflowed.",
            registry=r,
        )
        # Pre-bound children keep label lookups off the hot paths.
        self.in_by_type = {t: self.messages_in.labels(t) for t in _COMMAND_TYPES}
        self.out_messages = self.messages_out.labels("message")

    def count_out(self, frame_type: str, amount: int = 1) -> None:
        self.messages_out.labels(frame_type).inc(amount)

    def count_error(self, code: int) -> None:
        self.errors.labels(str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
