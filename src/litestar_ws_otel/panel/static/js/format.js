/*
 * Formatting helpers: times, durations, sizes, hex dumps and the short texts built from a session
 * summary. They return plain strings; callers put them in the DOM as text only.
 */

import { state } from "./state.js";

const PREVIEW_CHARS = 400;

const pad = (n, width = 2) => String(n).padStart(width, "0");

export function clockTime(seconds) {
  if (typeof seconds !== "number") return "";
  const d = new Date(seconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fullDate(seconds) {
  return typeof seconds === "number" ? new Date(seconds * 1000).toString() : "";
}

export function duration(seconds, live) {
  if (!(seconds >= 0)) return "";
  if (seconds < 1) return live ? "<1 s" : `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return live ? `${Math.floor(seconds)} s` : `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const s = Math.floor(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}

export function delta(seconds) {
  if (typeof seconds !== "number") return "";
  const ms = Math.max(0, seconds * 1000);
  if (ms < 1000) return `+${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 60000) return `+${(ms / 1000).toFixed(3)} s`;
  return `+${duration(ms / 1000, false)}`;
}

/** Binary units throughout (a 1024-byte limit is "1 KiB", never "1.02 kB"); exact bytes below 1 KiB. */
export function bytes(n) {
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${Number(value.toFixed(digits))} ${units[unit]}`;
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
export const utf8Length = (text) => new TextEncoder().encode(text).length;

export function hexPairs(hex, maxBytes) {
  const pairs = hex.match(/[0-9a-fA-F]{2}/g) || [];
  return maxBytes === undefined ? pairs : pairs.slice(0, maxBytes);
}

export function hexDump(hex) {
  const pairs = hexPairs(hex);
  const lines = [];
  for (let offset = 0; offset < pairs.length; offset += 16) {
    const chunk = pairs.slice(offset, offset + 16);
    const left = chunk.slice(0, 8).join(" ");
    const right = chunk.slice(8).join(" ");
    const hexText = `${left.padEnd(23)}  ${right.padEnd(23)}`;
    const ascii = chunk
      .map((pair) => {
        const code = parseInt(pair, 16);
        return code >= 0x20 && code < 0x7f ? String.fromCharCode(code) : ".";
      })
      .join("");
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hexText}  |${ascii}|`);
  }
  return lines.join("\n");
}

export function oneLine(text) {
  const flat = text.length > PREVIEW_CHARS * 4 ? text.slice(0, PREVIEW_CHARS * 4) : text;
  // U+FEFF counts as whitespace in JS: keep it, so that visible() can name it.
  return flat
    .replace(/[^\S\ufeff]+/g, " ")
    .replace(/^ | $/g, "")
    .slice(0, PREVIEW_CHARS);
}

// ---------------------------------------------------------------------------------------------
// Session summaries

export function closeText(s) {
  if (s.close_code === null || s.close_code === undefined) return "";
  const reason = s.close_reason ? ` “${s.close_reason}”` : "";
  const by = s.close_initiator ? ` by ${s.close_initiator}` : "";
  return `${s.close_code}${reason}${by}`;
}

export function badgeOf(s) {
  if (s.status === "error") return "error";
  return s.state === "open" ? "open" : "closed";
}

export const totalMessages = (s) => (s.messages_received ?? 0) + (s.messages_sent ?? 0);

export function sessionDuration(s) {
  if (typeof s.started_at !== "number") return null;
  const end = typeof s.ended_at === "number" ? s.ended_at : serverNow();
  return Math.max(0, end - s.started_at);
}

// Server timestamps are compared with the browser clock for live durations; the offset between
// the two is learned from message and session times, so a skewed clock never shows negatives.
export function learnClock(serverSeconds) {
  if (typeof serverSeconds !== "number") return;
  const offset = serverSeconds - Date.now() / 1000;
  if (offset > state.clockOffset) state.clockOffset = offset;
}

const serverNow = () => Date.now() / 1000 + state.clockOffset;
