//! Languages and message files. Swedish is the default; Norwegian bokmål and English
//! are offered. Every user-facing string of the UI is in `app/i18n/{sv,nb,en}.toml`
//! (compiled in, parsed at startup); templates only name keys. A test keeps the three
//! files' keys equal and the templates free of literal text.

use std::collections::HashMap;
use std::sync::Arc;

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Sv,
    Nb,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Sv, Lang::Nb, Lang::En];

    /// BCP 47 code, also the `lang` attribute and the cookie value.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::Nb => "nb",
            Lang::En => "en",
        }
    }

    pub fn from_code(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s)
    }

    /// A language tag from Accept-Language: `sv-SE`, `nb`, `no`, `nn`, `en-GB`, ...
    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag
            .split('-')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "sv" => Some(Lang::Sv),
            "nb" | "no" | "nn" => Some(Lang::Nb),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The cookie's choice, else the best Accept-Language match, else Swedish.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::from_code) {
            return l;
        }
        let mut best: Option<(Lang, f32)> = None;
        for item in accept_language.unwrap_or_default().split(',').take(20) {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Lang::from_tag(tag) {
                if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
                    best = Some((l, q));
                }
            }
        }
        best.map(|(l, _)| l).unwrap_or(Lang::Sv)
    }
}

/// The message files as compiled in: (language, file text).
pub const FILES: [(Lang, &str); 3] = [
    (Lang::Sv, include_str!("../i18n/sv.toml")),
    (Lang::Nb, include_str!("../i18n/nb.toml")),
    (Lang::En, include_str!("../i18n/en.toml")),
];

/// One language's messages, flattened to dotted keys (`signin.title`).
pub type Messages = HashMap<String, String>;

/// Parse one message file: tables of strings, flattened to dotted keys.
pub fn parse(text: &str) -> Result<Messages, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Messages::new();
    flatten("", &table, &mut out)?;
    Ok(out)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Messages) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(format!("{key}: only strings and tables are allowed")),
        }
    }
    Ok(())
}

/// All languages' messages.
#[derive(Debug, Default)]
pub struct Catalog {
    by_lang: HashMap<Lang, Messages>,
}

impl Catalog {
    /// Parse the compiled-in files. A broken file is an error naming it.
    pub fn load() -> Result<Self, String> {
        let mut by_lang = HashMap::new();
        for (lang, text) in FILES {
            let m = parse(text).map_err(|e| format!("i18n/{}.toml: {e}", lang.code()))?;
            by_lang.insert(lang, m);
        }
        Ok(Self { by_lang })
    }

    /// The compiled-in files, parsed once per process: the web UI, notification mail
    /// (every round) and the sealed service's pages share them.
    pub fn shared() -> Result<Arc<Self>, String> {
        static SHARED: std::sync::OnceLock<Result<Arc<Catalog>, String>> =
            std::sync::OnceLock::new();
        SHARED.get_or_init(|| Self::load().map(Arc::new)).clone()
    }

    /// The translator of one language.
    pub fn tr(self: &Arc<Self>, lang: Lang) -> Tr {
        Tr {
            lang,
            catalog: self.clone(),
        }
    }
}

/// Messages of one language, as the templates use them: `{{ t.t("signin.title") }}`.
#[derive(Debug, Clone)]
pub struct Tr {
    pub lang: Lang,
    catalog: Arc<Catalog>,
}

impl Tr {
    /// The message, if there is one (no warning when there is not).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.catalog
            .by_lang
            .get(&self.lang)
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }

    /// The message, or the key itself when missing (logged; a test prevents it).
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        match self
            .catalog
            .by_lang
            .get(&self.lang)
            .and_then(|m| m.get(key))
        {
            Some(s) => s.as_str(),
            None => {
                tracing::warn!(key, lang = self.lang.code(), "missing UI message");
                key
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(Lang::negotiate(None, None), Lang::Sv);
        assert_eq!(Lang::negotiate(Some("en"), Some("nb")), Lang::En);
        assert_eq!(
            Lang::negotiate(Some("xx"), Some("nb-NO,en;q=0.5")),
            Lang::Nb
        );
        assert_eq!(
            Lang::negotiate(None, Some("de, en-GB;q=0.8, sv;q=0.9")),
            Lang::Sv
        );
        assert_eq!(Lang::negotiate(None, Some("no")), Lang::Nb);
        assert_eq!(Lang::negotiate(None, Some("de,fr")), Lang::Sv);
        assert_eq!(Lang::negotiate(None, Some("en;q=0")), Lang::Sv);
    }

    #[test]
    fn the_shared_catalog_is_parsed_once() {
        let a = Catalog::shared().unwrap();
        let b = Catalog::shared().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.tr(Lang::Nb).t("app.name"), "Fiktiv");
    }

    #[test]
    fn catalog_loads_and_translates() {
        let c = Arc::new(Catalog::load().unwrap());
        assert_eq!(c.tr(Lang::Sv).t("app.name"), "Fiktiv");
        assert_eq!(c.tr(Lang::En).t("no.such.key"), "no.such.key");
    }
}
