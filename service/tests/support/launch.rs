//! The one launcher of the `fiktiv` binary in tests: the binary cargo built for this
//! package, with none of the caller's `FIKTIV_*` variables (a developer's shell must
//! not change what a test runs against: a root key, a database URL or a configuration
//! file of their own), standard input closed and logs at `warn`. A test adds what it
//! means to pass (`.env("FIKTIV_DATABASE_URL", …)`, `.stdin(…)`) to the command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `fiktiv <args> --data-dir <data_dir> [--config <config>]`, not started.
pub fn fiktiv(data_dir: &Path, config: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fiktiv"));
    c.args(args).arg("--data-dir").arg(data_dir);
    if let Some(config) = config {
        c.arg("--config").arg(config);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FIKTIV_") {
            c.env_remove(name);
        }
    }
    c.env("RUST_LOG", "warn").stdin(Stdio::null());
    c
}

/// Runs `fiktiv <args> --data-dir <data_dir>` to its end.
pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    fiktiv(data_dir, None, args).output().unwrap()
}

/// Standard output or error as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
