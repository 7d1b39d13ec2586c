"""The panel's routes: the page, its static assets, the JSON API and the live socket.

``register_panel`` adds one ``Router`` per prefix to an app that is already built: ``panel_path``
and, when litestar-debug-toolbar is installed, ``/_debug_toolbar/otel-ws``, where the toolbar
neither injects itself into the page nor records its requests. Both prefixes are excluded from
the WebSocket instrumentation by ``instrument_app``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from litestar import Request, Response, Router, WebSocket, get, websocket
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import MediaType, ScopeType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from litestar_ws_otel.config import TOOLBAR_PANEL_PATH
from litestar_ws_otel.export_health import export_health
from litestar_ws_otel.panel.access import PanelAccess
from litestar_ws_otel.panel.stream import serve_live

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from litestar_ws_otel.handle import Instrumentation

__all__ = ("SECURITY_HEADERS", "STATIC_DIR", "register_panel")

STATIC_DIR = Path(__file__).with_name("static")

SECURITY_HEADERS: dict[str, str] = {
    # Same-origin everything and no inline code: a payload that slips past the page's escaping
    # still cannot run, and nothing is fetched from a CDN.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Payload previews must not linger in a shared or disk cache.
    "Cache-Control": "no-store",
}

_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_PAGE = "litestar_ws_otel.panel.page"
"""Name prefix of the page's handler: the one route a top-level navigation from another site may open."""
_REFUSAL_BODY = b"The litestar-ws-otel panel is not available to this request"
_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def register_panel(app: Litestar, handle: Instrumentation) -> tuple[str, ...]:
    """Serve the panel on ``app`` under ``panel_path`` (and the toolbar's prefix when it is installed).

    Args:
        app: A built Litestar app; routes are added with ``app.register``.
        handle: The app's instrumentation, whose processor and config the panel reads.

    Returns:
        The paths the panel answers under.
    """
    prefixes = [handle.config.panel_path]
    if _toolbar_installed() and TOOLBAR_PANEL_PATH not in prefixes:
        prefixes.append(TOOLBAR_PANEL_PATH)
    access = PanelAccess(handle.config)
    export_health.watch()
    for prefix in prefixes:
        app.register(_router(prefix, handle, access))
    if "debug_toolbar.litestar.plugin" in sys.modules:  # the app may use the toolbar: do not import it otherwise
        from litestar_ws_otel.toolbar import bind_toolbar_panels

        bind_toolbar_panels(app)
    return tuple(prefixes)


def _list_query(request: Request[Any, Any, Any]) -> tuple[Literal["open", "closed"] | None, int | None, bool]:
    """Read ``state``, ``limit`` and ``summary`` by hand: parameter declarations differ across Litestar 2.x."""
    query = request.query_params
    session_state = query.get("state")
    if session_state not in (None, "open", "closed"):
        raise ValidationException("state must be 'open' or 'closed'")
    raw_limit = query.get("limit")
    limit = None
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if limit < 1:
            raise ValidationException("limit must be a whole number >= 1")
    summary = query.get("summary", "0")
    if summary not in _FLAGS:
        raise ValidationException("summary must be 1 or 0")
    return session_state, limit, _FLAGS[summary]


def _toolbar_installed() -> bool:
    return importlib.util.find_spec("debug_toolbar") is not None


