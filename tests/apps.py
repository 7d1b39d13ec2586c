"""Litestar WebSocket handlers shared by the test suites (and by the export subprocess apps).

``echo`` serves ``/echo`` and ``room_echo`` serves ``/echo/{room}``; both run :func:`echo_messages`.
"""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, websocket

CLOSE_ME = "close-me"
"""A text message that makes the echo close the connection with ``CLOSE_ME_CODE`` instead of echoing."""
CLOSE_ME_CODE = 4001


async def echo_messages(socket: WebSocket[Any, Any, Any]) -> None:
    """Echo every message with its own type, byte for byte, until the client leaves; close with 4001 when told to."""
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == CLOSE_ME:
            await socket.close(code=CLOSE_ME_CODE, reason="asked")
            return
        if text is not None:
            await socket.send_text(text)
        else:
            await socket.send_bytes(message.get("bytes") or b"")


echo = websocket("/echo")(echo_messages)
room_echo = websocket("/echo/{room:str}")(echo_messages)
