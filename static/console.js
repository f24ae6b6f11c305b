// The console page: noVNC connected to proxdesk's relay. The relay has already authenticated to
// Proxmox VE and offers security type None, so no password ever reaches this page.
import RFB from "/static/vendor/novnc/core/rfb.js";

const screen = document.getElementById("console-screen");
const status = document.getElementById("console-status");
const cad = document.getElementById("ctrl-alt-del");
const again = document.getElementById("reconnect");

function wsUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function connect() {
  status.textContent = status.dataset.connecting || status.textContent;
  again.hidden = true;
  const rfb = new RFB(screen, wsUrl(screen.dataset.ws), { wsProtocols: ["binary"], shared: true });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => {
    status.textContent = status.dataset.connected;
    document.body.dataset.console = "connected";
    cad.disabled = false;
  });
  rfb.addEventListener("disconnect", (e) => {
    const ok = e.detail.clean && document.body.dataset.console === "connected";
    status.textContent = ok ? status.dataset.disconnected : status.dataset.failed;
    document.body.dataset.console = "disconnected";
    cad.disabled = true;
    again.hidden = false;
  });
  cad.onclick = () => rfb.sendCtrlAltDel();
  window.proxdeskConsole = rfb;
}

again.addEventListener("click", connect);
connect();
