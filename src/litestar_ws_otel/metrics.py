"""WebSocket metrics: OpenTelemetry instruments over the statistics of every app on a meter provider.

Connections, messages and bytes are observable instruments: the metric reader asks for them when it
collects, and they read ``SessionStatistics``, so no message ever calls the SDK. Only the duration
histogram is recorded as sessions close, once per connection.

Apps instrumented one after another on one meter provider share one set of instruments (the SDK
refuses a second instrument of the same name), which reads every app still alive.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.semconv.attributes import error_attributes, http_attributes

from litestar_ws_otel import semconv
from litestar_ws_otel.reporting import report_once

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar_ws_otel.statistics import SessionStatistics

__all__ = ("DURATION_BUCKETS", "METER_NAME", "WebSocketMetrics", "duration_view", "metrics_for")

METER_NAME = "litestar_ws_otel"
DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400,
)  # fmt: skip
"""Seconds: WebSocket sessions last from a moment to a day, not the HTTP buckets' 10 ms to 10 s."""

_registry: weakref.WeakKeyDictionary[MeterProvider, WebSocketMetrics] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def metrics_for(meter_provider: MeterProvider, version: str) -> WebSocketMetrics:
    """The instruments on ``meter_provider``, made the first time it is asked for."""
    with _registry_lock:
        metrics = _registry.get(meter_provider)
        if metrics is None:
            metrics = _registry[meter_provider] = WebSocketMetrics(meter_provider, version)
        return metrics


class WebSocketMetrics:
    """The four instruments of one meter provider.

    Args:
        meter_provider: Where the instruments live.
        version: The package version, for the meter's scope.
    """

    def __init__(self, meter_provider: MeterProvider, version: str) -> None:
        self._statistics: weakref.WeakSet[SessionStatistics] = weakref.WeakSet()
        meter = meter_provider.get_meter(METER_NAME, version)
        meter.create_observable_up_down_counter(
            semconv.WEBSOCKET_SERVER_ACTIVE_CONNECTIONS,
            callbacks=[self._observe_active],
            unit="{connection}",
            description="WebSocket connections accepted and not yet closed.",
        )
        meter.create_observable_counter(
            semconv.WEBSOCKET_SERVER_MESSAGES,
            callbacks=[self._observe_messages],
            unit="{message}",
            description="WebSocket messages received and sent.",
        )
        meter.create_observable_counter(
            semconv.WEBSOCKET_SERVER_BYTES,
            callbacks=[self._observe_bytes],
            unit="By",
            description="Payload bytes of WebSocket messages received and sent (UTF-8 length for text).",
        )
        self._duration = _duration_histogram(meter)

    def attach(self, statistics: SessionStatistics) -> None:
        """Report ``statistics`` (weakly held: an app that is gone stops being reported)."""
        statistics.record_durations()
        self._statistics.add(statistics)

    def _record_durations(self, statistics: SessionStatistics) -> None:
        """Record the sessions closed since the last collection in the duration histogram.

        Done here, on the reader's thread as it collects, rather than as each connection closes:
        a histogram record costs the SDK several microseconds, which a connection should not pay.
        """
        for closed in statistics.take_durations():
            attributes: dict[str, Any] = {}
            if closed.route:
                attributes[http_attributes.HTTP_ROUTE] = closed.route
            if closed.close_code is not None:
                attributes[semconv.WEBSOCKET_CLOSE_CODE] = closed.close_code
            if closed.error_type is not None:
                attributes[error_attributes.ERROR_TYPE] = closed.error_type
            self._duration.record(closed.seconds, attributes)

    def _observe_active(self, _: CallbackOptions) -> Iterable[Observation]:
        """Active connections; and first, the durations of the sessions closed since the last collection."""
        try:
            totals: dict[str | None, int] = {}
            for statistics in list(self._statistics):
                self._record_durations(statistics)
                for route, count in statistics.active_connections().items():
                    totals[route] = totals.get(route, 0) + count
            return [Observation(count, _route(route)) for route, count in totals.items()]
        except Exception as exc:
            report_once("could not observe the open WebSocket connections", exc)
            return []

    def _observe_messages(self, _: CallbackOptions) -> Iterable[Observation]:
        try:
            totals: dict[tuple[str | None, str, str], int] = {}
            for statistics in list(self._statistics):
                for key, count in statistics.messages().items():
                    totals[key] = totals.get(key, 0) + count
            return [
                Observation(
                    count,
                    {
                        **_route(route),
                        semconv.WEBSOCKET_MESSAGE_DIRECTION: direction,
                        semconv.WEBSOCKET_MESSAGE_TYPE: kind,
                    },
                )
                for (route, direction, kind), count in totals.items()
            ]
        except Exception as exc:
            report_once("could not observe the WebSocket message counts", exc)
            return []

    def _observe_bytes(self, _: CallbackOptions) -> Iterable[Observation]:
        try:
            totals: dict[tuple[str | None, str], int] = {}
            for statistics in list(self._statistics):
                for key, count in statistics.bytes().items():
                    totals[key] = totals.get(key, 0) + count
            return [
                Observation(count, {**_route(route), semconv.WEBSOCKET_MESSAGE_DIRECTION: direction})
                for (route, direction), count in totals.items()
            ]
        except Exception as exc:
            report_once("could not observe the WebSocket byte counts", exc)
            return []


def _duration_histogram(meter: Meter) -> Histogram:
    """The duration histogram, with WebSocket buckets as advice (OpenTelemetry API 1.30 and later).

    Older APIs take no advice: a provider ``instrument_app`` builds gets the buckets from a view
    (``duration_view``); another keeps its own buckets.
    """
    name, unit = semconv.WEBSOCKET_SERVER_CONNECTION_DURATION, "s"
    description = "Duration of WebSocket connections, from the handshake to the close."
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS)
        )
    except TypeError:  # pragma: no cover - OpenTelemetry API before 1.30
        report_once(
            "this OpenTelemetry API takes no histogram bucket advice; durations use the meter provider's buckets",
            level=logging.DEBUG,
        )
        return meter.create_histogram(name, unit=unit, description=description)


def duration_view() -> View:
    """A view giving the duration histogram its buckets, for a meter provider built here."""
    return View(
        instrument_name=semconv.WEBSOCKET_SERVER_CONNECTION_DURATION,
        aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS),
    )


def _route(route: str | None) -> dict[str, str]:
    """``http.route`` is the route template, never the raw path; left out when no route matched."""
    return {http_attributes.HTTP_ROUTE: route} if route else {}
