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
        ("q=a%20b&sig=x", "q=a%20b&sig=REDACTED"),
        ("design=x&signal=y", "design=x&signal=y"),
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


# --- the credential-name rule -------------------------------------------------------------------

SECRET_NAMES = (
    "access-token",
    "Access_Token",
    "accessToken",
    "access.token",
    "jwt",
    "id_token",
    "refresh_token",
    "client_secret",
    "clientSecret",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "sig",
    "passwd",
    "Password",
    "pwd",
    "session",
    "session_id",
    "PHPSESSID",
    "authorization",
    "auth",
    "x-auth",
    "api-key",
    "apiKey",
    "key",
    "x-goog-signature",
)
PLAIN_NAMES = ("room", "design", "lang", "author", "keyboard", "monkey", "signal", "page", "q", "user", "channel")


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_credential_names_are_redacted_in_the_query(name: str) -> None:
    query = f"room=lobby&{name}=s3cr3t-value&lang=en"
    assert redact_query(query, ()) == f"room=lobby&{name}=REDACTED&lang=en"
    assert redact_query(query, (), credential_rule=False) == query  # the documented opt-out


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_names_are_kept_in_the_query(name: str) -> None:
    assert redact_query(f"{name}=visible", ()) == f"{name}=visible"


def test_opt_out_keeps_the_explicit_list() -> None:
    config = WebSocketTelemetryConfig(redact_credential_names=False, redact_query_params=("room",))
    scope: Any = {"type": "websocket", "headers": [], "query_string": b"room=1&jwt=abc"}
    assert read_handshake(scope, "/", config).attributes["url.query"] == "room=REDACTED&jwt=abc"


@pytest.mark.parametrize("header", ["x-auth-token", "x-access-token", "x-session-id", "x-amz-signature", "x-api-key"])
def test_captured_headers_with_credential_names_are_redacted(header: str) -> None:
    attributes = redact_headers([(header.encode(), b"s3cr3t"), (b"origin", b"http://a")], (header, "origin"), ())
    assert attributes == {
        f"http.request.header.{header}": (REDACTED,),
        "http.request.header.origin": ("http://a",),
    }


def test_captured_headers_redaction_rule_can_be_turned_off() -> None:
    config = WebSocketTelemetryConfig(capture_headers=("x-auth-token",), redact_credential_names=False)
    scope: Any = {"type": "websocket", "headers": [(b"x-auth-token", b"visible")]}
    assert read_handshake(scope, "/", config).attributes["http.request.header.x-auth-token"] == ("visible",)


@pytest.mark.parametrize(
    ("offered", "shown"),
    [
        ("0123456789abcdef0123456789abcdef", "[REDACTED]"),
        ("DEADBEEFDEADBEEF01", "[REDACTED]"),
        ("dGhpc2lzYXNlY3JldHRva2Vu", "[REDACTED]"),
        ("Zm9vYmFyYmF6cXV4cXV1eA==", "[REDACTED]"),
        ("a1B2-c3D4_e5F6g7H8i9", "[REDACTED]"),
        ("chat, 0123456789abcdef0123456789abcdef", "chat, [REDACTED]"),
        ("v1.AbCdEfGhIjKlMnOpQrSt", "[REDACTED]"),
        ("chat-v2-protocol-json", "chat-v2-protocol-json"),
        ("graphql-transport-ws", "graphql-transport-ws"),
        ("wamp.2.json", "wamp.2.json"),
        ("mqtt", "mqtt"),
        ("0123456789abcdef", "0123456789abcdef"),
    ],
)
def test_opaque_tokens_offered_as_subprotocols_are_redacted(offered: str, shown: str) -> None:
    from litestar_ws_otel.redaction import redact_subprotocols

    assert redact_subprotocols(offered) == shown


# --- rules pinned at their edges ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("token=YWJj==", "token=REDACTED"),
        ("room=1&token=YWJj==&x=2", "room=1&token=REDACTED&x=2"),
        ("room=a=b", "room=a=b"),
    ],
)
def test_a_secret_value_holding_equals_signs_is_redacted_whole(query: str, expected: str) -> None:
    """Base64 padding puts ``=`` in the value: the name ends at the first ``=``, not the last."""
    assert redact_query(query, DEFAULT_REDACT_QUERY_PARAMS) == expected


def test_a_subprotocol_of_40_characters_is_a_name_and_of_41_a_credential() -> None:
    from litestar_ws_otel.redaction import redact_subprotocols

    forty = "chat.example.org.protocol.version.two.xy"
    assert len(forty) == 40
    assert redact_subprotocols(forty) == forty
    assert redact_subprotocols(forty + "z") == REDACTED


@pytest.mark.parametrize(
    "item", ["bearer.x", "password1", "x-token", "Authorization", "mysecret", "apikey", "api-key.v1", "api_key"]
)
def test_a_short_subprotocol_naming_a_credential_word_is_redacted(item: str) -> None:
    from litestar_ws_otel.redaction import redact_subprotocols

    assert redact_subprotocols(f"chat, {item}") == f"chat, {REDACTED}"


def test_a_long_subprotocol_segment_in_one_case_only_is_a_name() -> None:
    """Random base64 mixes cases; ``GRAPHQL-TRANSPORT-WS`` and ``graphql-transport-ws`` do not."""
    from litestar_ws_otel.redaction import redact_subprotocols

    assert redact_subprotocols("GRAPHQL-TRANSPORT-WS") == "GRAPHQL-TRANSPORT-WS"
    assert redact_subprotocols("GraphQL-Transport-WS") == REDACTED


@pytest.mark.parametrize(("text", "limit"), [("abcd", 4), ("a", 1), ("é", 2), ("aé", 3)])
def test_a_text_of_exactly_the_limit_is_not_truncated(text: str, limit: int) -> None:
    from litestar_ws_otel.redaction import truncate_text

    assert truncate_text(text, limit) == (text, False)
    assert truncate_text(text + "x", limit)[1] is True
