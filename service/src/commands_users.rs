//! `fiktiv users add|disable|enable|reset|list`: staff accounts of the web UI.
//!
//! `users add` works on an empty system: it is how the first central administrator is
//! created (first-run setup; see docs/WEB.md). The one-time password and the TOTP
//! secret are printed once, on stdout, and stored only as an Argon2id hash and a
//! sealed value. Every change is audited with the actor `cli`.

use std::path::Path;

use fiktiv_policies::Role;
use qrcode::render::{svg, unicode::Dense1x2};
use qrcode::{EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::cli::UsersCommand;
use fiktiv_app::context::Context;
use fiktiv_routine::DomainError;
use fiktiv_staff::accounts::{self, Credentials};

fn one_line(e: DomainError) -> anyhow::Error {
    match e {
        DomainError::Invalid(v) => anyhow::anyhow!(
            "{}",
            v.iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        DomainError::Conflict { message, .. } => anyhow::anyhow!("{message}"),
        e => anyhow::anyhow!("{e}"),
    }
}

/// Command output goes to stdout; logs go to stderr.
#[allow(clippy::print_stdout)] // this is the CLI's output channel
fn out(s: &str) {
    println!("{s}");
}

fn print_credentials(c: &Credentials, qr_svg: Option<&Path>) -> anyhow::Result<()> {
    out(&format!("name: {}", c.name));
    out(&format!("one-time-password: {}", c.password.as_str()));
    out(&format!("totp-secret: {}", c.totp_secret.as_str()));
    out(&format!("totp-uri: {}", c.otpauth_uri.as_str()));
    // The QR code of the totp-uri, drawn here (nothing is sent anywhere): on the
    // terminal (stderr, as `qrencode -t UTF8` draws it for a dark background), and as
    // an SVG file when asked for.
    let code = QrCode::with_error_correction_level(c.otpauth_uri.as_bytes(), EcLevel::M)?;
    let art = Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    );
    eprintln!("{QR_BEGIN}\n{}\n{QR_END}", art.as_str());
    if let Some(path) = qr_svg {
        let svg = Zeroizing::new(
            code.render::<svg::Color<'_>>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build(),
        );
        write_secret_file(path, svg.as_bytes())?;
        eprintln!(
            "the QR code is also in {}: show it to the person to scan, then delete the file \
             (it holds the TOTP secret)",
            path.display()
        );
    }
    Ok(())
}

/// The lines around the QR code on stderr.
pub const QR_BEGIN: &str = "Scan this QR code with the authenticator app (it holds the totp-uri):";
pub const QR_END: &str = "(end of the QR code)";

/// Writes a file only its owner can read (it holds a secret), replacing one there.
fn write_secret_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Run one `users` subcommand. Returns the exit code.
pub async fn run(ctx: &Context, command: UsersCommand) -> anyhow::Result<i32> {
    let vault = &ctx.vault;
    match command {
        UsersCommand::Add {
            name,
            roles,
            units,
            qr_svg,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()?;
            let c = accounts::add(vault, "cli", &name, &roles, &units)
                .await
                .map_err(one_line)?;
            eprintln!(
                "account {name} created. The password and the TOTP secret are shown once: hand \
                 them to the person directly. They sign in with the password and a code from an \
                 authenticator app (add the totp-uri or type the totp-secret), then choose their \
                 own password."
            );
            print_credentials(&c, qr_svg.as_deref())?;
            Ok(0)
        }
        UsersCommand::Reset { name, qr_svg } => match accounts::reset(vault, "cli", &name)
            .await
            .map_err(one_line)?
        {
            Some(c) => {
                eprintln!(
                    "account {name} reset: its sessions are ended, the old password and \
                     authenticator no longer work. The new ones are shown once:"
                );
                print_credentials(&c, qr_svg.as_deref())?;
                Ok(0)
            }
            None => {
                eprintln!("error: no account {name}");
                Ok(1)
            }
        },
        UsersCommand::Disable { name } => {
            if accounts::disable(vault, "cli", &name)
                .await
                .map_err(one_line)?
            {
                out(&format!("account {name} disabled; its sessions are ended"));
                Ok(0)
            } else {
                eprintln!("error: no active account {name}");
                Ok(1)
            }
        }
        UsersCommand::Enable { name } => {
            if accounts::enable(vault, "cli", &name)
                .await
                .map_err(one_line)?
            {
                out(&format!("account {name} enabled"));
                Ok(0)
            } else {
                eprintln!("error: no disabled account {name}");
                Ok(1)
            }
        }
        UsersCommand::List => {
            for a in accounts::list(vault).await.map_err(one_line)? {
                let state = if a.disabled_at.is_some() {
                    "disabled".to_owned()
                } else if let Some(t) = &a.locked_until {
                    format!("locked-until={t}")
                } else if a.must_change_password {
                    "active (one-time password not yet changed)".to_owned()
                } else {
                    "active".to_owned()
                };
                // How the account signs in: `local` (password and TOTP) or `oidc`.
                let auth = if a.oidc { accounts::AUTH_OIDC } else { "local" };
                out(&format!(
                    "{} auth={auth} roles={} units={} created={} {state}",
                    a.name,
                    a.roles.join(","),
                    a.units.join(","),
                    a.created_at
                ));
            }
            Ok(0)
        }
    }
}
