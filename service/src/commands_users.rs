//! `fiktiv users add|disable|enable|reset|list`: staff accounts of the web UI.
//!
//! `users add` works on an empty system: it is how the first central administrator is
//! created (first-run setup; see docs/WEB.md). The one-time password and the TOTP
//! secret are printed once, on stdout, and stored only as an Argon2id hash and a
//! sealed value. Every change is audited with the actor `cli`.

use fiktiv_policies::Role;

use crate::cli::UsersCommand;
use crate::context::Context;
use crate::domain::DomainError;
use crate::web::accounts::{self, Credentials};

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

fn print_credentials(c: &Credentials) {
    out(&format!("name: {}", c.name));
    out(&format!("one-time-password: {}", c.password.as_str()));
    out(&format!("totp-secret: {}", c.totp_secret.as_str()));
    out(&format!("totp-uri: {}", c.otpauth_uri.as_str()));
}

/// Run one `users` subcommand. Returns the exit code.
pub async fn run(ctx: &Context, command: UsersCommand) -> anyhow::Result<i32> {
    let vault = &ctx.vault;
    match command {
        UsersCommand::Add { name, roles, units } => {
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
            print_credentials(&c);
            Ok(0)
        }
        UsersCommand::Reset { name } => match accounts::reset(vault, "cli", &name)
            .await
            .map_err(one_line)?
        {
            Some(c) => {
                eprintln!(
                    "account {name} reset: its sessions are ended, the old password and \
                     authenticator no longer work. The new ones are shown once:"
                );
                print_credentials(&c);
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
