/*
 * URLs and HTTP requests to the panel's own API. Every URL is relative to the panel root, which is
 * the page's directory wherever the panel is mounted (/_ws_otel/, /_debug_toolbar/otel-ws/, ...).
 */

// The panel root: this module is "static/js/api.js", two levels below it. document.currentScript
// is null in modules, so the module's own URL is the anchor.
const BASE = new URL("../../", import.meta.url);

export const apiUrl = (path) => new URL(path, BASE).toString();

/** The live socket's URL: "api/live" under the panel root, ws: or wss: as the page is http: or https:. */
export function liveUrl() {
  const url = new URL("api/live", BASE);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export async function getJson(path) {
  const response = await fetch(apiUrl(path), { cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${response.status} ${response.statusText}`.trim());
    error.status = response.status;
    throw error;
  }
  return response.json();
}
