//! Reading the workspace's product source, for the tests that check that every code
//! Fiktiv writes into a stored record (audit actions and purposes, target test
//! details) has a message in every language. Every member crate of the workspace is
//! read (the list comes from the workspace manifest, so a new crate is read too),
//! without comments and without `#[cfg(test)]` items.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// A token of Rust source, as far as these checks need one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Ident(String),
    /// A string literal's text (escapes `\"` and `\\` undone; raw strings as written).
    Str(String),
    Punct(char),
}

impl Tok {
    pub fn is(&self, c: char) -> bool {
        *self == Tok::Punct(c)
    }

    pub fn ident(&self) -> Option<&str> {
        match self {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }

    pub fn str(&self) -> Option<&str> {
        match self {
            Tok::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One source file of a crate: its path and its tokens, test items left out.
pub struct SourceFile {
    pub path: PathBuf,
    pub toks: Vec<Tok>,
}

/// The `src` folder of every member crate of the workspace.
pub fn crate_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .unwrap();
    let members: Vec<&str> = line
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, m)| m)
        .collect();
    assert!(members.len() >= 11, "{members:?}");
    members
        .iter()
        .map(|m| root.join(m).join("src"))
        .filter(|p| p.is_dir())
        .collect()
}

/// Every `.rs` file under the `src` of every member crate, tokenized, with every
/// `#[cfg(test)]` item removed.
pub fn product_sources() -> Vec<SourceFile> {
    let mut out = Vec::new();
    for src in crate_sources() {
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let toks = without_tests(tokenize(&text));
                    out.push(SourceFile { path: p, toks });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Rust source as tokens: comments dropped; string, raw string and byte string
/// literals as [`Tok::Str`]; char literals dropped; lifetimes as `'` and a name.
pub fn tokenize(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |j: usize| c.get(j).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let mut s = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && at(i + 1) == '\n' {
                    // A line continuation: the break and the next line's indent go.
                    i += 2;
                    while i < c.len() && c[i].is_whitespace() {
                        i += 1;
                    }
                } else if c[i] == '\\' {
                    s.push(at(i + 1));
                    i += 2;
                } else {
                    s.push(c[i]);
                    i += 1;
                }
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if (ch == 'r' || (ch == 'b' && at(i + 1) == 'r'))
            && matches!(at(i + 1 + usize::from(ch == 'b')), '"' | '#')
            && {
                let mut j = i + 1 + usize::from(ch == 'b');
                while at(j) == '#' {
                    j += 1;
                }
                at(j) == '"'
            }
        {
            // A raw string: r"…", r#"…"#, br"…".
            let mut j = i + 1 + usize::from(ch == 'b');
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            let start = j;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    break;
                }
                j += 1;
            }
            out.push(Tok::Str(c[start..j.min(c.len())].iter().collect()));
            i = j + 1 + hashes;
        } else if ch == 'b' && at(i + 1) == '"' {
            // A byte string: as a string.
            i += 1;
        } else if ch == 'b' && at(i + 1) == '\'' {
            i += 1;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: '\n', '\'', '\u{..}'.
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                out.push(Tok::Punct('\''));
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// The tokens without `#[cfg(test)]` items (a module, a function, a `use`).
fn without_tests(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let is_cfg_test = toks[i].is('#')
            && toks.get(i + 1).is_some_and(|t| t.is('['))
            && toks.get(i + 2).and_then(Tok::ident) == Some("cfg")
            && toks.get(i + 3).is_some_and(|t| t.is('('))
            && toks.get(i + 4).and_then(Tok::ident) == Some("test")
            && toks.get(i + 5).is_some_and(|t| t.is(')'))
            && toks.get(i + 6).is_some_and(|t| t.is(']'));
        if !is_cfg_test {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        // Skip the item: up to a `;` before any `{`, or the `{…}` block.
        let mut j = i + 7;
        while j < toks.len() && !toks[j].is(';') && !toks[j].is('{') {
            j += 1;
        }
        i = if toks.get(j).is_some_and(|t| t.is('{')) {
            group_end(&toks, j) + 1
        } else {
            j + 1
        };
    }
    out
}

/// The index of the token closing the group opened at `open` (`(`, `[` or `{`).
pub fn group_end(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open) {
        if t.is('(') || t.is('[') || t.is('{') {
            depth += 1;
        } else if t.is(')') || t.is(']') || t.is('}') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return j;
            }
        }
    }
    toks.len().saturating_sub(1)
}

/// The tokens of the expression starting at `from`: up to a `,`, `;` or closing
/// bracket at its own depth.
pub fn expression(toks: &[Tok], from: usize) -> &[Tok] {
    let mut depth = 0usize;
    let mut j = from;
    while j < toks.len() {
        let t = &toks[j];
        if t.is('(') || t.is('[') || t.is('{') {
            depth += 1;
        } else if t.is(')') || t.is(']') || t.is('}') {
            if depth == 0 {
                break;
            }
            depth -= 1;
        } else if (t.is(',') || t.is(';')) && depth == 0 {
            break;
        }
        j += 1;
    }
    &toks[from..j]
}

