//! Attribute templates such as `{given}.{family}.{short_id}@skola.example`.
//!
//! Placeholders: `{given}`, `{family}`, `{short_id}` (first 8 hex digits of the person
//! id), `{id}` (the whole person id), `{unit}` (the school unit id). In
//! [`Fold::Ascii`] mode (uid, mail, userName) names are folded like blind-index
//! normalisation ("Åsa-Britt" → "asabritt") and only ASCII letters and digits are kept;
//! in [`Fold::None`] mode (cn, displayName) they are used as written.

use fiktiv_vault::normalize::normalize_name;
use serde::{Deserialize, Serialize};

use crate::model::FictitiousPerson;

/// A template was malformed or gave an unusable value. Fixed text only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template has an unknown placeholder or an unbalanced brace")]
    Malformed,
    #[error("a name folds to nothing in ASCII; the template cannot be used for this person")]
    EmptyAfterFolding,
}

/// How placeholder values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fold {
    /// Folded to lowercase ASCII letters and digits.
    Ascii,
    /// As written.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Given,
    Family,
    ShortId,
    Id,
    Unit,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    text: String,
    #[serde(skip)]
    parts: Vec<Part>,
}

impl TryFrom<String> for Template {
    type Error = TemplateError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Template::parse(&s)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.text
    }
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (lit, after) = rest.split_at(open);
            if lit.contains('}') {
                return Err(TemplateError::Malformed);
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(lit.to_string()));
            }
            let close = after.find('}').ok_or(TemplateError::Malformed)?;
            let name = after.get(1..close).ok_or(TemplateError::Malformed)?;
            parts.push(match name {
                "given" => Part::Given,
                "family" => Part::Family,
                "short_id" => Part::ShortId,
                "id" => Part::Id,
                "unit" => Part::Unit,
                _ => return Err(TemplateError::Malformed),
            });
            rest = after.get(close + 1..).unwrap_or("");
        }
        if rest.contains('}') {
            return Err(TemplateError::Malformed);
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self {
            text: text.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn render(&self, p: &FictitiousPerson, fold: Fold) -> Result<String, TemplateError> {
        let name = |s: &str| -> Result<String, TemplateError> {
            match fold {
                Fold::None => Ok(s.to_string()),
                Fold::Ascii => {
                    let f: String = normalize_name(s)
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect();
                    if f.is_empty() {
                        Err(TemplateError::EmptyAfterFolding)
                    } else {
                        Ok(f)
                    }
                }
            }
        };
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Given => out.push_str(&name(&p.given_name)?),
                Part::Family => out.push_str(&name(&p.family_name)?),
                Part::ShortId => out.push_str(&p.id.short()),
                Part::Id => out.push_str(&p.id.to_string()),
                Part::Unit => out.push_str(p.school_unit.id.as_str()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::model::{PersonId, PersonKind, SchoolUnit};
    use chrono::NaiveDate;

    #[test]
    fn renders_and_folds() {
        let p = FictitiousPerson::new(
            PersonId::new(),
            PersonKind::Student,
            "Åsa-Britt",
            "Øberg",
            NaiveDate::from_ymd_opt(2015, 1, 2).unwrap(),
            SchoolUnit::new("s1", "Skola").unwrap(),
        )
        .unwrap();
        let t = Template::parse("{given}.{family}.{short_id}@skola.example").unwrap();
        assert_eq!(
            t.render(&p, Fold::Ascii).unwrap(),
            format!("asabritt.oberg.{}@skola.example", p.id.short())
        );
        let cn = Template::parse("{given} {family}").unwrap();
        assert_eq!(cn.render(&p, Fold::None).unwrap(), "Åsa-Britt Øberg");
        assert_eq!(Template::parse("{nope}"), Err(TemplateError::Malformed));
        assert_eq!(Template::parse("a}b"), Err(TemplateError::Malformed));
        assert_eq!(Template::parse("{given"), Err(TemplateError::Malformed));
        let mut q = p.clone();
        q.given_name = "李".into();
        assert_eq!(
            t.render(&q, Fold::Ascii),
            Err(TemplateError::EmptyAfterFolding)
        );
    }
}
