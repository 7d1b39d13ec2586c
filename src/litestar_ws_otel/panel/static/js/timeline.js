/*
 * The selected session's message timeline: one row per message between the accept event and the
 * error/close events, built from the <template>s with text and attributes only. Live messages are
 * appended in place so selection, focus and scroll position survive them. Also the export link.
 */

import { apiUrl } from "./api.js";
import { closeDetail, markSelectedRow, rowByKey, selectRow } from "./detail.js";
import { el, ensureTabStop, setText, tag } from "./dom.js";
import { bytes, clockTime, closeText, delta, fullDate, plural, totalMessages } from "./format.js";
import { applyFilters, filterRow, renderMatchCount, renderPreview } from "./filters.js";
import { state } from "./state.js";

export const messageKey = (m) => `${m.direction === "sent" ? "s" : "r"}${m.id}`;

/** Whether the user is following the end of the timeline (so new rows keep it scrolled down). */
const isAtBottom = (node) => node.scrollHeight - node.scrollTop - node.clientHeight < 24;

export function setExport(spanId) {
  el.exportLink.href = apiUrl(`api/sessions/${encodeURIComponent(spanId)}/export`);
  el.exportLink.setAttribute("download", `ws-session-${spanId}.json`);
}

export function renderTimeline(record, { fromTop = false } = {}) {
  const focusedKey = document.activeElement && el.timeline.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const wrap = el.timeline.parentElement;
  const atBottom = isAtBottom(wrap);
  const scrollTop = wrap.scrollTop;
  el.timeline.replaceChildren();
  record.endRows = [];
  const s = record.summary;
  // null: the handshake was never accepted (denied, or not yet); undefined: a server without the key.
  const accepted = s.accepted_at !== null;
  const subprotocol = s.subprotocol ? ` (subprotocol ${s.subprotocol})` : "";
  const refused = typeof s.handshake_status === "number" && s.handshake_status !== 101 ? ` (HTTP ${s.handshake_status})` : "";
  const acceptText = accepted ? `Connection accepted${subprotocol}` : `Connection not accepted${refused}`;
  el.timeline.append(eventRow(record, "accept", (accepted && s.accepted_at) || s.started_at, acceptText, ""));
  let previous = s.started_at;
  for (const m of record.messages) {
    el.timeline.append(messageRow(m, previous));
    previous = m.time;
  }
  record.lastTime = previous;
  renderEndEvents(record, { scroll: false });
  renderTimelineNote(record);
  applyFilters();
  const selected = state.selectedKey ? rowByKey(state.selectedKey) : null;
  if (selected) markSelectedRow(selected);
  else if (state.selectedKey) closeDetail();
  if (focusedKey) {
    const again = rowByKey(focusedKey);
    if (again) again.focus({ preventScroll: true });
  }
  if (fromTop) wrap.scrollTop = 0;
  else if (atBottom) wrap.scrollTop = wrap.scrollHeight;
  else wrap.scrollTop = scrollTop;
  ensureTabStop(el.timeline);
}

function renderTimelineNote(record) {
  const s = record.summary;
  const total = totalMessages(s);
  const kept = record.messages.length;
  let note = "";
  if (!record.loaded && record.loading) note = "Loading messages…";
  else if (total > kept) note = `Showing the last ${kept} of ${plural(total, "message")}; the server keeps at most ${state.config.max_messages_per_session ?? kept} per session.`;
  else if (!state.config.capture_payloads) note = "Payload capture is off (capture_payloads=False): sizes and timing only.";
  setText(el.timelineNote, note);
  el.timelineNote.hidden = !note;
}

export function appendMessageRows(record, messages) {
  const wrap = el.timeline.parentElement;
  const atBottom = isAtBottom(wrap);
  const anchor = record.endRows.length ? record.endRows[0] : null;
  let previous = record.lastTime ?? record.summary.started_at;
  for (const m of messages) {
    const row = messageRow(m, previous);
    filterRow(row);
    el.timeline.insertBefore(row, anchor);
    previous = m.time;
  }
  record.lastTime = previous;
  renderTimelineNote(record);
  renderMatchCount();
  if (atBottom) wrap.scrollTop = wrap.scrollHeight;
}

