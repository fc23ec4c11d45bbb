//! `fiktiv notify run|test`: a notification round now, or a test mail through the relay.
//! What is new and who is told is decided in `fiktiv_app::notify`.

/// `fiktiv notify run|test`.
pub async fn cli(
    data_dir: &std::path::Path,
    config: fiktiv_app::config::Config,
    clock: fiktiv_vault::SharedClock,
    command: crate::cli::NotifyCommand,
) -> anyhow::Result<i32> {
    use crate::cli::NotifyCommand;
    match command {
        NotifyCommand::Test { to, lang } => {
            let lang = fiktiv_app::i18n::Lang::from_code(&lang)
                .ok_or_else(|| anyhow::anyhow!("--lang must be sv, nb or en"))?;
            let Some(mailer) = fiktiv_app::notify::mail::Mailer::from_config(&config.notifications)
                .map_err(|e| anyhow::anyhow!(e))?
            else {
                anyhow::bail!("[notifications.smtp] is not configured: there is no relay to test");
            };
            match mailer.send(&to, lang).await {
                Ok(()) => {
                    crate::commands::println_out("notify: test mail sent");
                    Ok(0)
                }
                Err(e) => anyhow::bail!("notify: test mail not sent: {e}"),
            }
        }
        NotifyCommand::Run => {
            let ctx = crate::commands_keys::open_cli(data_dir, config, clock).await?;
            let r = fiktiv_app::notify::round(&ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::commands::println_out(&format!(
                "notify: {} people told ({} notices); mail: {} queued, {} sent, {} to retry, {} given up",
                r.people, r.notices, r.mails_queued, r.mails_sent, r.mails_retried, r.mails_given_up
            ));
            Ok(0)
        }
    }
}
