from __future__ import annotations

from typing import Any

import pytest

from litestar_ws_otel.config import DEFAULT_REDACT_QUERY_PARAMS, WebSocketTelemetryConfig
from litestar_ws_otel.redaction import REDACTED, decode_header, redact_query
from litestar_ws_otel.spans import read_handshake


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("room=1", "room=1"),
        ("token=abc&x=1", "token=REDACTED&x=1"),
        ("x=1&ACCESS_TOKEN=abc", "x=1&ACCESS_TOKEN=REDACTED"),
        ("access%5Ftoken=abc", "access%5Ftoken=REDACTED"),
        ("api_key=a&api_key=b", "api_key=REDACTED&api_key=REDACTED"),
        ("token", "token"),
        ("token=", "token=REDACTED"),
        ("q=a%20b&sig=x", "q=a%20b&sig=x"),
        ("password=p%26w&next=%2Fhome", "password=REDACTED&next=%2Fhome"),
    ],
)
def test_redact_query_hides_only_secret_values(query: str, expected: str) -> None:
    assert redact_query(query, DEFAULT_REDACT_QUERY_PARAMS) == expected


def redact_headers(
    headers: list[tuple[bytes, bytes]], capture: tuple[str, ...], redact: tuple[str, ...]
) -> dict[str, Any]:
    """The ``http.request.header.*`` attributes ``read_handshake`` makes of ``headers``."""
    config = WebSocketTelemetryConfig(capture_headers=capture, redact_headers=redact)
    scope: Any = {"type": "websocket", "headers": headers}
    attributes = read_handshake(scope, "/", config).attributes
    return {name: value for name, value in attributes.items() if name.startswith("http.request.header.")}


def test_redact_headers_keeps_only_allow_listed_headers() -> None:
    headers = [
        (b"origin", b"http://example.com"),
        (b"authorization", b"Bearer secret"),
        (b"Sec-WebSocket-Protocol", b"chat"),
        (b"sec-websocket-protocol", b"json"),
        (b"cookie", b"session=1"),
    ]
    attributes = redact_headers(headers, ("origin", "sec-websocket-protocol", "cookie"), ("cookie", "authorization"))
    assert attributes == {
        "http.request.header.origin": ("http://example.com",),
        "http.request.header.sec-websocket-protocol": ("chat", "json"),
        "http.request.header.cookie": (REDACTED,),
    }
    assert "secret" not in repr(attributes)


def test_headers_with_non_utf8_bytes_decode_without_error() -> None:
    assert decode_header(b"caf\xe9\xff") == "caf\xe9\xff"
    attributes = redact_headers([(b"origin", b"\xff\xfe")], ("origin",), ())
    assert attributes == {"http.request.header.origin": ("\xff\xfe",)}


@pytest.mark.parametrize("text", ["é" * 40_000, "a" * 20_000 + "🎉" * 9_000, "x" * 16_383 + "é"])
def test_utf8_size_of_large_non_ascii_text_matches_encoding(text: str) -> None:
    from litestar_ws_otel.redaction import utf8_size

    assert utf8_size(text) == len(text.encode())


@pytest.mark.parametrize(
    ("offered", "shown"),
    [
        ("chat", "chat"),
        ("graphql-transport-ws, graphql-ws", "graphql-transport-ws, graphql-ws"),
        ("v4.channel.k8s.io", "v4.channel.k8s.io"),
        (
            "base64url.bearer.authorization.k8s.io.ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklpSjk, v4.channel.k8s.io",
            "[REDACTED], v4.channel.k8s.io",
        ),
        (
            "header-eyJob3N0IjoiZXhhbXBsZS5jb20iLCJBdXRob3JpemF0aW9uIjoiZXlKcmFXUWlPaUo, graphql-ws",
            "[REDACTED], graphql-ws",
        ),
        ("access_token.abc", "[REDACTED]"),
    ],
)
def test_credentials_offered_as_subprotocols_are_redacted(offered: str, shown: str) -> None:
    from litestar_ws_otel.redaction import redact_subprotocols

    assert redact_subprotocols(offered) == shown
    attributes = redact_headers([(b"sec-websocket-protocol", offered.encode())], ("sec-websocket-protocol",), ())
    assert attributes == {"http.request.header.sec-websocket-protocol": (shown,)}
