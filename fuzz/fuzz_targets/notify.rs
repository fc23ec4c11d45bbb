//! Fuzzes the inputs of the notification mail (`fiktiv_app::notify::mail`): the staff
//! member's stored mail address (`check_address`), the configured link
//! (`[notifications] public_url`) and sender (`[notifications.smtp] from`), and the mail
//! composed from them in each language (`Mailer::compose`), as it goes to the relay.
//!
//! Input: byte 0 picks the language (low bits) and the TLS mode (bit 2); the rest is
//! three lines: the public URL, the sender, the recipient's address. Checks: nothing
//! panics; a configuration error is one line; an accepted address has no whitespace or
//! control character, is at most 254 bytes and prints as it was given; a composed mail's
//! header holds exactly the headers Fiktiv writes, each once (no input can add a header
//! or a recipient); the subject is one line; the address is only in
//! `To`; no header line is longer than the 998 bytes of RFC 5322 2.1.1.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use std::sync::OnceLock;

use fiktiv_app::config::{NotificationsConfig, SmtpConfig, SmtpTls};
use fiktiv_app::notify::mail::{check_address, Mailer};
use fiktiv_app::i18n::Lang;
use libfuzzer_sys::fuzz_target;

/// The headers a composed mail may hold.
const HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "content-type",
    "content-transfer-encoding",
    "date",
    "mime-version",
    "message-id",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    // The SMTP transport is built inside a runtime (it is never connected here).
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choose, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let url = lines.next().unwrap_or_default();
    let from = lines.next().unwrap_or_default();
    let address = lines.next().unwrap_or_default();
    let lang = Lang::ALL[usize::from(choose % 3)];

    // The stored address alone.
    if let Ok(mailbox) = check_address(address) {
        assert!(address.len() <= 254);
        assert!(!address.chars().any(|c| c.is_whitespace() || c.is_control()));
        assert_eq!(
            mailbox.email.to_string(),
            address,
            "an accepted address prints as given"
        );
    }

    let cfg = NotificationsConfig {
        interval_secs: 60,
        public_url: Some(url.to_owned()),
        smtp: Some(SmtpConfig {
            host: "relay.kommun.example".into(),
            port: None,
            tls: if choose & 4 == 0 {
                SmtpTls::Starttls
            } else {
                SmtpTls::Tls
            },
            ca_file: None,
            username: None,
            password_file: None,
            from: from.to_owned(),
            timeout_secs: None,
        }),
    };
    let _guard = runtime().enter();
    let mailer = match Mailer::from_config(&cfg) {
        Ok(Some(m)) => m,
        Ok(None) => panic!("a configured relay gave no mailer"),
        Err(e) => {
            assert!(
                !e.contains('\n') && !e.contains('\r'),
                "a configuration error is one line: {e:?}"
            );
            return;
        }
    };
    let (subject, body) = mailer.text(lang);
    assert!(!subject.contains(['\r', '\n']), "the subject is one line");
    assert!(!body.contains('\r'));
    let Ok(message) = mailer.compose(address, lang) else {
        assert!(
            check_address(address).is_err(),
            "a checked address is always composed"
        );
        return;
    };
    let raw = message.formatted();
    let raw = String::from_utf8(raw).expect("a composed mail is 7-bit or UTF-8 text");
    let (head, _body) = raw
        .split_once("\r\n\r\n")
        .expect("a mail has a header and a body");
    let mut seen: Vec<String> = Vec::new();
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        assert!(
            line.len() <= 998,
            "a header line longer than RFC 5322 allows"
        );
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "a bare line break in the header"
        );
        if line.starts_with(' ') || line.starts_with('\t') {
            unfolded
                .last_mut()
                .expect("a continuation after a header")
                .push_str(line);
            continue;
        }
        let (name, _) = line.split_once(':').expect("every header line has a name");
        let name = name.to_ascii_lowercase();
        assert!(
            HEADERS.contains(&name.as_str()),
            "a header Fiktiv does not write: {name}"
        );
        assert!(!seen.contains(&name), "header {name} twice");
        seen.push(name);
        unfolded.push(line.to_owned());
    }
    for h in ["from", "to", "subject"] {
        assert!(seen.iter().any(|s| s == h), "no {h} header");
    }
    // The recipient is in `To` only; every other header is fixed or from the config.
    if address.len() >= 6 {
        for line in &unfolded {
            let lower = line.to_ascii_lowercase();
            if !lower.starts_with("to:") && !lower.starts_with("from:") {
                assert!(!line.contains(address), "the address outside To: {line:?}");
            }
        }
    }
    let to = unfolded
        .iter()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap();
    if address.is_ascii() {
        assert!(to.contains(address), "To names the recipient");
    }
});
