/*
 * The live connection: the WebSocket to "api/live" and its reconnect loop with backoff, telling a
 * refused connection (access denied) from a server that is down, the status chip, and pausing,
 * which queues the live events until resume (or resyncs when too many piled up).
 */

import { apiUrl, getJson, liveUrl } from "./api.js";
import { el, setText, showNotice } from "./dom.js";
import { plural } from "./format.js";
import { clearSessions, handleEvent } from "./sessions.js";
import { renderHealth, renderStats } from "./stats.js";
import { state } from "./state.js";

const MAX_QUEUED_EVENTS = 5000;
const STREAM_EVENTS = ["snapshot", "session_opened", "messages", "session_closed", "session_evicted", "stats", "health"];
// Reconnect after 0.5 s, doubling up to 10 s; a connection that opens resets the delay.
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10000;
// Close codes that mean "not for you": policy violation, and Litestar's 4000 + HTTP status.
const DENIED_CLOSE_CODES = [1008, 4401, 4403];

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
  if (type === "stats" || type === "health") {
    // The app's totals and the export's state, not changes to the list: pausing does not hold them.
    (type === "stats" ? renderStats : renderHealth)(data);
    return;
  }
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

export function connect() {
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
    const delay = state.reconnectMs ?? RECONNECT_MIN_MS;
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

export function showDenied() {
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

export function setPaused(paused) {
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

/** The "Clear" button: the sessions go, and so do queued messages of the sessions that went. */
export function clearAll() {
  clearSessions();
  state.queue = state.queue.filter(([type, data]) => type !== "messages" || state.sessions.has(data.span_id));
  renderPending();
}
