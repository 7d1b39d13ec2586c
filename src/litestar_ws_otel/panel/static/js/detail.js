/*
 * The message detail under the timeline: row selection, the payload as pretty JSON, raw text or a
 * hex dump, and copying the payload. JSON tokens are coloured with text nodes and spans only.
 */

import { copyText, el, setText, tag, textNode, visible } from "./dom.js";
import { bytes, clockTime, hexDump, utf8Length } from "./format.js";
import { state } from "./state.js";

export const rowByKey = (key) => [...el.timeline.children].find((row) => row.dataset.key === key) || null;

const selectedRow = () => (state.selectedKey ? rowByKey(state.selectedKey) : null);

export function markSelectedRow(row) {
  for (const other of el.timeline.children) {
    const selected = other === row;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
  }
}

export function selectRow(row, { focus = true } = {}) {
  state.selectedKey = row.dataset.key;
  markSelectedRow(row);
  if (focus) row.focus();
  if (row.dataset.kind === "message") showDetail(row.message);
  else closeDetail({ keepSelection: true });
}

export function closeDetail({ keepSelection = false } = {}) {
  el.md.hidden = true;
  if (!keepSelection) {
    const row = selectedRow();
    state.selectedKey = null;
    for (const other of el.timeline.children) other.setAttribute("aria-selected", "false");
    if (row) row.focus();
  }
}

/** The "Pretty" / "Raw" buttons: remembered for every JSON message shown next. */
export function setView(view) {
  state.view = view;
  const row = selectedRow();
  if (row && row.message) showDetail(row.message);
}

export function copyPayload() {
  const row = selectedRow();
  if (row && row.message && typeof row.message.payload === "string") copyText(row.message.payload, el.copyStatus, "Payload");
}

function jsonOf(payload) {
  const trimmed = payload.trim();
  if (!trimmed || !"{[\"".includes(trimmed[0]) && !/^(-?\d|true|false|null)/.test(trimmed)) return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    return undefined;
  }
}

function showDetail(m) {
  el.md.hidden = false;
  el.mdDir.className = `dir-chip dir-${m.direction}`;
  setText(el.mdDir, m.direction === "sent" ? "↑ sent" : "↓ received");
  setText(el.mdMeta, `${m.type} · #${m.id} · ${clockTime(m.time)} · ${bytes(m.size)}`);
  el.mdBadges.replaceChildren();
  const notes = [];
  const payload = typeof m.payload === "string" ? m.payload : null;
  if (m.truncated) {
    el.mdBadges.append(tag(`truncated · original ${bytes(m.size)}`, "warn"));
    if (payload !== null) {
      const shown = m.type === "binary" ? payload.length / 2 : utf8Length(payload);
      notes.push(`Showing the first ${bytes(shown)} of ${bytes(m.size)}.`);
    }
  }
  el.mdCopy.hidden = payload === null || payload === "";
  el.mdViews.hidden = true;
  el.mdBody.className = "md-body mono";
  if (m.size === 0 || payload === "") {
    el.mdBody.classList.add("is-muted");
    setText(el.mdBody, "(empty)");
  } else if (payload === null) {
    el.mdBody.classList.add("is-muted");
    setText(
      el.mdBody,
      m.type === "binary"
        ? "No preview: binary previews are off (capture_binary_preview=False)."
        : "No preview: payload capture is off (capture_payloads=False).",
    );
  } else if (m.type === "binary") {
    el.mdBody.classList.add("is-hex");
    setText(el.mdBody, hexDump(payload));
    notes.unshift("Hex view of the binary preview.");
  } else {
    showText(payload);
  }
  setText(el.mdNote, notes.join(" "));
  el.mdNote.hidden = !notes.length;
}

/** A text payload: JSON objects and arrays get the Pretty / Raw switch, anything else shows as is. */
function showText(payload) {
  const value = jsonOf(payload);
  if (value !== undefined && typeof value === "object" && value !== null) {
    el.mdViews.hidden = false;
    for (const button of el.mdViews.querySelectorAll(".seg")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === state.view));
    }
    if (state.view === "pretty") renderJson(el.mdBody, value);
    else setText(el.mdBody, payload);
  } else {
    setText(el.mdBody, payload);
  }
}

/** Pretty-printed JSON with token colours; every token is a text node. */
function renderJson(node, value) {
  const text = JSON.stringify(value, null, 2);
  node.replaceChildren();
  node.classList.add("is-json");
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false)\b|\b(null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (const match of text.matchAll(token)) {
    if (match.index > last) node.append(textNode(text.slice(last, match.index)));
    const span = document.createElement("span");
    if (match[1]) {
      span.className = match[2] ? "j-key" : "j-string";
      span.textContent = visible(match[1]);
      node.append(span);
      if (match[2]) node.append(textNode(match[2]));
    } else {
      span.className = match[3] ? "j-bool" : match[4] ? "j-null" : "j-number";
      span.textContent = visible(match[0]);
      node.append(span);
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) node.append(textNode(text.slice(last)));
}