/// The names of the functions (across all `files`) that take a parameter named
/// `param` of type `&str` or `Option<&str>`: the ones that write `param` somewhere.
pub fn functions_taking(files: &[SourceFile], param: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let t = &f.toks;
        for i in 0..t.len() {
            if t[i].ident() != Some("fn") {
                continue;
            }
            let Some(name) = t.get(i + 1).and_then(Tok::ident) else {
                continue;
            };
            let Some(open) = (i + 2..t.len()).find(|&j| t[j].is('(')) else {
                continue;
            };
            let close = group_end(t, open);
            let params = &t[open..=close];
            let takes = params.windows(2).enumerate().any(|(k, w)| {
                w[0].ident() == Some(param)
                    && w[1].is(':')
                    && !params.get(k.wrapping_sub(1)).is_some_and(|p| p.is(':'))
                    && params[k + 2..]
                        .iter()
                        .take_while(|x| !x.is(',') && !x.is(')'))
                        .any(|x| x.ident() == Some("str"))
            });
            if takes {
                out.push(name.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The `const NAME: &str = "…"` of one file.
pub fn str_consts(toks: &[Tok]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.ident() != Some("const") {
            continue;
        }
        let (Some(name), Some(eq)) = (
            toks.get(i + 1).and_then(Tok::ident),
            (i + 2..toks.len().min(i + 8)).find(|&j| toks[j].is('=')),
        ) else {
            continue;
        };
        let is_str = toks[i + 2..eq].iter().any(|x| x.ident() == Some("str"));
        if let (true, Some(v)) = (is_str, toks.get(eq + 1).and_then(Tok::str)) {
            out.push((name.to_owned(), v.to_owned()));
        }
    }
    out
}

/// The arguments of every call of one of `names` (`name(…)`, `x.name(…)`,
/// `path::name(…)`; not the definition `fn name(`).
pub fn call_args<'a>(toks: &'a [Tok], names: &[String]) -> Vec<&'a [Tok]> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        let Some(n) = toks[i].ident() else { continue };
        if !names.iter().any(|x| x == n)
            || !toks.get(i + 1).is_some_and(|t| t.is('('))
            || (i > 0 && toks[i - 1].ident() == Some("fn"))
        {
            continue;
        }
        let close = group_end(toks, i + 1);
        out.push(&toks[i + 2..close]);
    }
    out
}

/// The values given to a field or argument named `field` in a struct literal
/// (`field: <expression>`; not a type annotation `field: &str`).
pub fn field_values<'a>(toks: &'a [Tok], field: &str) -> Vec<&'a [Tok]> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks[i].ident() == Some(field)
            && toks.get(i + 1).is_some_and(|t| t.is(':'))
            && !toks.get(i + 2).is_some_and(|t| t.is(':'))
            && !(i > 0 && toks[i - 1].is(':'))
        {
            out.push(expression(toks, i + 2));
        }
    }
    out
}

/// The bodies of the methods `fn <name>(&self) -> &'static str` whose name contains
/// `part` (a code computed by a method, as `RunScope::audit_action`).
pub fn str_method_bodies<'a>(toks: &'a [Tok], part: &str) -> Vec<&'a [Tok]> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks[i].ident() != Some("fn") {
            continue;
        }
        let Some(name) = toks.get(i + 1).and_then(Tok::ident) else {
            continue;
        };
        if !name.contains(part) {
            continue;
        }
        let Some(open) = (i + 2..toks.len()).find(|&j| toks[j].is('{') || toks[j].is(';')) else {
            continue;
        };
        let sig = &toks[i + 2..open];
        let static_str = sig.iter().any(|t| t.ident() == Some("static"))
            && sig.last().and_then(Tok::ident) == Some("str");
        if static_str && toks[open].is('{') {
            out.push(&toks[open..=group_end(toks, open)]);
        }
    }
    out
}

/// The names bound to closures with a parameter `param` (`let f = |a, param| …`).
pub fn closures_taking(toks: &[Tok], param: &str) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks[i].ident() != Some("let")
            || !toks.get(i + 3).is_some_and(|t| t.is('|'))
            || !toks.get(i + 2).is_some_and(|t| t.is('='))
        {
            continue;
        }
        let Some(name) = toks.get(i + 1).and_then(Tok::ident) else {
            continue;
        };
        let params = toks[i + 4..].iter().take_while(|t| !t.is('|'));
        if params.clone().any(|t| t.ident() == Some(param)) {
            out.push(name.to_owned());
        }
    }
    out
}

/// The string literals among `toks`, and the values of the constants `toks` names.
pub fn literals(toks: &[Tok], consts: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Str(s) => out.push(s.clone()),
            Tok::Ident(n) => {
                if let Some((_, v)) = consts.iter().find(|(c, _)| c == n) {
                    out.push(v.clone());
                }
            }
            Tok::Punct(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokenizer_keeps_strings_and_drops_comments_chars_and_tests() {
        let src = r##"
            // a "comment" with don't
            fn f<'a>(action: &'a str) -> char { let c = '"'; let d = '\''; "x.y" }
            /* "block" */
            const A: &str = "a.b";
            fn g() { call(r#"raw "q""#, A, br"z") }
            #[cfg(test)]
            mod tests { fn h() { call("t.t") } }
            #[cfg(test)]
            use x::y;
            fn k() {}
        "##;
        let toks = without_tests(tokenize(src));
        let strs: Vec<&str> = toks.iter().filter_map(Tok::str).collect();
        assert_eq!(strs, ["x.y", "a.b", "raw \"q\"", "z"]);
        assert!(toks.iter().any(|t| t.ident() == Some("k")));
        assert!(!toks.iter().any(|t| t.ident() == Some("h")));
        let args = call_args(&toks, &["call".to_owned()]);
        assert_eq!(args.len(), 1);
        assert_eq!(
            literals(args[0], &str_consts(&toks)),
            ["raw \"q\"", "a.b", "z"]
        );
        let files = [SourceFile {
            path: PathBuf::new(),
            toks,
        }];
        assert_eq!(functions_taking(&files, "action"), ["f"]);
    }
}
