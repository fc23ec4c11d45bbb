//! Helpers of the browser tests of the routine's pages (on top of `web_common`, the
//! foundation's harness): the provisioning configuration and the LDAP target, a tour
//! that runs axe-core on every page and records every title and URL, and small
//! browser actions that `web_common` does not have.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::web::{text, Browser, Server};

/// Appended after the `[web]` table of the test server's configuration: the worker
/// polls often and retries soon; no scheduled reconciliation.
pub const PROVISIONING_CONFIG: &str = "\n[provisioning]\npoll_interval_ms = 200\n\
     backoff_base_secs = 1\nbackoff_max_secs = 4\nreconcile_interval_secs = 0\n";

/// A valid Swedish personnummer (12 digits) for the date and serial, computed here
/// (Luhn over the last ten digits).
pub fn se_personnummer(y: i32, m: u32, d: u32, serial: u16) -> String {
    let nine = format!("{:02}{m:02}{d:02}{serial:03}", y % 100);
    let sum: u32 = nine
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            let v = u32::from(c - b'0') * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!("{y:04}{m:02}{d:02}{serial:03}{check}")
}

#[test]
fn luhn_by_hand() {
    // Skatteverket's documented example: 811218-9876.
    assert_eq!(se_personnummer(1981, 12, 18, 987), "198112189876");
}

/// A `number_ranges.toml` in `dir`: the default policy with its Swedish check-digit rule
/// replaced by `rule`. Returns its path.
pub fn number_ranges_with(dir: &std::path::Path, rule: &str) -> std::path::PathBuf {
    const DEFAULT_RULE: &str = "check_digit = \"must-fail-luhn\"";
    let default = fiktiv_policies::number_ranges::DEFAULT_POLICY_TOML;
    assert_eq!(default.matches(DEFAULT_RULE).count(), 1, "{default}");
    let path = dir.join(format!("number_ranges-{rule}.toml"));
    let policy = default.replace(DEFAULT_RULE, &format!("check_digit = \"{rule}\""));
    std::fs::write(&path, policy).unwrap();
    path
}

