//! Who a staff person is to the authorizer: one name rule and one principal, whether
//! the person signs in to the web UI (an account, local or OpenID Connect) or calls the
//! API with a bearer token. Two ways in of the same name are one person, so nobody
//! approves their own reveal request through the other way in.

use fiktiv_policies::{Principal, Role};
use fiktiv_routine::{check_unit_code, FieldProblem};

/// What the name is checked for: the field problem names it in the person's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameOf {
    /// A web UI account (also the name an OpenID Connect sign-in maps to).
    Account,
    /// The holder of an API bearer token.
    TokenHolder,
}

/// A staff person's name: 1..=64 of `A-Z a-z 0-9 . _ @ -` (it becomes the audit actor,
/// `staff:<name>`, so it holds nothing that a log line or a CSV cell could misread).
pub fn check_name(name: &str, of: NameOf) -> Result<(), FieldProblem> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        return Ok(());
    }
    Err(match of {
        NameOf::Account => FieldProblem::new(
            "name",
            "user.name-invalid",
            "An account name is 1 to 64 letters A-Z, digits, '.', '_', '@' or '-' \
             (for example anna.svensson).",
        ),
        NameOf::TokenHolder => FieldProblem::new(
            "name",
            "token.name-invalid",
            "A token holder's name is 1 to 64 letters A-Z, digits, '.', '_', '@' or '-' \
             (for example anna.svensson).",
        ),
    })
}

/// Everything a new account or token is checked for about its person: the name, at
/// least one role, a unit for the school role, and each unit code. The problems, in the
/// words of what is made (`user.*` for an account, `token.*` for a token).
pub fn check(name: &str, of: NameOf, roles: &[Role], units: &[String]) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if let Err(p) = check_name(name, of) {
        problems.push(p);
    }
    if roles.is_empty() {
        problems.push(match of {
            NameOf::Account => FieldProblem::new(
                "role",
                "user.no-role",
                "An account needs at least one --role.",
            ),
            NameOf::TokenHolder => {
                FieldProblem::new("role", "token.no-role", "A token needs at least one role.")
            }
        });
    }
    if roles.contains(&Role::School) && units.is_empty() {
        problems.push(match of {
            NameOf::Account => FieldProblem::new(
                "unit",
                "user.school-needs-unit",
                "A school account needs at least one --unit.",
            ),
            NameOf::TokenHolder => FieldProblem::new(
                "unit",
                "token.school-needs-unit",
                "A school token needs at least one --unit.",
            ),
        });
    }
    for u in units {
        check_unit_code("unit", u, &mut problems);
    }
    problems
}

/// `staff:<name>`: the principal's id, also the audit actor.
pub fn principal_id(name: &str) -> String {
    format!("staff:{name}")
}

/// The principal of a staff person with these roles and units.
pub fn principal(name: &str, roles: Vec<Role>, units: Vec<String>) -> Principal {
    Principal::new(principal_id(name), roles, units)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_rule_for_accounts_and_token_holders() {
        for of in [NameOf::Account, NameOf::TokenHolder] {
            assert!(check_name("anna.svensson", of).is_ok());
            assert!(check_name("a@b-c_d.e", of).is_ok());
            assert!(check_name(&"a".repeat(64), of).is_ok());
            for bad in ["", "anna svensson", "anna;drop", "åsa", &"a".repeat(65)] {
                assert!(check_name(bad, of).is_err(), "{bad:?}");
            }
        }
        assert_eq!(principal_id("anna"), "staff:anna");
    }

    #[test]
    fn roles_and_units_are_checked_in_the_words_of_what_is_made() {
        let codes = |of, roles: &[Role], units: &[&str]| -> Vec<String> {
            let units: Vec<String> = units.iter().map(|u| u.to_string()).collect();
            check("anna", of, roles, &units)
                .into_iter()
                .map(|p| p.code)
                .collect()
        };
        assert!(codes(NameOf::Account, &[Role::Auditor], &[]).is_empty());
        assert_eq!(codes(NameOf::Account, &[], &[]), ["user.no-role"]);
        assert_eq!(codes(NameOf::TokenHolder, &[], &[]), ["token.no-role"]);
        assert_eq!(
            codes(NameOf::TokenHolder, &[Role::School], &[]),
            ["token.school-needs-unit"]
        );
        assert_eq!(
            codes(NameOf::Account, &[Role::School], &["bad unit"]),
            ["unit.invalid"]
        );
    }
}
