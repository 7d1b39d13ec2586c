/*
 * The page's elements, looked up once, and small DOM helpers. Text only: every helper here puts
 * data in the DOM through textContent or attribute values, never as markup. Also the keyboard
 * behaviour shared by both lists (listboxes with a roving tab stop).
 */

const $ = (id) => document.getElementById(id);

// Module scripts run after the document is parsed, so every element already exists.
export const el = {
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
  stats: $("stats"),
  exportStatus: $("export-status"),
  statConnections: $("stat-connections"),
  statReceived: $("stat-received"),
  statSent: $("stat-sent"),
  statDuration: $("stat-duration"),
  statCloseCodes: $("stat-close-codes"),
  statErrors: $("stat-errors"),
  headExported: $("head-exported"),
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

// Bidi overrides and isolates, bidi marks, zero-width characters: invisible in text, yet they
// reorder or hide what is shown ("/raw/\u202egnp.exe" reads as "/raw/exe.png"). Every text the
// page shows passes through visible(), which names each one: "⟨U+202E⟩".
const HIDDEN_CHARS = /[\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]/g;

export function visible(text) {
  const value = text === null || text === undefined ? "" : String(text);
  return value.replace(HIDDEN_CHARS, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

/** A text node of visible(text): for helpers that build a run of text and element nodes. */
export function textNode(text) {
  return document.createTextNode(visible(text));
}

export function setText(node, text) {
  const value = visible(text);
  if (node.textContent !== value) node.textContent = value;
}

/** A title attribute, through visible() like every text. */
export function setTitle(node, text) {
  node.title = visible(text);
}

export function badge(node, kind) {
  node.className = `badge badge-${kind}`;
  setText(node, kind);
}

export function tag(text, kind) {
  const span = document.createElement("span");
  span.className = `tag tag-${kind}`;
  span.textContent = visible(text);
  return span;
}

export function showNotice(text) {
  setText(el.notice, text);
  el.notice.hidden = !text;
}

export async function copyText(text, statusNode, what) {
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
// Keyboard: both lists are listboxes with a roving tab stop

export function ensureTabStop(list) {
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

export function listKeys(list, onSelect) {
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
