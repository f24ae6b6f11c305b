// The terminal page: xterm.js speaking termproxy's framing through proxdesk's relay, which has
// already logged in to Proxmox VE (the ticket never reaches this page).
import { Terminal } from "/static/vendor/xterm/xterm.mjs";
import { FitAddon } from "/static/vendor/xterm/addon-fit.mjs";

const screen = document.getElementById("console-screen");
const status = document.getElementById("console-status");
const again = document.getElementById("reconnect");
const encoder = new TextEncoder();

const term = new Terminal({ cursorBlink: true, convertEol: false });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(screen);
fit.fit();
window.proxdeskTerminal = term;

let socket = null;

function wsUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

// `0:<byte length>:<data>` input, `1:<cols>:<rows>:` resize (termproxy's protocol).
function sendInput(text) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const data = encoder.encode(text);
  const head = encoder.encode(`0:${data.length}:`);
  const frame = new Uint8Array(head.length + data.length);
  frame.set(head);
  frame.set(data, head.length);
  socket.send(frame);
}

function sendSize() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(`1:${term.cols}:${term.rows}:`);
}

function connect() {
  again.hidden = true;
  socket = new WebSocket(wsUrl(screen.dataset.ws), ["binary"]);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    status.textContent = status.dataset.connected;
    document.body.dataset.console = "connected";
    sendSize();
    term.focus();
  };
  socket.onmessage = (e) => term.write(new Uint8Array(e.data));
  socket.onclose = () => {
    const was = document.body.dataset.console === "connected";
    status.textContent = was ? status.dataset.disconnected : status.dataset.failed;
    document.body.dataset.console = "disconnected";
    again.hidden = false;
  };
}

term.onData(sendInput);
term.onResize(sendSize);
window.addEventListener("resize", () => fit.fit());
window.proxdeskTerminalInput = sendInput;
again.addEventListener("click", connect);
connect();
