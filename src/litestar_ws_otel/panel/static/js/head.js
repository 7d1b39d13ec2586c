/*
 * The selected session's head: route, path, timing, counters, close, status, trace and span ids,
 * and the "Open in Jaeger" link (only ever an http(s) URL built from the configured jaeger_url).
 */

import { badge, el, setText, setTitle, tag } from "./dom.js";
import { badgeOf, bytes, clockTime, closeText, duration, fullDate, plural, sessionDuration } from "./format.js";
import { state } from "./state.js";

export function renderHead(record) {
  const s = record.summary;
  badge(el.headBadge, badgeOf(s));
  setText(el.headRoute, s.route || s.name || "(no route)");
  setTitle(el.headRoute, s.name || "");
  setText(el.headPath, s.path || "");
  el.headEvicted.hidden = !record.evicted;
  setText(el.headStarted, clockTime(s.started_at));
  el.headStarted.title = fullDate(s.started_at);
  setText(el.headDuration, duration(sessionDuration(s), s.state === "open") + (s.state === "open" ? " · open" : ""));
  setText(el.headReceived, `${plural(s.messages_received ?? 0, "msg")} · ${bytes(s.bytes_received ?? 0)}`);
  setText(el.headSent, `${plural(s.messages_sent ?? 0, "msg")} · ${bytes(s.bytes_sent ?? 0)}`);
  setText(el.headClose, s.state === "open" ? "—" : closeText(s) || "—");
  setText(el.headExported, exportedText(s));
  el.headStatus.replaceChildren(statusTag(s));
  setText(el.headTrace, s.trace_id || "");
  setText(el.headSpan, s.span_id || "");
  const jaeger = jaegerUrl(s.trace_id);
  el.jaegerLink.hidden = !jaeger;
  if (jaeger) el.jaegerLink.href = jaeger;
  else el.jaegerLink.removeAttribute("href");
}

/** When the session's messages last left for the trace backend: while open, on the export timer. */
function exportedText(s) {
  if (typeof s.exported_at === "number") return `${clockTime(s.exported_at)}${s.state === "open" ? "" : ", then at close"}`;
  return s.state === "open" ? "not yet" : "at close";
}

/** "OK" or "error" in words; the span's own status (and error.type) in the tooltip. */
function statusTag(s) {
  const error = s.status === "error";
  const status = tag(error ? "error" : "OK", error ? "error" : "ok");
  setTitle(status, error ? `span status ERROR${s.error_type ? ` (error.type ${s.error_type})` : ""}` : "span status UNSET: no server error");
  return status;
}

function jaegerUrl(traceId) {
  const base = state.config.jaeger_url;
  if (!base || typeof traceId !== "string" || !/^[0-9a-f]{32}$/i.test(traceId)) return null;
  let url;
  try {
    url = new URL(base);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return `${url.toString().replace(/\/+$/, "")}/trace/${traceId}`;
}
