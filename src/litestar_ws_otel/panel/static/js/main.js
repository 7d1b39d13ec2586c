/*
 * The panel's entry module (loaded by index.html as a module script, so it runs once the document
 * is parsed): wires the buttons, the search box and the keyboard shortcuts to the other modules,
 * loads the configuration, then opens the live connection.
 *
 * Everything a WebSocket client or the app sent (paths, payloads, close reasons, ...) reaches the
 * DOM through textContent or attribute values only, never as markup. Live updates arrive over a
 * WebSocket as deltas and patch the rows they touch, so selection, focus, scroll position and the
 * open message detail survive them. Plain JavaScript modules: no dependencies, no build step.
 */

import { getJson } from "./api.js";
import { closeDetail, copyPayload, selectRow, setView } from "./detail.js";
import { copyText, el, listKeys, showNotice } from "./dom.js";
import { setDirection, updateSearch } from "./filters.js";
import { clearAll, connect, setPaused, showDenied } from "./live.js";
import { renderCounts, select, tick } from "./sessions.js";
import { state } from "./state.js";

function bindButtons() {
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
  el.mdCopy.addEventListener("click", copyPayload);
  el.mdClose.addEventListener("click", () => closeDetail());
  for (const button of el.mdViews.querySelectorAll(".seg")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
}

/** "/" focuses the search, Escape clears it or closes the message detail, P pauses and resumes. */
function onShortcut(event) {
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
}

function bind() {
  bindButtons();
  listKeys(el.sessionList, (row) => select(row.dataset.spanId));
  listKeys(el.timeline, (row) => selectRow(row));
  document.addEventListener("keydown", onShortcut);
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
