/*
 * Search and direction filters over the timeline: which rows are shown, the payload previews with
 * their <mark> highlights (text nodes only, never parsed), and the "n of m messages" count.
 */

import { el, ensureTabStop, setText, textNode, visible } from "./dom.js";
import { hexPairs, oneLine, plural } from "./format.js";
import { state } from "./state.js";

const HEX_PREVIEW_BYTES = 48;

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

export function renderPreview(row) {
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
    if (match.index > last) cell.append(textNode(text.slice(last, match.index)));
    const mark = document.createElement("mark");
    mark.textContent = visible(match[0]);
    cell.append(mark);
    last = match.index + match[0].length;
  }
  if (last < text.length) cell.append(textNode(text.slice(last)));
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

export function filterRow(row) {
  if (row.dataset.kind === "event") {
    row.hidden = state.direction !== "all" || !!state.matcher;
  } else {
    row.hidden = !matches(row.message);
  }
}

export function applyFilters() {
  for (const row of el.timeline.children) {
    filterRow(row);
    if (row.dataset.kind === "message") renderPreview(row);
  }
  renderMatchCount();
  ensureTabStop(el.timeline);
}

export function renderMatchCount() {
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
  // The loader renders before it clears ``loading``: ``loaded`` is what says the fetch is done.
  if (!record.loaded && record.loading && !total) empty = "Loading messages…";
  else if (!total) empty = record.summary.state === "open" ? "No messages yet." : "No messages.";
  else if (!shown) empty = "No messages match the filter.";
  setText(el.timelineEmpty, empty);
  el.timelineEmpty.hidden = !empty;
}

export function setDirection(direction) {
  state.direction = direction;
  for (const button of document.querySelectorAll(".toolbar .seg[data-direction]")) {
    button.setAttribute("aria-pressed", String(button.dataset.direction === direction));
  }
  applyFilters();
}

export function updateSearch() {
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
