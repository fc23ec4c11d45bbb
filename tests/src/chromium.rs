//! Headless Chromium and ChromeDriver from Debian's packages (for browser tests).

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::process::find_executable;
use crate::INSTALL_HINT;

/// The flags a headless Chromium needs here: no sandbox (tests run as root), and no
/// background networking (this network is closed; without these flags Chromium keeps
/// trying to reach Google's hosts).
pub const CHROMIUM_HEADLESS_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn find(env: &str, name: &str, default: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env).map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(anyhow!(
                "{env}={} does not exist; unset it or {INSTALL_HINT}",
                path.display()
            ))
        };
    }
    find_executable(name, &[Path::new(default).to_path_buf()])
        .ok_or_else(|| anyhow!("`{name}` not found (Debian package {package}); {INSTALL_HINT}"))
}

/// `$FIKTIV_CHROMIUM`, else `/usr/bin/chromium`, else `chromium` on `PATH`.
pub fn chromium_path() -> anyhow::Result<PathBuf> {
    find(
        "FIKTIV_CHROMIUM",
        "chromium",
        "/usr/bin/chromium",
        "chromium",
    )
}

/// `$FIKTIV_CHROMEDRIVER`, else `/usr/bin/chromedriver`, else `chromedriver` on `PATH`.
pub fn chromedriver_path() -> anyhow::Result<PathBuf> {
    find(
        "FIKTIV_CHROMEDRIVER",
        "chromedriver",
        "/usr/bin/chromedriver",
        "chromium-driver",
    )
}
