/*
 * The session list: one record per session (its summary, its kept messages and its list row),
 * kept newest first; live events merged into it; selection, the counts and the live durations.
 * Rows are built from the <template> with text and attributes only.
 */

import { getJson } from "./api.js";
import { badge, el, ensureTabStop, setText, setTitle, showNotice, visible } from "./dom.js";
import { badgeOf, bytes, clockTime, closeText, duration, fullDate, learnClock, plural, sessionDuration, totalMessages } from "./format.js";
import { renderHead } from "./head.js";
import { state } from "./state.js";
import { appendMessageRows, messageKey, renderEndEvents, renderTimeline, setExport } from "./timeline.js";

function newRecord(summary) {
  const row = el.tplSession.content.firstElementChild.cloneNode(true);
  const record = {
    id: summary.span_id,
    summary: {},
    messages: [],
    keys: new Set(),
    loaded: false,
    loading: null,
    evicted: false,
    row,
    cells: {
      badge: row.querySelector(".badge"),
      route: row.querySelector(".s-route"),
      duration: row.querySelector(".s-duration"),
      path: row.querySelector(".s-path"),
      started: row.querySelector(".s-started"),
      received: row.querySelector(".s-received"),
      sent: row.querySelector(".s-sent"),
      close: row.querySelector(".s-close"),
    },
  };
  row.id = `session-${summary.span_id}`;
  row.dataset.spanId = summary.span_id;
  row.addEventListener("click", () => select(record.id, { focus: false }));
  return record;
}

function summaryOf(document_) {
  const { messages, ...summary } = document_;
  return summary;
}

function isCleared(summary) {
  return typeof summary.started_at === "number" && summary.started_at <= state.clearedUpTo;
}

function insertRow(record) {
  const started = record.summary.started_at ?? Infinity;
  let index = state.order.findIndex((other) => (other.summary.started_at ?? Infinity) < started);
  if (index === -1) index = state.order.length;
  state.order.splice(index, 0, record);
  const before = state.order[index + 1];
  el.sessionList.insertBefore(record.row, before ? before.row : null);
}

function upsert(summary, { opened = false } = {}) {
  if (!summary || typeof summary.span_id !== "string") return null;
  learnClock(summary.ended_at ?? summary.started_at);
  let record = state.sessions.get(summary.span_id);
  if (!record) {
    if (isCleared(summary)) return null;
    record = newRecord(summary);
    record.summary = summaryOf(summary);
    // For a session first seen after the snapshot, the live socket sends all its kept messages.
    record.loaded = opened;
    state.sessions.set(record.id, record);
    insertRow(record);
  } else {
    const wasOpen = record.summary.state === "open";
    record.summary = { ...record.summary, ...summaryOf(summary) };
    if (record.id === state.selectedId && wasOpen && record.summary.state !== "open") renderEndEvents(record);
  }
  renderRow(record);
  if (record.id === state.selectedId) renderHead(record);
  return record;
}

function remove(record) {
  state.sessions.delete(record.id);
  state.order = state.order.filter((other) => other !== record);
  record.row.remove();
}

function renderRow(record) {
  const s = record.summary;
  const c = record.cells;
  const kind = badgeOf(s);
  badge(c.badge, kind);
  record.row.dataset.state = kind;
  record.row.classList.toggle("is-evicted", record.evicted);
  setText(c.route, s.route || s.name || "(no route)");
  setTitle(c.route, s.name || "");
  setText(c.path, s.path || "");
  setTitle(c.path, s.path || "");
  setText(c.started, clockTime(s.started_at));
  c.started.title = fullDate(s.started_at);
  setText(c.duration, duration(sessionDuration(s), s.state === "open"));
  setText(c.received, `↓ ${s.messages_received ?? 0} · ${bytes(s.bytes_received ?? 0)}`);
  c.received.title = `${plural(s.messages_received ?? 0, "message")} received from the client`;
  setText(c.sent, `↑ ${s.messages_sent ?? 0} · ${bytes(s.bytes_sent ?? 0)}`);
  c.sent.title = `${plural(s.messages_sent ?? 0, "message")} sent to the client`;
  setText(c.close, closeText(s));
  const label = [
    kind,
    s.route || s.name,
    s.path,
    `started ${clockTime(s.started_at)}`,
    `${s.messages_received ?? 0} received`,
    `${s.messages_sent ?? 0} sent`,
    s.close_code != null ? `closed ${closeText(s)}` : "",
  ];
  record.row.setAttribute("aria-label", visible(label.filter(Boolean).join(", ")));
}

