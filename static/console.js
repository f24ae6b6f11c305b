// The console page: noVNC connected to proxdesk's relay. The relay has already authenticated to
// Proxmox VE and offers security type None, so no password ever reaches this page. noVNC gets the
// WebSocket itself so that the close code (why the relay ended) can be read from it.
import RFB from "/static/vendor/novnc/core/rfb.js";
import * as ui from "/static/console-ui.js";

const screen = document.getElementById("console-screen");
const KEYSYM = { esc: [0xff1b, "Escape"], tab: [0xff09, "Tab"], ctrl: [0xffe3, "ControlLeft"], c: [0x63, "KeyC"] };
let rfb = null;

function connect() {
  ui.connecting();
  const socket = new WebSocket(ui.wsUrl(screen.dataset.ws), ["binary"]);
  let close = null;
  let wasConnected = false;
  // Registered before noVNC attaches, so the close event is known when noVNC reports the disconnect.
  socket.addEventListener("close", (e) => {
    close = e;
  });
  rfb = new RFB(screen, socket, { shared: true });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => {
    wasConnected = true;
    ui.connected();
    rfb.focus({ preventScroll: true });
  });
  rfb.addEventListener("disconnect", () => {
    ui.closed(close ? close.code : 1006, close ? close.reason : "", wasConnected);
  });
  window.proxdeskConsole = rfb;
}

ui.onKey((key) => {
  if (!rfb) return;
  if (key === "ctrl-alt-del") {
    rfb.sendCtrlAltDel();
  } else if (key === "ctrl-c") {
    rfb.sendKey(...KEYSYM.ctrl, true);
    rfb.sendKey(...KEYSYM.c);
    rfb.sendKey(...KEYSYM.ctrl, false);
  } else if (KEYSYM[key]) {
    rfb.sendKey(...KEYSYM[key]);
  }
  rfb.focus({ preventScroll: true });
});
ui.onReconnect(connect);
// Leaving the page ends the session at once: a page kept in the back/forward cache would otherwise
// hold the relay (and the machine's one console) until the idle timeout. Coming back reconnects.
window.addEventListener("pagehide", () => {
  if (rfb) rfb.disconnect();
});
window.addEventListener("pageshow", (e) => {
  if (e.persisted) connect();
});
connect();
