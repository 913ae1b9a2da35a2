"""Prometheus metrics of one controller process.

One registry per process, built by the composition root and passed to the
parts that count (no module-level globals, so tests get their own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

BREAKER_STATES = {"closed": 0, "open": 1, "half_open": 2}
# The webhook's refused deliveries (ivr.whatsapp.webhook.WebhookCounters): no
# signature (401), a bad one (403), signed but not Meta's format (400).
WEBHOOK_REFUSALS = ("unsigned", "bad_signature", "malformed")

Snapshot = Callable[[], Mapping[str, int]]


class ChatCollector(Collector):
    """The assistant's counters, read when scraped from what already counts them:
    ``messages`` gives ``{"in": n, "out": n}`` (contact messages stored once,
    replies sent: the chat runner's), ``webhook`` gives
    ``WebhookCounters.snapshot()``."""

    def __init__(self, messages: Snapshot, webhook: Snapshot) -> None:
        self.messages = messages
        self.webhook = webhook

    def collect(self) -> Iterable[Metric]:
        counts = self.messages()
        messages = CounterMetricFamily(
            "citas_chat_messages",
            "Chat messages: in (a contact's, stored once), out (replies sent to Meta).",
            labels=["direction"],
        )
        for direction in ("in", "out"):
            messages.add_metric([direction], counts.get(direction, 0))
        yield messages
        seen = self.webhook()
        refused = CounterMetricFamily(
            "citas_whatsapp_webhook_refused",
            "Webhook deliveries refused: unsigned (401), bad_signature (403), malformed (400).",
            labels=["reason"],
        )
        for reason in WEBHOOK_REFUSALS:
            refused.add_metric([reason], seen.get(reason, 0))
        yield refused
        yield CounterMetricFamily(
            "citas_whatsapp_webhook_accepted",
            "Webhook deliveries accepted (signed, Meta's format, stored).",
            value=seen.get("accepted", 0),
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "citas_calls", "Calls ended, by outcome.", ["outcome"], registry=self.registry
        )
        self.active_calls = Gauge(
            "citas_active_calls", "Calls being handled now.", registry=self.registry
        )
        self.flag_changes = Counter(
            "citas_flag_changes",
            "Flag changes made through this process (API, console), by action.",
            ["action"],
            registry=self.registry,
        )
        self.flag_reloads = Counter(
            "citas_flag_reloads", "Flag snapshots reloaded after a change.", registry=self.registry
        )
        self.flags_revision = Gauge(
            "citas_flags_revision", "The flags revision in use.", registry=self.registry
        )
        self.booking_errors = Counter(
            "citas_booking_errors",
            "Booking-service failures seen by the breaker, by kind (timeout, error, open).",
            ["kind"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "citas_booking_breaker_state",
            "Booking-service breaker: 0 closed, 1 open, 2 half-open.",
            registry=self.registry,
        )
        self.chat_active = Gauge(
            "citas_chat_active_conversations",
            "Chat conversations active (with an agent, or the bot mid-flow), read at scrape.",
            registry=self.registry,
        )
        self.reaction = Histogram(
            "citas_dtmf_reaction_seconds",
            "From a DTMF event in to the next ARI command out for that channel.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )

    def watch_chat(self, messages: Snapshot, webhook: Snapshot) -> None:
        """Expose the assistant's counters (:class:`ChatCollector`); once per process."""
        self.registry.register(ChatCollector(messages, webhook))

    def flags_reloaded(self, old: int, new: int) -> None:
        self.flag_reloads.inc()
        self.flags_revision.set(new)

    def set_breaker_state(self, state: str) -> None:
        self.breaker_state.set(BREAKER_STATES[state])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
