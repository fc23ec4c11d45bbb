//! A throw-away SoftHSM2 token (Debian package `softhsm2`): its own token directory and
//! configuration file in a temporary directory, a token initialised with
//! `softhsm2-util --init-token`, and a PIN file (mode 0600) for Fiktiv's
//! `[keys.pkcs11] pin_file`. Processes that use it need `SOFTHSM2_CONF` (see
//! [`SoftHsm::env`]); SoftHSM2 reads no other setting.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context as _};

use crate::{peer_dir, INSTALL_HINT};

/// Where Debian installs the PKCS#11 module.
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];
/// The token's user PIN in tests.
pub const SOFTHSM_USER_PIN: &str = "246813";
const SO_PIN: &str = "975310";

/// A SoftHSM2 token in its own directory. Removed on drop.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
    label: String,
}

impl SoftHsm {
    /// A fresh token labelled `label`. Errors (never skips) if SoftHSM2 is missing.
    pub fn start(label: &str) -> anyhow::Result<Self> {
        let module = MODULE_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!("the SoftHSM2 PKCS#11 module (Debian package softhsm2) is not installed; {INSTALL_HINT}")
            })?;
        let util = crate::process::find_executable("softhsm2-util", &[]).ok_or_else(|| {
            anyhow!("`softhsm2-util` not found (Debian package softhsm2); {INSTALL_HINT}")
        })?;
        let dir = peer_dir("fiktiv-softhsm-")?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).context("creating the token directory")?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .context("writing softhsm2.conf")?;
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{SOFTHSM_USER_PIN}\n"))
            .context("writing the PIN file")?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600))?;
        }
        let out = Command::new(&util)
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                SOFTHSM_USER_PIN,
                "--so-pin",
                SO_PIN,
            ])
            .output()
            .context("running softhsm2-util --init-token")?;
        if !out.status.success() {
            bail!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            dir,
            module,
            label: label.to_string(),
        })
    }

    /// The PKCS#11 module.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A file (mode 0600) holding the user PIN.
    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    /// `SOFTHSM2_CONF` for a process that opens the token.
    pub fn env(&self) -> (&'static str, PathBuf) {
        ("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"))
    }

    /// The `[keys]` tables of a Fiktiv configuration for this token.
    pub fn fiktiv_config(&self) -> String {
        format!(
            "[keys]\nprovider = \"pkcs11\"\n\n[keys.pkcs11]\nmodule = \"{}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\n",
            self.module.display(),
            self.label,
            self.pin_file().display()
        )
    }
}