/// An API token with `role` (in `unit`, when given), made through the real CLI.
pub fn cli_token(server: &Server, name: &str, role: &str, unit: Option<&str>) -> String {
    let mut args = vec!["tokens", "create", "--role", role, "--name", name];
    if let Some(unit) = unit {
        args.extend(["--unit", unit]);
    }
    let out = server.cli(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// An API token of a central administrator (through the real CLI).
pub fn central_token(server: &Server, name: &str) -> String {
    cli_token(server, name, "central-admin", None)
}

/// Opens a case for a Swedish pupil in `unit` through the API, with a school token made
/// by the real CLI (no browser). Returns the case id.
pub fn open_case_by_api(
    server: &Server,
    unit: &str,
    number: &str,
    first: &str,
    last: &str,
    birth: &str,
) -> String {
    let auth = format!(
        "Bearer {}",
        cli_token(server, "school.api", "school", Some(unit))
    );
    let body = json!({"country": "se", "personal_number": number,
        "first_name": first, "last_name": last, "birth_date": birth})
    .to_string();
    let r = server.request(
        "POST",
        &format!("/api/v1/units/{unit}/cases"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    v["case_id"].as_str().unwrap().to_owned()
}

/// Adds the slapd as target `ldap` through the API (the embedded roster target stays:
/// the configuration file names no target).
pub fn add_ldap_target(server: &Server, slapd: &fiktiv_tests::Slapd) {
    let token = central_token(server, "setup.ops");
    let body = json!({
        "kind": "ldap",
        "name": "ldap",
        "url": slapd.url(),
        "security": "plain",
        "bind_dn": slapd.admin_dn(),
        "bind_password": slapd.admin_password(),
        "people_base": slapd.people_dn(),
        "groups_base": slapd.groups_dn(),
        "mail": "{given}.{family}.{short_id}@skola.example",
        // The platforms the tours order: the directory stands for them, so that the
        // account check can be all-clear (an ordered platform with no target is not).
        "platforms": ["Google Workspace", "Unikum"],
        "timeout_secs": 10
    })
    .to_string();
    let auth = format!("Bearer {token}");
    let r = server.request(
        "PUT",
        "/api/v1/targets/ldap",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Adds a target `ldap` that cannot be reached (nothing listens on `port`).
pub fn add_dead_ldap_target(server: &Server, port: u16) {
    let token = central_token(server, "setup.ops");
    let body = json!({
        "kind": "ldap",
        "name": "ldap",
        "url": format!("ldap://127.0.0.1:{port}"),
        "security": "plain",
        "bind_dn": "cn=admin,dc=example,dc=org",
        "bind_password": "not used",
        "people_base": "ou=people,dc=example,dc=org",
        "groups_base": "ou=groups,dc=example,dc=org",
        "timeout_secs": 2
    })
    .to_string();
    let auth = format!("Bearer {token}");
    let r = server.request(
        "PUT",
        "/api/v1/targets/ldap",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Make the page's live region poll again with the page's own script (as it does
/// while a run is running), and wait until the script has refreshed it from the
/// server: the script works under the Content-Security-Policy.
pub fn assert_polling_works(b: &Browser, region: &str) {
    b.execute(
        "const r = document.getElementById(arguments[0]); r.setAttribute('data-poll', ''); \
         r.removeAttribute('data-done'); \
         const s = document.createElement('script'); s.src = '/static/fiktiv.js'; \
         document.head.appendChild(s);",
        json!([region]),
    );
    wait_for(b, &format!("#{region}[data-done]:not([data-poll])"), 20);
}

/// LDIF as text: values that ldapsearch wrote base64-encoded (`attr:: …`, for
/// anything not plain ASCII, such as Å or ø) decoded, continuation lines joined.
pub fn ldif_text(ldif: &str) -> String {
    use base64::Engine as _;
    let mut joined: Vec<String> = Vec::new();
    for line in ldif.lines() {
        match (line.strip_prefix(' '), joined.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => joined.push(line.to_owned()),
        }
    }
    joined
        .into_iter()
        .map(|l| match l.split_once(":: ") {
            Some((attr, b64)) => {
                let v = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                format!("{attr}: {v}")
            }
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn ldif_values_are_decoded() {
    let t = ldif_text("dn: uid=x\ngivenName:: w4VzYQ==\nsn: Berg\ndescription: a\n b\n");
    assert!(
        t.contains("givenName: Åsa") && t.contains("sn: Berg") && t.contains("description: ab")
    );
}

/// The path and query of a URL.
pub fn path_of(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_owned()))
        .unwrap_or_default()
}

/// Click a radio button or checkbox (no page load follows).
pub fn click_choice(b: &Browser, css: &str) {
    let v = b.execute(
        "const e = document.querySelector(arguments[0]); if (!e) { return false; } \
         e.click(); return e.checked;",
        json!([css]),
    );
    assert_eq!(v, json!(true), "{css}");
}

/// Wait until `css` is on the page (the page's own script updates it).
pub fn wait_for(b: &Browser, css: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !b.exists(css) {
        assert!(
            Instant::now() < deadline,
            "{css} did not appear; page: {}",
            b.source()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reload `path` until `done` holds.
pub fn wait_until(b: &Browser, server: &Server, path: &str, done: impl Fn(&Browser) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        b.goto(&format!("{}{path}", server.base()));
        if done(b) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there: {}",
            b.source()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Post a form with the page's CSRF token to `action`, as a form on the page would
/// (to try what the page no longer offers).
pub fn post_from_page(b: &Browser, action: &str) {
    b.execute(
        "const f = document.createElement('form'); f.method = 'post'; \
         f.action = arguments[0]; \
         const t = document.createElement('input'); t.type = 'hidden'; t.name = 'csrf'; \
         t.value = document.querySelector('input[name=csrf]').value; f.appendChild(t); \
         const s = document.createElement('button'); s.type = 'submit'; s.id = 'injected-submit'; \
         f.appendChild(s); document.body.appendChild(f);",
        json!([action]),
    );
    b.click("#injected-submit");
}

/// Every page of a test: axe-core runs on it (no serious or critical violation), and
/// its title and URL are recorded to check that no real identity was ever in one.
pub struct Tour {
    real: Vec<String>,
    seen: Vec<(String, String, String)>,
}

impl Tour {
    /// `real`: the values of the real identity that must never be in a title or URL.
    pub fn new(real: Vec<String>) -> Self {
        Self {
            real,
            seen: Vec::new(),
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::start()
    }

    pub fn page(&mut self, b: &Browser, what: &str) {
        self.seen.push((what.to_owned(), b.title(), b.url()));
        b.assert_accessible(what);
    }

    pub fn pages(&self) -> usize {
        self.seen.len()
    }

    pub fn assert_no_real_identity(&self) {
        for (what, title, url) in &self.seen {
            let url = url.to_lowercase();
            for r in &self.real {
                assert!(
                    !title.contains(r.as_str()),
                    "{what}: the title holds a real value"
                );
                assert!(
                    !url.contains(&r.to_lowercase()),
                    "{what}: the URL holds a real value"
                );
            }
        }
    }
}

/// A printed document read back: its text (`pdftotext`) and its first page as a PNG
/// (`pdftoppm`), from Debian's poppler-utils (`scripts/install-deps`). Fails, never
/// skips, when they are missing.
pub struct Printed {
    pub text: String,
    pub png: Vec<u8>,
}

pub fn pdf_text_and_png(pdf: &[u8]) -> Printed {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("printed.pdf");
    std::fs::write(&file, pdf).unwrap();
    let run = |program: &str, args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{program} (Debian package poppler-utils) cannot run: {e}; run scripts/install-deps")
            });
        assert!(out.status.success(), "{program}: {}", text(&out.stderr));
        out.stdout
    };
    let txt = run(
        "pdftotext",
        &[
            std::ffi::OsStr::new("-layout"),
            file.as_os_str(),
            std::ffi::OsStr::new("-"),
        ],
    );
    let base = dir.path().join("page");
    run(
        "pdftoppm",
        &[
            std::ffi::OsStr::new("-png"),
            std::ffi::OsStr::new("-r"),
            std::ffi::OsStr::new("80"),
            std::ffi::OsStr::new("-singlefile"),
            file.as_os_str(),
            base.as_os_str(),
        ],
    );
    Printed {
        text: String::from_utf8_lossy(&txt).into_owned(),
        png: std::fs::read(dir.path().join("page.png")).unwrap(),
    }
}
