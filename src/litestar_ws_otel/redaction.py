"""What of a handshake or a message may be recorded: secrets redacted, previews cut to size.

Every value that leaves the app for a span or the panel passes through here first; the names it is
recorded under live in ``semconv``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "REDACTED",
    "REDACTED_QUERY_VALUE",
    "decode_header",
    "header_value",
    "is_credential_name",
    "redact_query",
    "redact_subprotocols",
    "truncate_text",
    "utf8_size",
)

REDACTED: Final = "[REDACTED]"
_SUBPROTOCOL_HEADER = b"sec-websocket-protocol"
_MAX_SUBPROTOCOL_NAME = 40
"""Registered subprotocol names are short (``graphql-transport-ws`` is 20); tokens are not."""
_CREDENTIAL_WORDS = ("bearer", "authorization", "token", "password", "secret", "apikey", "api-key", "api_key")
REDACTED_QUERY_VALUE: Final = "REDACTED"
"""The semantic conventions' replacement for secrets in ``url.query``."""

CREDENTIAL_FRAGMENTS: Final = (
    "token",
    "secret",
    "passw",
    "signature",
    "credential",
    "jwt",
    "session",
    "sessid",
    "apikey",
    "authoriz",
    "authent",
)
"""A name containing one of these, anywhere, names a credential (``id_token``, ``X-Amz-Signature``)."""
CREDENTIAL_WORDS: Final = frozenset({"auth", "key", "sig", "pwd"})
"""These only as a whole word, so that ``design``, ``keyboard`` and ``author`` stay visible."""
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]{17,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{17,}={0,2}")
_SUBPROTOCOL_SEGMENT = re.compile(r"[.\s]+")


def decode_header(value: bytes) -> str:
    """ASGI header bytes as text; Latin-1 maps every byte, so odd clients never raise here."""
    return value.decode("latin-1")


@lru_cache(maxsize=1024)
def is_credential_name(name: str) -> bool:
    """Whether a query parameter or header name looks like it carries a credential.

    Case- and separator-insensitive: the name is split into words at anything but letters and
    digits and at camelCase boundaries (``clientSecret`` -> ``client secret``). It names a
    credential if it contains one of ``CREDENTIAL_FRAGMENTS`` or has a word in ``CREDENTIAL_WORDS``.
    """
    words = _SEPARATORS.split(_CAMEL_BOUNDARY.sub(" ", name).lower())
    joined = "".join(words)
    return any(fragment in joined for fragment in CREDENTIAL_FRAGMENTS) or not CREDENTIAL_WORDS.isdisjoint(words)


def redact_query(query: str, secret_names: Iterable[str], *, credential_rule: bool = True) -> str:
    """Replace the values of secret parameters, keeping everything else byte for byte.

    Parameters are compared case-insensitively after percent-decoding of the name, so
    ``?Access%5FToken=...`` is caught as well as ``?access_token=...``. A parameter is secret when
    it is in ``secret_names`` or, with ``credential_rule``, when ``is_credential_name`` says so.
    """
    if not query:
        return query
    from urllib.parse import unquote_plus

    secrets = frozenset(secret_names)
    parts = query.split("&")
    for index, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        decoded = unquote_plus(name)
        if decoded.lower() in secrets or (credential_rule and is_credential_name(decoded)):
            parts[index] = f"{name}={REDACTED_QUERY_VALUE}" if sep else name
    return "&".join(parts)


def header_value(name: bytes, raw_value: bytes, *, secret: bool) -> str:
    """A captured header's value as the span shows it.

    A header that is both captured and secret is recorded as present with ``[REDACTED]``, which
    tells the reader it was sent without telling them what it held.
    """
    if secret:
        return REDACTED
    value = decode_header(raw_value)
    return redact_subprotocols(value) if name == _SUBPROTOCOL_HEADER else value


def redact_subprotocols(offered: str) -> str:
    """``Sec-WebSocket-Protocol`` with credentials replaced, the protocol names kept.

    Browsers cannot set an Authorization header on a WebSocket, so some clients smuggle one in as a
    subprotocol (Kubernetes' ``base64url.bearer.authorization.k8s.io.<token>``, AppSync's
    ``header-<base64>``) or as a bare opaque token. Protocol names are short identifiers; an item
    that is long, names a credential, or has a part shaped like a token (hex, or base64/base64url
    with mixed case, over 16 characters) is shown as ``[REDACTED]``.
    """
    items = [item.strip() for item in offered.split(",")]
    return ", ".join(REDACTED if _looks_like_credential(item) else item for item in items)


def _looks_like_credential(item: str) -> bool:
    lowered = item.lower()
    if len(item) > _MAX_SUBPROTOCOL_NAME or any(word in lowered for word in _CREDENTIAL_WORDS):
        return True
    return any(_is_opaque(segment) for segment in _SUBPROTOCOL_SEGMENT.split(item))


def _is_opaque(segment: str) -> bool:
    """A random-looking token: hex, or base64(url) mixing upper and lower case, over 16 characters.

    Protocol names (``graphql-transport-ws``, ``chat-v2-protocol-json``) are lower case words, so
    they are kept; a random base64 string of 17 characters lacks either case about once in 3,500.
    """
    if _HEX.fullmatch(segment):
        return True
    return bool(_BASE64.fullmatch(segment)) and segment.lower() != segment and segment.upper() != segment


_SIZE_CHUNK = 16384


def utf8_size(text: str) -> int:
    """UTF-8 length of ``text``; ASCII strings (the common case) are measured without encoding.

    Other text is encoded a chunk at a time, so a megabyte message never costs a megabyte copy.
    """
    if text.isascii():
        return len(text)
    if len(text) <= _SIZE_CHUNK:
        return len(text.encode("utf-8", "surrogatepass"))
    return sum(
        len(text[start : start + _SIZE_CHUNK].encode("utf-8", "surrogatepass"))
        for start in range(0, len(text), _SIZE_CHUNK)
    )


def truncate_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes on a character boundary.

    Only the head that can fit is sliced and encoded (a character is at least one byte), so a
    megabyte message costs no more than a small one.
    """
    head = text[:max_bytes]
    if head.isascii():
        return head, len(text) > max_bytes
    # "replace" turns lone surrogates into "?", so the preview is always valid UTF-8 for OTLP.
    encoded = head.encode("utf-8", "replace")
    truncated = len(encoded) > max_bytes or len(text) > len(head)
    return encoded[:max_bytes].decode("utf-8", "ignore"), truncated
