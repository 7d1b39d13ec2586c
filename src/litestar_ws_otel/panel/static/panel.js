/*
 * litestar-ws-otel inspector panel: plain JavaScript, no dependencies, no build step.
 *
 * Everything a WebSocket client or the app sent (paths, payloads, close reasons, ...) reaches the
 * DOM through textContent or attribute values only, never as markup. Live updates arrive over a
 * WebSocket as deltas and patch the rows they touch, so selection, focus, scroll position and the
 * open message detail survive them.
 */
(() => {
  "use strict";

  // The panel root: "static/panel.js" lives one level below it, wherever the panel is mounted.
  const SCRIPT_URL = document.currentScript ? document.currentScript.src : location.href;
  const BASE = new URL("../", SCRIPT_URL);
  const apiUrl = (path) => new URL(path, BASE).toString();

  const MAX_QUEUED_EVENTS = 5000;
  const PREVIEW_CHARS = 400;
  const HEX_PREVIEW_BYTES = 48;
  const STREAM_EVENTS = ["snapshot", "session_opened", "messages", "session_closed", "session_evicted"];
  // Reconnect after 0.5 s, doubling up to 10 s; a connection that opens resets the delay.
  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  // Close codes that mean "not for you": policy violation, and Litestar's 4000 + HTTP status.
  const DENIED_CLOSE_CODES = [1008, 4401, 4403];

  const $ = (id) => document.getElementById(id);
  const el = {
    liveStatus: $("live-status"),
    captureOff: $("capture-off"),
    sessionCount: $("session-count"),
    pause: $("pause"),
    pending: $("pending"),
    clear: $("clear"),
    notice: $("notice"),
    denied: $("denied"),
    layout: $("layout"),
    sessionList: $("session-list"),
    sessionsEmpty: $("sessions-empty"),
    noSelection: $("no-selection"),
    detail: $("session-detail"),
    headBadge: $("head-badge"),
    headRoute: $("head-route"),
    headPath: $("head-path"),
    headEvicted: $("head-evicted"),
    headStarted: $("head-started"),
    headDuration: $("head-duration"),
    headReceived: $("head-received"),
    headSent: $("head-sent"),
    headClose: $("head-close"),
    headStatus: $("head-status"),
    headTrace: $("head-trace"),
    headSpan: $("head-span"),
    copyTrace: $("copy-trace"),
    copyStatus: $("copy-status"),
    jaegerLink: $("jaeger-link"),
    search: $("search"),
    regex: $("regex"),
    matchCase: $("case"),
    searchError: $("search-error"),
    matchCount: $("match-count"),
    exportLink: $("export"),
    timeline: $("timeline"),
    timelineNote: $("timeline-note"),
    timelineEmpty: $("timeline-empty"),
    md: $("message-detail"),
    mdDir: $("md-dir"),
    mdMeta: $("md-meta"),
    mdBadges: $("md-badges"),
    mdViews: $("md-views"),
    mdCopy: $("md-copy"),
    mdClose: $("md-close"),
    mdNote: $("md-note"),
    mdBody: $("md-body"),
    tplSession: $("tpl-session"),
    tplMessage: $("tpl-message"),
    tplEvent: $("tpl-event"),
  };

  const state = {
    config: { jaeger_url: null, capture_payloads: true, max_messages_per_session: 100 },
    /** span_id -> session record (see newRecord). */
    sessions: new Map(),
    /** Records in display order, newest first. */
    order: [],
    selectedId: null,
    selectedKey: null,
    direction: "all",
    matcher: null,
    view: "pretty",
    paused: false,
    queue: [],
    queueOverflowed: false,
    /** Sessions that started at or before this server time were cleared by the user. */
    clearedUpTo: -Infinity,
    /** The live WebSocket, while one is connecting or open. */
    stream: null,
    reconnectMs: RECONNECT_MIN_MS,
    reconnectTimer: null,
    connectedOnce: false,
    denied: false,
  };

  // ---------------------------------------------------------------------------------------------
  // Formatting

  const pad = (n, width = 2) => String(n).padStart(width, "0");

  function clockTime(seconds) {
    if (typeof seconds !== "number") return "";
    const d = new Date(seconds * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function fullDate(seconds) {
    return typeof seconds === "number" ? new Date(seconds * 1000).toString() : "";
  }

  function duration(seconds, live) {
    if (!(seconds >= 0)) return "";
    if (seconds < 1) return live ? "<1 s" : `${Math.round(seconds * 1000)} ms`;
    if (seconds < 60) return live ? `${Math.floor(seconds)} s` : `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
    const s = Math.floor(seconds);
    if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
    return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  }

  function delta(seconds) {
    if (typeof seconds !== "number") return "";
    const ms = Math.max(0, seconds * 1000);
    if (ms < 1000) return `+${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
    if (ms < 60000) return `+${(ms / 1000).toFixed(3)} s`;
    return `+${duration(ms / 1000, false)}`;
  }

  function bytes(n) {
    if (typeof n !== "number") return "";
    if (n < 1000) return `${n} B`;
    if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 2 : 1)} kB`;
    if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
    return `${(n / 1e9).toFixed(2)} GB`;
  }

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const utf8Length = (text) => new TextEncoder().encode(text).length;

  function hexPairs(hex, maxBytes) {
    const pairs = hex.match(/[0-9a-fA-F]{2}/g) || [];
    return maxBytes === undefined ? pairs : pairs.slice(0, maxBytes);
  }

  function hexDump(hex) {
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

  function oneLine(text) {
    const flat = text.length > PREVIEW_CHARS * 4 ? text.slice(0, PREVIEW_CHARS * 4) : text;
    return flat.replace(/\s+/g, " ").trim().slice(0, PREVIEW_CHARS);
  }

  function closeText(s) {
    if (s.close_code === null || s.close_code === undefined) return "";
    const reason = s.close_reason ? ` “${s.close_reason}”` : "";
    const by = s.close_initiator ? ` by ${s.close_initiator}` : "";
    return `${s.close_code}${reason}${by}`;
  }

  function badgeOf(s) {
    if (s.status === "error") return "error";
    return s.state === "open" ? "open" : "closed";
  }

  function sessionDuration(s) {
    if (typeof s.started_at !== "number") return null;
    const end = typeof s.ended_at === "number" ? s.ended_at : serverNow();
    return Math.max(0, end - s.started_at);
  }

  // Server timestamps are compared with the browser clock for live durations; the offset between
  // the two is learned from message and session times, so a skewed clock never shows negatives.
  let clockOffset = 0;
  function learnClock(serverSeconds) {
    if (typeof serverSeconds !== "number") return;
    const offset = serverSeconds - Date.now() / 1000;
    if (offset > clockOffset) clockOffset = offset;
  }
  const serverNow = () => Date.now() / 1000 + clockOffset;

  // ---------------------------------------------------------------------------------------------
  // Small DOM helpers (text only)

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function badge(node, kind) {
    node.className = `badge badge-${kind}`;
    setText(node, kind);
  }

  function tag(text, kind) {
    const span = document.createElement("span");
    span.className = `tag tag-${kind}`;
    span.textContent = text;
    return span;
  }

  function showNotice(text) {
    setText(el.notice, text);
    el.notice.hidden = !text;
  }

  // ---------------------------------------------------------------------------------------------
  // Session records

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
    c.route.title = s.name || "";
    setText(c.path, s.path || "");
    c.path.title = s.path || "";
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
    record.row.setAttribute("aria-label", label.filter(Boolean).join(", "));
  }

  function renderCounts() {
    const total = state.order.length;
    const open = state.order.filter((r) => r.summary.state === "open").length;
    setText(el.sessionCount, total ? `${plural(total, "session")} · ${open} open` : "");
    el.sessionsEmpty.hidden = total > 0;
    ensureTabStop(el.sessionList);
  }

  // ---------------------------------------------------------------------------------------------
  // Live socket events

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

  const totalMessages = (s) => (s.messages_received ?? 0) + (s.messages_sent ?? 0);

  function invalidate(record) {
    record.loaded = false;
    if (record.id === state.selectedId) loadMessages(record);
  }

  function applyMessages(data) {
    const record = state.sessions.get(data.span_id);
    if (!record) return;
    const counters = {};
    for (const key of ["messages_received", "messages_sent", "bytes_received", "bytes_sent"]) {
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

  function handleEvent(type, data) {
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

  function onStreamEvent(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!frame || !STREAM_EVENTS.includes(frame.event) || !frame.data || typeof frame.data !== "object") return;
    const type = frame.event;
    const data = frame.data;
    if (state.paused) {
      if (state.queue.length >= MAX_QUEUED_EVENTS) {
        state.queue = [];
        state.queueOverflowed = true;
      } else {
        state.queue.push([type, data]);
      }
      renderPending();
      return;
    }
    handleEvent(type, data);
  }

  /** The live socket's URL: "api/live" under the panel root, ws: or wss: as the page is http: or https:. */
  function liveUrl() {
    const url = new URL("api/live", BASE);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.denied) return;
    const socket = new WebSocket(liveUrl());
    state.stream = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      state.connectedOnce = true;
      state.reconnectMs = RECONNECT_MIN_MS;
      renderLiveStatus();
      showNotice("");
    });
    // Every (re)connection starts with a snapshot, merged like the first one.
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") onStreamEvent(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (state.stream !== socket) return;
      state.stream = null;
      if (state.denied) return;
      const delay = state.reconnectMs;
      state.reconnectMs = Math.min(RECONNECT_MAX_MS, delay * 2);
      setLive("offline", "Reconnecting…");
      if (opened) showNotice("Lost the live connection to the server. Reconnecting…");
      // A refused handshake is only a failed connection to the page (HTTP 403 is not exposed): ask.
      if (!opened || DENIED_CLOSE_CODES.includes(event.code)) checkAccess();
      state.reconnectTimer = setTimeout(connect, delay);
    });
  }

  async function checkAccess() {
    try {
      const response = await fetch(apiUrl("api/config"), { cache: "no-store" });
      if (response.status === 403 || response.status === 401) showDenied();
    } catch {
      /* the server is unreachable: the reconnect loop keeps trying */
    }
  }

  function setLive(kind, text) {
    el.liveStatus.dataset.state = kind;
    setText(el.liveStatus, text);
  }

  function renderLiveStatus() {
    if (state.denied) return;
    if (state.paused) setLive("paused", "Paused");
    else if (state.stream && state.stream.readyState === WebSocket.OPEN) setLive("live", "Live");
    else if (state.connectedOnce) setLive("offline", "Reconnecting…");
    else setLive("connecting", "Connecting…");
  }

  // ---------------------------------------------------------------------------------------------
  // Pause, resume, clear

  function renderPending() {
    const count = state.queue.length;
    el.pending.hidden = !state.paused || (!count && !state.queueOverflowed);
    setText(el.pending, state.queueOverflowed ? "many" : String(count));
    let messages = 0;
    let opened = 0;
    let closed = 0;
    for (const [type, data] of state.queue) {
      if (type === "messages" && Array.isArray(data.messages)) messages += data.messages.length;
      else if (type === "session_opened") opened += 1;
      else if (type === "session_closed") closed += 1;
    }
    const parts = [];
    if (opened) parts.push(plural(opened, "new session"));
    if (messages) parts.push(plural(messages, "new message"));
    if (closed) parts.push(`${closed} closed`);
    const waiting = state.queueOverflowed ? "many updates waiting" : `${parts.join(", ") || plural(count, "update")} waiting`;
    el.pending.title = waiting;
    el.pause.setAttribute("aria-label", state.paused ? `Resume live updates (${waiting})` : "Pause live updates");
  }

  function setPaused(paused) {
    state.paused = paused;
    el.pause.setAttribute("aria-pressed", String(paused));
    el.pause.classList.toggle("is-active", paused);
    setText(el.pause.querySelector(".btn-label"), paused ? "Resume" : "Pause");
    el.pause.querySelector(".btn-icon").className = `btn-icon ${paused ? "icon-play" : "icon-pause"}`;
    document.body.classList.toggle("is-paused", paused);
    if (!paused) {
      const queued = state.queue;
      const overflowed = state.queueOverflowed;
      state.queue = [];
      state.queueOverflowed = false;
      if (overflowed) resync();
      else for (const [type, data] of queued) handleEvent(type, data);
    }
    renderPending();
    renderLiveStatus();
  }

  async function resync() {
    try {
      const data = await getJson("api/sessions?summary=1");
      handleEvent("snapshot", { sessions: data.sessions || [] });
    } catch (error) {
      showNotice(`Could not reload sessions: ${error.message}`);
    }
  }

  function clearAll() {
    let newest = state.clearedUpTo;
    for (const record of state.order) {
      if (typeof record.summary.started_at === "number") newest = Math.max(newest, record.summary.started_at);
    }
    state.clearedUpTo = newest;
    for (const record of [...state.order]) remove(record);
    state.queue = state.queue.filter(([type, data]) => type !== "messages" || state.sessions.has(data.span_id));
    deselect();
    renderCounts();
    renderPending();
  }

  // ---------------------------------------------------------------------------------------------
  // Selection and the session head

  function deselect() {
    state.selectedId = null;
    state.selectedKey = null;
    el.detail.hidden = true;
    el.noSelection.hidden = false;
    el.timeline.replaceChildren();
    el.md.hidden = true;
    for (const record of state.order) record.row.setAttribute("aria-selected", "false");
  }

  function select(spanId, { focus = true } = {}) {
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
    el.exportLink.href = apiUrl(`api/sessions/${encodeURIComponent(spanId)}/export`);
    el.exportLink.setAttribute("download", `ws-session-${spanId}.json`);
    renderHead(record);
    renderTimeline(record, { fromTop: true });
    if (!record.loaded) loadMessages(record);
    renderCounts();
  }

  function renderHead(record) {
    const s = record.summary;
    badge(el.headBadge, badgeOf(s));
    setText(el.headRoute, s.route || s.name || "(no route)");
    el.headRoute.title = s.name || "";
    setText(el.headPath, s.path || "");
    el.headEvicted.hidden = !record.evicted;
    setText(el.headStarted, clockTime(s.started_at));
    el.headStarted.title = fullDate(s.started_at);
    setText(el.headDuration, duration(sessionDuration(s), s.state === "open") + (s.state === "open" ? " · open" : ""));
    setText(el.headReceived, `${plural(s.messages_received ?? 0, "msg")} · ${bytes(s.bytes_received ?? 0)}`);
    setText(el.headSent, `${plural(s.messages_sent ?? 0, "msg")} · ${bytes(s.bytes_sent ?? 0)}`);
    setText(el.headClose, s.state === "open" ? "—" : closeText(s) || "—");
    el.headStatus.replaceChildren(tag(s.status === "error" ? "error" : "unset", s.status === "error" ? "error" : "muted"));
    setText(el.headTrace, s.trace_id || "");
    setText(el.headSpan, s.span_id || "");
    const jaeger = jaegerUrl(s.trace_id);
    el.jaegerLink.hidden = !jaeger;
    if (jaeger) el.jaegerLink.href = jaeger;
    else el.jaegerLink.removeAttribute("href");
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

  async function copyText(text, statusNode, what) {
    try {
      await navigator.clipboard.writeText(text);
      setText(statusNode, `${what} copied`);
    } catch {
      setText(statusNode, "Copy failed: select the text instead");
    }
    const shown = statusNode.textContent;
    setTimeout(() => {
      if (statusNode.textContent === shown) setText(statusNode, "");
    }, 1800);
  }

  // ---------------------------------------------------------------------------------------------
  // Messages

  const messageKey = (m) => `${m.direction === "sent" ? "s" : "r"}${m.id}`;

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

  // ---------------------------------------------------------------------------------------------
  // The timeline

  /** Whether the user is following the end of the timeline (so new rows keep it scrolled down). */
  const isAtBottom = (node) => node.scrollHeight - node.scrollTop - node.clientHeight < 24;

  function renderTimeline(record, { fromTop = false } = {}) {
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
    const acceptText = accepted ? `Connection accepted${subprotocol}` : "Connection not accepted";
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

  function appendMessageRows(record, messages) {
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

  function renderEndEvents(record, { scroll = true } = {}) {
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

  function previewText(m) {
    if (m.size === 0) return { text: "(empty)", muted: true };
    if (typeof m.payload !== "string") {
      return { text: m.type === "binary" && state.config.capture_payloads ? "(binary, no preview)" : "(not captured)", muted: true };
    }
    if (m.type === "binary") {
      const pairs = hexPairs(m.payload, HEX_PREVIEW_BYTES);
      const more = m.payload.length / 2 > HEX_PREVIEW_BYTES ? " …" : "";
      return { text: pairs.join(" ") + more, muted: false };
    }
    if (m.payload === "") return { text: "(empty)", muted: true };
    return { text: oneLine(m.payload), muted: false };
  }

  function renderPreview(row) {
    const cell = row.querySelector(".c-preview");
    const { text, muted } = previewText(row.message);
    cell.classList.toggle("is-muted", muted);
    const matcher = state.matcher;
    if (!matcher || muted) {
      setText(cell, text);
      return;
    }
    // Highlight matches: the text is split into text nodes and <mark> elements, never parsed.
    cell.replaceChildren();
    let last = 0;
    matcher.lastIndex = 0;
    for (const match of text.matchAll(matcher)) {
      if (!match[0]) continue;
      if (match.index > last) cell.append(document.createTextNode(text.slice(last, match.index)));
      const mark = document.createElement("mark");
      mark.textContent = match[0];
      cell.append(mark);
      last = match.index + match[0].length;
    }
    if (last < text.length) cell.append(document.createTextNode(text.slice(last)));
  }

  function searchableText(m) {
    if (typeof m.payload !== "string") return "";
    return m.type === "binary" ? hexPairs(m.payload).join(" ") : m.payload;
  }

  function matches(m) {
    if (state.direction !== "all" && m.direction !== state.direction) return false;
    const matcher = state.matcher;
    if (!matcher) return true;
    matcher.lastIndex = 0;
    return matcher.test(searchableText(m));
  }

  function filterRow(row) {
    if (row.dataset.kind === "event") {
      row.hidden = state.direction !== "all" || !!state.matcher;
    } else {
      row.hidden = !matches(row.message);
    }
  }

  function applyFilters() {
    for (const row of el.timeline.children) {
      filterRow(row);
      if (row.dataset.kind === "message") renderPreview(row);
    }
    renderMatchCount();
    ensureTabStop(el.timeline);
  }

  function renderMatchCount() {
    const record = state.selectedId ? state.sessions.get(state.selectedId) : null;
    if (!record) return;
    let shown = 0;
    let total = 0;
    for (const row of el.timeline.children) {
      if (row.dataset.kind !== "message") continue;
      total += 1;
      if (!row.hidden) shown += 1;
    }
    const filtered = state.direction !== "all" || state.matcher;
    setText(el.matchCount, filtered ? `${shown} of ${plural(total, "message")}` : plural(total, "message"));
    let empty = "";
    if (record.loading && !total) empty = "Loading messages…";
    else if (!total) empty = record.summary.state === "open" ? "No messages yet." : "";
    else if (!shown) empty = "No messages match the filter.";
    setText(el.timelineEmpty, empty);
    el.timelineEmpty.hidden = !empty;
  }

  function setDirection(direction) {
    state.direction = direction;
    for (const button of document.querySelectorAll(".toolbar .seg[data-direction]")) {
      button.setAttribute("aria-pressed", String(button.dataset.direction === direction));
    }
    applyFilters();
  }

  function updateSearch() {
    const query = el.search.value;
    const useRegex = el.regex.getAttribute("aria-pressed") === "true";
    const flags = el.matchCase.getAttribute("aria-pressed") === "true" ? "g" : "gi";
    let matcher = null;
    let error = "";
    if (query) {
      try {
        matcher = new RegExp(useRegex ? query : query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags);
      } catch (exc) {
        error = `Invalid regex: ${exc.message.replace(/^Invalid regular expression: /, "")}`;
      }
    }
    state.matcher = matcher;
    setText(el.searchError, error);
    el.search.setAttribute("aria-invalid", String(!!error));
    applyFilters();
  }

  // ---------------------------------------------------------------------------------------------
  // Row selection and the message detail

  const rowByKey = (key) => [...el.timeline.children].find((row) => row.dataset.key === key) || null;

  function markSelectedRow(row) {
    for (const other of el.timeline.children) {
      const selected = other === row;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
    }
  }

  function selectRow(row, { focus = true } = {}) {
    state.selectedKey = row.dataset.key;
    markSelectedRow(row);
    if (focus) row.focus();
    if (row.dataset.kind === "message") showDetail(row.message);
    else closeDetail({ keepSelection: true });
  }

  function closeDetail({ keepSelection = false } = {}) {
    el.md.hidden = true;
    if (!keepSelection) {
      const row = state.selectedKey ? rowByKey(state.selectedKey) : null;
      state.selectedKey = null;
      for (const other of el.timeline.children) other.setAttribute("aria-selected", "false");
      if (row) row.focus();
    }
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
    setText(el.mdNote, notes.join(" "));
    el.mdNote.hidden = !notes.length;
  }

  /** Pretty-printed JSON with token colours; every token is a text node. */
  function renderJson(node, value) {
    const text = JSON.stringify(value, null, 2);
    node.replaceChildren();
    node.classList.add("is-json");
    const token = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false)\b|\b(null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0;
    for (const match of text.matchAll(token)) {
      if (match.index > last) node.append(document.createTextNode(text.slice(last, match.index)));
      const span = document.createElement("span");
      if (match[1]) {
        span.className = match[2] ? "j-key" : "j-string";
        span.textContent = match[1];
        node.append(span);
        if (match[2]) node.append(document.createTextNode(match[2]));
      } else {
        span.className = match[3] ? "j-bool" : match[4] ? "j-null" : "j-number";
        span.textContent = match[0];
        node.append(span);
      }
      last = match.index + match[0].length;
    }
    if (last < text.length) node.append(document.createTextNode(text.slice(last)));
  }

  // ---------------------------------------------------------------------------------------------
  // Keyboard: both lists are listboxes with a roving tab stop

  function ensureTabStop(list) {
    const options = [...list.children].filter((row) => !row.hidden);
    if (!options.length) return;
    if (!options.some((row) => row.tabIndex === 0)) {
      const selected = options.find((row) => row.getAttribute("aria-selected") === "true");
      (selected || options[0]).tabIndex = 0;
    }
    for (const row of list.children) {
      if (row.hidden && row.tabIndex === 0 && row !== document.activeElement) row.tabIndex = -1;
    }
    if (!options.some((row) => row.tabIndex === 0)) options[0].tabIndex = 0;
  }

  function listKeys(list, onSelect) {
    list.addEventListener("keydown", (event) => {
      const options = [...list.children].filter((row) => !row.hidden);
      const current = options.indexOf(document.activeElement);
      let next = -1;
      switch (event.key) {
        case "ArrowDown":
          next = Math.min(options.length - 1, current + 1);
          break;
        case "ArrowUp":
          next = Math.max(0, current - 1);
          break;
        case "Home":
          next = 0;
          break;
        case "End":
          next = options.length - 1;
          break;
        case "Enter":
        case " ":
          if (current >= 0) onSelect(options[current]);
          event.preventDefault();
          return;
        default:
          return;
      }
      event.preventDefault();
      if (next >= 0 && options[next]) onSelect(options[next]);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Startup

  async function getJson(path) {
    const response = await fetch(apiUrl(path), { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error(`${response.status} ${response.statusText}`.trim());
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function showDenied() {
    state.denied = true;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.stream) state.stream.close();
    state.stream = null;
    el.layout.hidden = true;
    el.denied.hidden = false;
    showNotice("");
    setLive("offline", "Denied");
  }

  function tick() {
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

  function bind() {
    el.pause.addEventListener("click", () => setPaused(!state.paused));
    el.clear.addEventListener("click", clearAll);
    for (const button of document.querySelectorAll(".toolbar .seg[data-direction]")) {
      button.addEventListener("click", () => setDirection(button.dataset.direction));
    }
    el.search.addEventListener("input", updateSearch);
    for (const toggle of [el.regex, el.matchCase]) {
      toggle.addEventListener("click", () => {
        toggle.setAttribute("aria-pressed", String(toggle.getAttribute("aria-pressed") !== "true"));
        updateSearch();
      });
    }
    el.copyTrace.addEventListener("click", () => copyText(el.headTrace.textContent, el.copyStatus, "Trace id"));
    el.mdCopy.addEventListener("click", () => {
      const row = state.selectedKey ? rowByKey(state.selectedKey) : null;
      if (row && row.message && typeof row.message.payload === "string") copyText(row.message.payload, el.copyStatus, "Payload");
    });
    el.mdClose.addEventListener("click", () => closeDetail());
    for (const button of el.mdViews.querySelectorAll(".seg")) {
      button.addEventListener("click", () => {
        state.view = button.dataset.view;
        const row = state.selectedKey ? rowByKey(state.selectedKey) : null;
        if (row && row.message) showDetail(row.message);
      });
    }
    listKeys(el.sessionList, (row) => select(row.dataset.spanId));
    listKeys(el.timeline, (row) => selectRow(row));
    document.addEventListener("keydown", (event) => {
      const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
      if (event.key === "/" && !typing && !el.detail.hidden) {
        event.preventDefault();
        el.search.focus();
        el.search.select();
      } else if (event.key === "Escape") {
        if (event.target === el.search && el.search.value) {
          el.search.value = "";
          updateSearch();
        } else if (!el.md.hidden) {
          closeDetail();
        }
      } else if ((event.key === "p" || event.key === "P") && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        setPaused(!state.paused);
      }
    });
    setInterval(tick, 1000);
  }

  async function start() {
    bind();
    renderCounts();
    try {
      const config = await getJson("api/config");
      state.config = { ...state.config, ...config };
    } catch (error) {
      if (error.status === 403 || error.status === 401) {
        showDenied();
        return;
      }
      showNotice(`Could not load the panel configuration: ${error.message}`);
    }
    el.captureOff.hidden = !!state.config.capture_payloads;
    connect();
  }

  start();
})();