export function renderCounts() {
  const total = state.order.length;
  const open = state.order.filter((r) => r.summary.state === "open").length;
  setText(el.sessionCount, total ? `${plural(total, "session")} · ${open} open` : "");
  el.sessionsEmpty.hidden = total > 0;
  ensureTabStop(el.sessionList);
}

// ---------------------------------------------------------------------------------------------
// Live socket events

/** Apply one event of the live socket (or of a resync); unknown types are ignored. */
export function handleEvent(type, data) {
  switch (type) {
    case "snapshot":
      applySnapshot(data.sessions);
      break;
    case "session_opened":
      upsert(data, { opened: true });
      break;
    case "messages":
      applyMessages(data);
      break;
    case "session_closed":
      upsert(data);
      break;
    case "session_evicted":
      evict(data.span_id);
      break;
    default:
      return;
  }
  renderCounts();
}

function applySnapshot(summaries) {
  const seen = new Set();
  for (const summary of summaries || []) {
    if (!summary || typeof summary.span_id !== "string") continue;
    seen.add(summary.span_id);
    const record = state.sessions.get(summary.span_id);
    const known = record ? totalMessages(record.summary) : 0;
    const fresh = upsert(summary);
    // Messages may have passed while the live socket was down: fetch again when needed.
    if (record && fresh && totalMessages(fresh.summary) !== known) invalidate(fresh);
  }
  for (const record of [...state.order]) {
    if (!seen.has(record.id)) evict(record.id);
  }
  if (state.selectedId && state.sessions.has(state.selectedId)) {
    const selected = state.sessions.get(state.selectedId);
    if (!selected.loaded) loadMessages(selected);
  }
}

function invalidate(record) {
  record.loaded = false;
  if (record.id === state.selectedId) loadMessages(record);
}

function applyMessages(data) {
  const record = state.sessions.get(data.span_id);
  if (!record) return;
  const counters = {};
  for (const key of ["messages_received", "messages_sent", "bytes_received", "bytes_sent", "exported_at"]) {
    if (typeof data[key] === "number") counters[key] = data[key];
  }
  record.summary = { ...record.summary, ...counters };
  const added = addMessages(record, data.messages || []);
  renderRow(record);
  if (record.id === state.selectedId) {
    renderHead(record);
    if (added.length) appendMessageRows(record, added);
  }
}

function evict(spanId) {
  const record = state.sessions.get(spanId);
  if (!record) return;
  if (record.id === state.selectedId) {
    // Keep what the user is looking at; it just stops being live.
    record.evicted = true;
    renderRow(record);
    renderHead(record);
    return;
  }
  remove(record);
}

/** The "Clear" button: hide every session listed so far, and any that started before them. */
export function clearSessions() {
  let newest = state.clearedUpTo;
  for (const record of state.order) {
    if (typeof record.summary.started_at === "number") newest = Math.max(newest, record.summary.started_at);
  }
  state.clearedUpTo = newest;
  for (const record of [...state.order]) remove(record);
  deselect();
  renderCounts();
}

// ---------------------------------------------------------------------------------------------
// Selection

function deselect() {
  state.selectedId = null;
  state.selectedKey = null;
  el.detail.hidden = true;
  el.noSelection.hidden = false;
  el.timeline.replaceChildren();
  el.md.hidden = true;
  for (const record of state.order) record.row.setAttribute("aria-selected", "false");
}

