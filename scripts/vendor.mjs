// Copies the browser libraries the console pages load from node_modules/ into static/vendor/
// (git-ignored). Runs as npm's postinstall, so `npm ci` is the whole install step.
import { cpSync, rmSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const vendor = join(root, "static", "vendor");

const copies = [
  // noVNC is an ES module tree: core/ imports ../vendor/pako.
  ["@novnc/novnc/core", "novnc/core"],
  ["@novnc/novnc/vendor", "novnc/vendor"],
  ["@novnc/novnc/LICENSE.txt", "novnc/LICENSE.txt"],
  ["@xterm/xterm/lib/xterm.mjs", "xterm/xterm.mjs"],
  ["@xterm/xterm/css/xterm.css", "xterm/xterm.css"],
  ["@xterm/xterm/LICENSE", "xterm/LICENSE"],
  ["@xterm/addon-fit/lib/addon-fit.mjs", "xterm/addon-fit.mjs"],
];

rmSync(vendor, { recursive: true, force: true });
for (const [from, to] of copies) {
  mkdirSync(dirname(join(vendor, to)), { recursive: true });
  cpSync(join(modules, from), join(vendor, to), { recursive: true });
}
console.log(`proxdesk: browser libraries copied to ${vendor}`);
