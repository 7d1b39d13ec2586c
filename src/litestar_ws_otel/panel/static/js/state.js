/*
 * The panel's shared mutable state: one object, imported by every module that reads or changes it.
 * Nothing else in the panel keeps module-level mutable variables.
 */

export const state = {
  config: { jaeger_url: null, capture_payloads: true, max_messages_per_session: 100 },
  /** span_id -> session record (see newRecord in sessions.js). */
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
  /** The next reconnect delay; null means the shortest one, RECONNECT_MIN_MS in live.js. */
  reconnectMs: null,
  reconnectTimer: null,
  connectedOnce: false,
  denied: false,
  /** Server clock minus browser clock, in seconds, as learned by learnClock (format.js). */
  clockOffset: 0,
};