def _router(prefix: str, handle: Instrumentation, access: PanelAccess) -> Router:
    """One prefix's routes; fresh handler objects each time, since a handler belongs to one router."""
    processor = handle.processor
    config = handle.config
    # Relative, so it stays right behind a proxy or a root_path: "/a/_ws_otel" -> "/a/_ws_otel/".
    index_location = prefix.rsplit("/", 1)[-1] + "/"

    @get("/", sync_to_thread=False, name=f"{_PAGE}:{prefix}")
    def index(request: Request[Any, Any, Any]) -> Response[Any]:
        """The page. Litestar routes ``{prefix}`` and ``{prefix}/`` alike; the raw path tells them apart."""
        raw_path = request.scope.get("raw_path")
        if isinstance(raw_path, bytes) and not raw_path.endswith(b"/"):
            return Redirect(path=index_location, status_code=307)
        return Response(content=(STATIC_DIR / "index.html").read_bytes(), media_type=MediaType.HTML)

    @get("/api/config", sync_to_thread=False)
    def api_config() -> dict[str, Any]:
        return {
            "jaeger_url": config.jaeger_url,
            "capture_payloads": handle.capture_payloads,
            "max_sessions": config.max_sessions,
            "max_messages_per_session": config.max_messages_per_session,
            "max_payload_bytes": config.max_payload_bytes,
        }

    @get("/api/stats", sync_to_thread=False)
    def api_stats() -> dict[str, Any]:
        """The app's numbers since it started: the same the metrics report."""
        return handle.statistics.snapshot().as_json()

    @get("/api/health", sync_to_thread=False)
    def api_health() -> dict[str, Any]:
        """Whether span and metric export is failing, from the SDK's own log records."""
        return {"export": export_health.status()}

    @get("/api/sessions", sync_to_thread=False)
    def api_sessions(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """``?state=open|closed``, ``?limit=N``; ``?summary=1`` skips the rings the list view does not show."""
        session_state, limit, summary = _list_query(request)
        read = processor.summaries if summary else processor.sessions
        return {"sessions": read(state=session_state, limit=limit)}

    @get("/api/sessions/{span_id:str}", sync_to_thread=False)
    def api_session(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return _session_or_404(request.path_params["span_id"])

    @get("/api/sessions/{span_id:str}/export", sync_to_thread=False)
    def api_export(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        span_id = request.path_params["span_id"]
        document = _session_or_404(span_id)  # the span id is ours, validated: safe in a header
        disposition = f'attachment; filename="ws-session-{span_id}.json"'
        return Response(content=document, media_type=MediaType.JSON, headers={"Content-Disposition": disposition})

    @websocket("/api/live")
    async def api_live(socket: WebSocket[Any, Any, Any]) -> None:
        """The live channel; ``_Gate`` refuses a handshake with ``403`` before it gets here."""
        await serve_live(socket, processor, handle.statistics, health=export_health.status)

    def _session_or_404(span_id: str) -> dict[str, Any]:
        document = processor.session(span_id) if _SPAN_ID.fullmatch(span_id) else None
        if document is None:
            raise NotFoundException("No recent WebSocket session has this span id")  # no echo of client input
        return document

    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        name=f"litestar_ws_otel.panel.static:{prefix}",  # names are unique per app; the app may have "static"
        include_in_schema=False,
    )
    return Router(
        path=prefix,
        route_handlers=[
            index,
            api_config,
            api_stats,
            api_health,
            api_sessions,
            api_session,
            api_export,
            api_live,
            static,
        ],
        middleware=[_SecurityHeaders(), _Gate(access)],
        include_in_schema=False,
    )


class _Gate(ASGIMiddleware):
    """Answers a refused request itself: ``403``, no data, and no exception for the app to log.

    A guard would raise ``PermissionDeniedException``, which Litestar logs with its traceback in
    debug mode, once per request. A refused WebSocket handshake is closed before it is accepted,
    which the server answers with an HTTP ``403``.
    """

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    def __init__(self, access: PanelAccess) -> None:
        self.access = access

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler_name = getattr(scope.get("route_handler"), "name", None)
        page = isinstance(handler_name, str) and handler_name.startswith(_PAGE)
        if self.access.refusal(scope, receive, send, page=page) is None:
            await next_app(scope, receive, send)
        elif scope["type"] == ScopeType.WEBSOCKET:
            await _refuse_handshake(receive, send)
        else:
            await _refuse_http(send)


async def _refuse_http(send: Send) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(_REFUSAL_BODY)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": _REFUSAL_BODY, "more_body": False})


async def _refuse_handshake(receive: Receive, send: Send) -> None:
    """Close before accept: the ASGI spec has the server answer that with an HTTP ``403``.

    Not the denial-response extension: uvicorn's default WebSocket implementation logs an error
    ("returned without completing handshake") for every such response, which is the log flood this
    avoids.
    """
    message = await receive()  # websocket.connect, which the ASGI spec has the app read first
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008, "reason": ""})


class _SecurityHeaders(ASGIMiddleware):
    """Adds ``SECURITY_HEADERS`` to every panel response.

    A middleware rather than the router's ``response_headers``: those skip the static files'
    ``ASGIFileResponse`` and the gate's ``403``.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await next_app(scope, receive, send_with_headers)
