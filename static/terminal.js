// The terminal page: xterm.js speaking termproxy's framing through proxdesk's relay, which has
// already logged in to Proxmox VE (the ticket never reaches this page).
import { Terminal } from "/static/vendor/xterm/xterm.mjs";
import { FitAddon } from "/static/vendor/xterm/addon-fit.mjs";
import * as ui from "/static/console-ui.js";

const screen = document.getElementById("console-screen");
const encoder = new TextEncoder();
const SEQUENCES = { esc: "\x1b", tab: "\t", "ctrl-c": "\x03", "ctrl-d": "\x04" };

// The page's policy is `style-src 'self'`: it blocks the <style> elements xterm's DOM renderer
// creates (theme colours, row sizes, scrollbar) and the style attributes it writes for true-colour
// cells. Constructed stylesheets and CSSOM writes are not inline styles, so xterm's rules go through
// those instead: while it builds its DOM, its <style> elements are inert stand-ins whose text feeds
// an adopted stylesheet; and a style attribute a script sets on a cell (a span not yet in the page,
// or one inside the terminal) is written through `style.cssText`. Style attributes in markup stay
// blocked: this only changes how this page's own scripts write them.
class XtermStyle extends HTMLElement {
  constructor() {
    super();
    this.sheet = new CSSStyleSheet();
    this.css = "";
  }
  set textContent(css) {
    this.css = css;
    this.sheet.replaceSync(css);
  }
  get textContent() {
    return this.css;
  }
  connectedCallback() {
    this.hidden = true;
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.sheet];
  }
  disconnectedCallback() {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== this.sheet);
  }
}
customElements.define("xterm-style", XtermStyle);

const setAttribute = Element.prototype.setAttribute;
Element.prototype.setAttribute = function (name, value) {
  if (name === "style" && this instanceof HTMLElement && (!this.isConnected || this.closest(".xterm"))) {
    this.style.cssText = value;
    return;
  }
  setAttribute.call(this, name, value);
};

function openTerminal(term, parent) {
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (name, options) {
    return create.call(this, String(name).toLowerCase() === "style" ? "xterm-style" : name, options);
  };
  try {
    term.open(parent);
  } finally {
    Document.prototype.createElement = create;
  }
}

const term = new Terminal({ cursorBlink: true, convertEol: false });
const fit = new FitAddon();
term.loadAddon(fit);
openTerminal(term, screen);
fit.fit();
window.proxdeskTerminal = term;

let socket = null;

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

// A refused console is upgraded and closed at once (the close code says why), so an open socket is
// only called connected once the terminal speaks or a moment has passed without a close.
const SETTLE_MS = 250;

function connect() {
  ui.connecting();
  const ws = new WebSocket(ui.wsUrl(screen.dataset.ws), ["binary"]);
  let wasConnected = false;
  let settle = null;
  const markConnected = () => {
    clearTimeout(settle);
    if (wasConnected || socket !== ws) return;
    wasConnected = true;
    ui.connected();
    term.focus();
  };
  socket = ws;
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    sendSize();
    settle = setTimeout(markConnected, SETTLE_MS);
  };
  ws.onmessage = (e) => {
    markConnected();
    term.write(new Uint8Array(e.data));
  };
  ws.onclose = (e) => {
    clearTimeout(settle);
    if (socket === ws) ui.closed(e.code, e.reason, wasConnected);
  };
}

ui.onKey((key) => {
  if (SEQUENCES[key]) sendInput(SEQUENCES[key]);
  term.focus();
});
term.onData(sendInput);
term.onResize(sendSize);
window.addEventListener("resize", () => fit.fit());
window.proxdeskTerminalInput = sendInput;
ui.onReconnect(connect);
// As on the console page: leaving ends the session, coming back from the back/forward cache reconnects.
window.addEventListener("pagehide", () => {
  if (socket) socket.close(1000);
});
window.addEventListener("pageshow", (e) => {
  if (e.persisted) connect();
});
connect();
