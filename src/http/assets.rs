//! Browser libraries installed from npm (noVNC, xterm.js): `npm ci` copies them into
//! `<static_dir>/vendor/` (git-ignored) and proxdesk serves that directory from disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Settings;

/// `PROXDESK_STATIC_DIR` (default `static`, relative to the working directory).
pub fn static_dir(settings: &Settings) -> PathBuf {
    PathBuf::from(settings.raw.get("static_dir").map(String::as_str).filter(|d| !d.is_empty()).unwrap_or("static"))
}

/// Whether `npm ci` has put the console libraries under `static_dir`.
pub fn vendor_installed(static_dir: &Path) -> bool {
    static_dir.join("vendor/novnc/core/rfb.js").is_file() && static_dir.join("vendor/xterm/xterm.mjs").is_file()
}

/// Installs the console libraries when they are missing: runs `npm ci` in proxdesk's source
/// directory (its `postinstall` fills `static/vendor/`) if that is where `static_dir` points, the
/// lockfile is there and npm is installed. Otherwise logs what to do; the rest of proxdesk works
/// without them.
pub fn ensure_vendor(static_dir: &Path) {
    if vendor_installed(static_dir) {
        return;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let same_dir = match (static_dir.canonicalize(), source.join("static").canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_dir || !source.join("package-lock.json").is_file() {
        tracing::warn!(dir = %static_dir.display(), "console libraries missing: run `npm ci` in proxdesk's source directory");
        return;
    }
    tracing::info!(dir = %source.display(), "installing the console's browser libraries with `npm ci`");
    let status = Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(source).status();
    match status {
        Ok(s) if s.success() && vendor_installed(static_dir) => {}
        Ok(s) => tracing::warn!(status = %s, "`npm ci` failed; the console pages will say so"),
        Err(e) => tracing::warn!(error = %e, "npm is not available; the console pages will say so"),
    }
}
