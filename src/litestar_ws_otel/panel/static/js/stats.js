/*
 * The statistics band: the app's numbers since it started (connections, messages, bytes, durations,
 * close codes, errors), from the live socket's "stats" events; the same numbers as the app's metrics.
 * And the export's state ("health" events): a sign in the top bar once span or metric export fails.
 */

import { el, setText, setTitle } from "./dom.js";
import { bytes, clockTime, duration, fullDate, plural } from "./format.js";

const MAX_CLOSE_CODES = 6;

export function renderStats(stats) {
  el.stats.hidden = false;
  setText(el.statConnections, `${plural(count(stats.connections_total), "connection")} · ${count(stats.connections_open)} open`);
  setText(el.statReceived, `${plural(count(stats.messages_received), "msg")} · ${bytes(count(stats.bytes_received))}`);
  setText(el.statSent, `${plural(count(stats.messages_sent), "msg")} · ${bytes(count(stats.bytes_sent))}`);
  const d = stats.duration_seconds || {};
  setText(el.statDuration, d.max == null ? "—" : [d.p50, d.p95, d.max].map((s) => duration(s, false)).join(" · "));
  setText(el.statCloseCodes, closeCodes(stats.close_codes));
  setText(el.statErrors, String(count(stats.errors)));
  el.statErrors.classList.toggle("stat-bad", count(stats.errors) > 0);
}

/** "export failing since HH:MM:SS" while the SDK reports export problems; the last one in the tooltip. */
export function renderHealth(health) {
  const exporting = health && typeof health.export === "object" ? health.export : null;
  const error = exporting && typeof exporting.error === "string" ? exporting.error : null;
  el.exportStatus.hidden = !error;
  if (!error) return;
  setText(el.exportStatus, `export problem ${clockTime(exporting.at)}`);
  const count = typeof exporting.problems === "number" ? exporting.problems : 1;
  setTitle(el.exportStatus, `${plural(count, "export problem")} reported by the OpenTelemetry SDK; the last, ${fullDate(exporting.at)}: ${error}`);
}

function count(value) {
  return typeof value === "number" && value >= 0 ? value : 0;
}

/** "1000 ×5 · 1006 ×1", most frequent first; the rest summed as "+n more". */
function closeCodes(codes) {
  const entries = Object.entries(codes && typeof codes === "object" ? codes : {})
    .filter(([, n]) => typeof n === "number")
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!entries.length) return "—";
  const shown = entries.slice(0, MAX_CLOSE_CODES).map(([code, n]) => `${code} ×${n}`);
  if (entries.length > MAX_CLOSE_CODES) shown.push(`+${entries.length - MAX_CLOSE_CODES} more`);
  return shown.join(" · ");
}
