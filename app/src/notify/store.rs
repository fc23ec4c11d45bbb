//! The notification store as the service's `notify` uses it: the routine's store
//! (`fiktiv_routine::notices`) with the person's language as the web UI's [`Lang`] and
//! the task kinds typed.

use std::collections::BTreeSet;

use fiktiv_vault::Vault;

use crate::i18n::Lang;
use crate::tasks::TaskKind;
use fiktiv_routine::notices::{self as store, PrefsRow};
use fiktiv_routine::{DomainError, DomainResult};

pub use fiktiv_routine::notices::{
    claim_mail, due_mail, mail_done, mark_read, notices, outbox_counts, prune, seen, unread,
    Channel, DueMail, MailOutcome, Notice,
};

/// A person's choice. Without a stored row: in the app only, in Swedish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefs {
    pub channel: Channel,
    pub email: Option<String>,
    pub lang: Lang,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            channel: Channel::InApp,
            email: None,
            lang: Lang::Sv,
        }
    }
}

pub async fn prefs(vault: &Vault, user_id: &str) -> DomainResult<Prefs> {
    let Some(row) = store::prefs(vault, user_id).await? else {
        return Ok(Prefs::default());
    };
    Ok(Prefs {
        channel: row.channel,
        email: row.email,
        lang: Lang::from_code(&row.lang).ok_or_else(|| {
            DomainError::Internal("stored notification choice is malformed".into())
        })?,
    })
}

/// Stores a person's choice, audited (`notify.prefs`, the address is not in the trail).
pub async fn save_prefs(vault: &Vault, actor: &str, user_id: &str, p: &Prefs) -> DomainResult<()> {
    let row = PrefsRow {
        channel: p.channel,
        email: p.email.clone(),
        lang: p.lang.code().to_owned(),
    };
    store::save_prefs(vault, actor, user_id, &row).await
}

/// In one transaction: the person's items are now `current`; a notice per kind with
/// something new; and, when `mail`, one mail in the outbox unless one is waiting
/// already. Returns whether a mail was queued.
pub async fn record(
    vault: &Vault,
    user_id: &str,
    current: &BTreeSet<String>,
    new: &[(TaskKind, usize)],
    mail: bool,
) -> DomainResult<bool> {
    let new: Vec<(&str, usize)> = new.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    store::record(vault, user_id, current, &new, mail).await
}