export function select(spanId, { focus = true } = {}) {
  const record = state.sessions.get(spanId);
  if (!record) return;
  const previous = state.selectedId ? state.sessions.get(state.selectedId) : null;
  if (previous && previous.evicted && previous !== record) remove(previous);
  for (const other of state.order) {
    const selected = other === record;
    other.row.setAttribute("aria-selected", String(selected));
    other.row.tabIndex = selected ? 0 : -1;
  }
  if (focus) record.row.focus();
  if (state.selectedId === spanId) return;
  state.selectedId = spanId;
  state.selectedKey = null;
  el.noSelection.hidden = true;
  el.detail.hidden = false;
  el.md.hidden = true;
  setExport(spanId);
  renderHead(record);
  renderTimeline(record, { fromTop: true });
  if (!record.loaded) loadMessages(record);
  renderCounts();
}

// ---------------------------------------------------------------------------------------------
// Messages

function validMessage(m) {
  return m && (m.direction === "sent" || m.direction === "received") && typeof m.time === "number";
}

/** Merge messages into a record, oldest first, without duplicates; returns the ones appended at the end. */
function addMessages(record, incoming) {
  const added = [];
  let outOfOrder = false;
  for (const m of incoming) {
    if (!validMessage(m)) continue;
    const key = messageKey(m);
    if (record.keys.has(key)) continue;
    const last = record.messages[record.messages.length - 1];
    if (last && m.time < last.time) outOfOrder = true;
    record.keys.add(key);
    record.messages.push(m);
    added.push(m);
    learnClock(m.time);
  }
  if (outOfOrder) record.messages.sort((a, b) => a.time - b.time);
  const limit = state.config.max_messages_per_session;
  const overflow = typeof limit === "number" && limit > 0 ? record.messages.length - limit : 0;
  let dropped = [];
  if (overflow > 0) {
    dropped = record.messages.splice(0, overflow);
    for (const m of dropped) record.keys.delete(messageKey(m));
  }
  if ((outOfOrder || dropped.length) && record.id === state.selectedId) {
    renderTimeline(record);
    return [];
  }
  return added.filter((m) => record.keys.has(messageKey(m)));
}

async function loadMessages(record) {
  if (record.loading) return record.loading;
  record.loading = (async () => {
    try {
      const document_ = await getJson(`api/sessions/${encodeURIComponent(record.id)}`);
      if (state.sessions.get(record.id) !== record) return;
      if (!state.paused) record.summary = { ...record.summary, ...summaryOf(document_) };
      // The fetched list is the truth up to now; messages streamed meanwhile are merged in.
      const streamed = record.messages;
      record.messages = [];
      record.keys = new Set();
      addMessages(record, [...(document_.messages || []), ...streamed]);
      record.loaded = true;
      renderRow(record);
      if (record.id === state.selectedId) {
        renderHead(record);
        renderTimeline(record);
      }
    } catch (error) {
      if (error.status === 404) {
        record.evicted = true;
        record.loaded = true;
        if (record.id === state.selectedId) {
          renderHead(record);
          renderTimeline(record);
        }
      } else {
        showNotice(`Could not load the session's messages: ${error.message}`);
      }
    } finally {
      record.loading = null;
    }
  })();
  return record.loading;
}

/** Once a second: the live durations of open sessions, in the list and in the head. */
export function tick() {
  if (state.paused) return;
  for (const record of state.order) {
    if (record.summary.state === "open" && !record.evicted) {
      setText(record.cells.duration, duration(sessionDuration(record.summary), true));
    }
  }
  const selected = state.selectedId ? state.sessions.get(state.selectedId) : null;
  if (selected && selected.summary.state === "open") {
    setText(el.headDuration, `${duration(sessionDuration(selected.summary), true)} · open`);
  }
}