export function renderEndEvents(record, { scroll = true } = {}) {
  for (const row of record.endRows || []) row.remove();
  record.endRows = [];
  const s = record.summary;
  if (s.state === "open") return;
  const wrap = el.timeline.parentElement;
  const atBottom = scroll && isAtBottom(wrap);
  const previous = record.lastTime ?? s.started_at;
  if (s.status === "error") {
    const detail = s.error_type ? `Error: ${s.error_type}` : "Error: the span status is ERROR";
    record.endRows.push(eventRow(record, "error", s.ended_at, detail, delta(s.ended_at - previous)));
  }
  let text = "Connection closed";
  if (s.close_code !== null && s.close_code !== undefined) text = `Closed ${closeText(s)}`;
  record.endRows.push(eventRow(record, "close", s.ended_at, text, delta(s.ended_at - previous)));
  for (const row of record.endRows) {
    filterRow(row);
    el.timeline.append(row);
  }
  renderMatchCount();
  if (atBottom) wrap.scrollTop = wrap.scrollHeight;
}

function eventRow(record, kind, time, text, deltaText) {
  const row = el.tplEvent.content.firstElementChild.cloneNode(true);
  row.classList.add(`event-${kind}`);
  row.dataset.key = `event-${kind}`;
  row.dataset.kind = "event";
  row.id = `row-${record.id}-event-${kind}`;
  setText(row.querySelector(".dir-label"), kind);
  const timeCell = row.querySelector(".c-time");
  setText(timeCell, clockTime(time));
  timeCell.title = fullDate(time);
  setText(row.querySelector(".c-delta"), deltaText);
  setText(row.querySelector(".c-event"), text);
  row.setAttribute("aria-label", `${kind} event at ${clockTime(time)}: ${text}`);
  row.addEventListener("click", () => selectRow(row));
  return row;
}

function messageRow(m, previousTime) {
  const row = el.tplMessage.content.firstElementChild.cloneNode(true);
  const key = messageKey(m);
  row.message = m;
  row.dataset.key = key;
  row.dataset.kind = "message";
  row.dataset.direction = m.direction;
  row.id = `row-${state.selectedId}-${key}`;
  row.classList.add(`msg-${m.direction}`);
  setText(row.querySelector(".arrow"), m.direction === "sent" ? "↑" : "↓");
  setText(row.querySelector(".dir-label"), m.direction === "sent" ? "sent" : "recv");
  row.querySelector(".c-dir").title = m.direction === "sent" ? `sent to the client (#${m.id})` : `received from the client (#${m.id})`;
  const timeCell = row.querySelector(".c-time");
  setText(timeCell, clockTime(m.time));
  timeCell.title = fullDate(m.time);
  setText(row.querySelector(".c-delta"), typeof previousTime === "number" ? delta(m.time - previousTime) : "");
  setText(row.querySelector(".c-type"), m.type === "binary" ? "binary" : "text");
  row.querySelector(".c-type").className = `c-type type-${m.type === "binary" ? "binary" : "text"}`;
  setText(row.querySelector(".c-size"), bytes(m.size));
  row.querySelector(".c-size").title = `${m.size} bytes`;
  const badges = row.querySelector(".c-badges");
  if (m.truncated) {
    const t = tag(`truncated · ${bytes(m.size)}`, "warn");
    t.title = `Preview truncated; the message was ${m.size} bytes`;
    badges.append(t);
  }
  renderPreview(row);
  row.setAttribute(
    "aria-label",
    `${m.direction} ${m.type} message ${m.id} at ${clockTime(m.time)}, ${bytes(m.size)}${m.truncated ? ", truncated" : ""}`,
  );
  row.addEventListener("click", () => selectRow(row));
  return row;
}
