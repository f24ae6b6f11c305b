// The chrome shared by the console and terminal pages: the connection badge, the status line (a
// live region), the on-screen keys and the reconnect button. proxdesk's relay closes the socket
// with a code in 4000–4999 saying why; the translated messages sit on the status element as
// data-close-<code>, so no text is built here.
const badge = document.getElementById("console-badge");
const status = document.getElementById("console-status");
const again = document.getElementById("reconnect");
const keys = [...document.querySelectorAll(".keys [data-key]")];

// Refusals PVE decided (4010–4019) carry PVE's own words as the close reason; other reasons are names.
const PVE_REFUSALS = [4010, 4020];

function show(state) {
  document.body.dataset.console = state;
  const tone = badge.dataset[`tone${state[0].toUpperCase()}${state.slice(1)}`];
  badge.className = `badge ${tone}${state === "connecting" ? " busy" : ""}`;
  badge.textContent = badge.dataset[state];
  for (const key of keys) key.disabled = state !== "connected";
  again.hidden = state === "connecting" || state === "connected";
}

export function wsUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export function connecting() {
  delete document.body.dataset.closeCode;
  status.textContent = status.dataset.connecting;
  show("connecting");
}

export function connected() {
  status.textContent = status.dataset.connected;
  show("connected");
}

// The socket closed with `code` and `reason`; `wasConnected` tells an end from a refusal.
export function closed(code, reason, wasConnected) {
  document.body.dataset.closeCode = String(code);
  let text = status.getAttribute(`data-close-${code}`);
  if (text && code >= PVE_REFUSALS[0] && code < PVE_REFUSALS[1] && reason && !/^[a-z_]+$/.test(reason)) {
    text = `${text} ${status.dataset.pveSaid} ${reason}`;
  }
  const known = Boolean(text);
  if (!known) text = wasConnected ? status.dataset.lost : status.dataset.failed;
  status.textContent = text;
  const ended = known ? code >= 4100 : wasConnected;
  show(ended ? "disconnected" : "failed");
}

export function onKey(handler) {
  for (const key of keys) key.addEventListener("click", () => handler(key.dataset.key));
}

export function onReconnect(handler) {
  again.addEventListener("click", handler);
}
