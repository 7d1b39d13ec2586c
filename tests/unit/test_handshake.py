"""What the session span's start attributes take from the handshake: scheme, addresses, headers, trace context."""

from __future__ import annotations

from typing import Any

import pytest

from litestar_ws_otel.config import WebSocketTelemetryConfig
from litestar_ws_otel.spans import read_handshake, route_of

DEFAULT = WebSocketTelemetryConfig()


def handshake(headers: list[tuple[bytes, bytes]] | None = None, **scope: Any) -> dict[str, Any]:
    return read_handshake({"type": "websocket", "headers": headers or [], **scope}, "/chat", DEFAULT).attributes  # type: ignore[arg-type]


def test_the_fixed_attributes_of_every_handshake() -> None:
    assert handshake() == {
        "http.request.method": "GET",
        "url.scheme": "ws",
        "url.path": "/chat",
        "network.protocol.name": "websocket",
        "network.protocol.version": "13",
    }


def test_wss_is_recorded_as_the_scheme() -> None:
    assert handshake(scheme="wss")["url.scheme"] == "wss"


@pytest.mark.parametrize(
    ("root_path", "route"),
    [
        ("/api", "/api/chat/{room}"),
        ("/api/", "/api/chat/{room}"),
        ("/mount/X", "/mount/X/chat/{room}"),
        ("", "/chat/{room}"),
    ],
)
def test_an_app_mounted_under_a_root_path_names_the_full_route(root_path: str, route: str) -> None:
    assert route_of({"path_template": "/chat/{room}", "root_path": root_path}) == route  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("host", "address", "port"),
    [
        ("example.com:8443", "example.com", 8443),
        ("example.com", "example.com", None),
        ("[::1]:8000", "::1", 8000),  # the address, as the socket would give it, without the brackets
        ("[::1]", "::1", None),
        ("10.1.2.3:80", "10.1.2.3", 80),
    ],
)
def test_the_host_header_names_the_server_over_the_socket_address(host: str, address: str, port: int | None) -> None:
    attributes = handshake([(b"host", host.encode())], server=("127.0.0.1", 9000))
    assert attributes["server.address"] == address
    assert attributes.get("server.port") == port


def test_without_a_host_header_the_socket_address_names_the_server() -> None:
    attributes = handshake(server=("10.0.0.7", 8000), client=("10.0.0.9", 51234))
    assert (attributes["server.address"], attributes["server.port"]) == ("10.0.0.7", 8000)
    assert (attributes["client.address"], attributes["client.port"]) == ("10.0.0.9", 51234)


def test_a_socket_without_a_port_records_only_its_address() -> None:
    attributes = handshake(server=("/run/app.sock", None), client=("/run/app.sock", None))
    assert attributes["server.address"] == "/run/app.sock"
    assert attributes["client.address"] == "/run/app.sock"
    assert "server.port" not in attributes
    assert "client.port" not in attributes


def test_no_server_and_no_client_record_no_addresses() -> None:
    attributes = handshake(server=None, client=None)
    assert not {"server.address", "server.port", "client.address", "client.port"} & set(attributes)


def test_the_user_agent_is_recorded_and_the_host_is_not_taken_from_it() -> None:
    attributes = handshake([(b"User-Agent", b"probe/1.0"), (b"Host", b"example.com:8443")])
    assert attributes["user_agent.original"] == "probe/1.0"
    assert (attributes["server.address"], attributes["server.port"]) == ("example.com", 8443)
    attributes = handshake([(b"host", b"example.com"), (b"user-agent", b"probe/1.0"), (b"origin", b"http://a")])
    assert (attributes["server.address"], attributes["user_agent.original"]) == ("example.com", "probe/1.0")


def test_without_a_query_there_is_no_query_attribute() -> None:
    assert "url.query" not in handshake()
    assert "url.query" not in handshake(query_string=b"")


def test_the_credential_rule_applies_to_the_query_by_default() -> None:
    """``jwt`` is in no explicit list: the credential rule catches it unless turned off."""
    assert handshake(query_string=b"room=1&jwt=abc")["url.query"] == "room=1&jwt=REDACTED"


def test_only_the_propagators_own_headers_reach_its_carrier() -> None:
    headers = [
        (b"host", b"example.com"),
        (b"user-agent", b"probe/1.0"),
        (b"origin", b"http://example.com"),
        (b"cookie", b"session=secret"),
        (b"authorization", b"Bearer secret"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        (b"TraceState", b"vendor=1"),
        (b"baggage", b"user=1"),
    ]
    carrier = read_handshake({"type": "websocket", "headers": headers}, "/", DEFAULT).carrier  # type: ignore[arg-type]
    assert carrier == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=1",
        "baggage": "user=1",
    }
