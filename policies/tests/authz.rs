// Tests may unwrap and panic: a failure here is a failed test, not an outage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The authorization matrix: every action, every role, own and other unit,
//! own and other requester, with the exact expected answer written down.

use std::collections::{BTreeSet, HashMap};

use fiktiv_policies::{Action, Authorizer, PolicyLoadError, Principal, Resource, Role};

const ME: &str = "staff-1";
const SOMEONE_ELSE: &str = "staff-2";
const OWN: &str = "unit-a";
const OTHER: &str = "unit-b";

/// The resource shape an action is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Shape {
    /// Municipality: no unit, so "own" and "other" are the same request.
    M,
    /// Unit(code).
    U,
    /// Case { unit }.
    C,
    /// RevealRequest { unit, requested_by }.
    R,
    /// CaseRequest { unit, requested_by }.
    Q,
}

const SHAPES: [Shape; 5] = [Shape::M, Shape::U, Shape::C, Shape::R, Shape::Q];

/// The cases a shape is tested in, with their labels (the order of the
/// expectation strings below).
fn cases(shape: Shape) -> Vec<(&'static str, Resource)> {
    let case = |unit: &str| Resource::Case { unit: unit.into() };
    let rr = |unit: &str, by: &str| Resource::RevealRequest {
        unit: unit.into(),
        requested_by: by.into(),
    };
    let cr = |unit: &str, by: &str| Resource::CaseRequest {
        unit: unit.into(),
        requested_by: by.into(),
    };
    match shape {
        Shape::M => vec![("municipality", Resource::Municipality)],
        Shape::U => vec![
            ("own unit", Resource::Unit(OWN.into())),
            ("other unit", Resource::Unit(OTHER.into())),
        ],
        Shape::C => vec![("own unit", case(OWN)), ("other unit", case(OTHER))],
        Shape::R => vec![
            ("own unit, own request", rr(OWN, ME)),
            ("own unit, someone else's request", rr(OWN, SOMEONE_ELSE)),
            ("other unit, own request", rr(OTHER, ME)),
            (
                "other unit, someone else's request",
                rr(OTHER, SOMEONE_ELSE),
            ),
        ],
        Shape::Q => vec![
            ("own unit, own request", cr(OWN, ME)),
            ("own unit, someone else's request", cr(OWN, SOMEONE_ELSE)),
            ("other unit, own request", cr(OTHER, ME)),
            (
                "other unit, someone else's request",
                cr(OTHER, SOMEONE_ELSE),
            ),
        ],
    }
}

/// The expectation table. One row per (action, resource shape) that the
/// action applies to. Columns: central-admin, school, approver, auditor.
/// Each string has one letter per case of the shape (see `cases`):
/// `Y` = allowed, `.` = denied.
///   M: [municipality]
///   U, C: [own unit, other unit]
///   R, Q: [own unit+own request, own unit+other's request,
///          other unit+own request, other unit+other's request]
/// Every (action, shape) not listed here must be denied for every role.
#[rustfmt::skip]
const TABLE: &[(Action, Shape, [&str; 4])] = &[
    //                                          central  school  approver auditor
    (Action::CaseOpen,                Shape::U, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseList,                Shape::U, ["YY" ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseList,                Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::CaseRead,                Shape::C, ["YY" ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseReadIdentity,        Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::PlanWrite,               Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::PlanRead,                Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::LoginDecisionWrite,      Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::FictitiousIdentityWrite, Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::GuardianWrite,           Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::OrderSend,               Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::OrderQueueRead,          Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::OrderRegister,           Shape::C, ["YY" ,  ".." ,  ".."   , ".." ]),
    (Action::StaffToldWrite,          Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::StaffToldRead,           Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::ReviewsList,             Shape::U, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::ReviewsListAll,          Shape::M, ["Y"  ,  "."  ,  "Y"    , "."  ]),
    (Action::ReviewRecord,            Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::ReviewRead,              Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::RevealRequest,           Shape::C, [".." ,  "Y." ,  "YY"   , ".." ]),
    (Action::RevealApprove,           Shape::R, ["....", "....", ".Y.Y" , "...."]),
    (Action::RevealRead,              Shape::R, ["....", "Y...", "Y.Y." , "...."]),
    (Action::RevealListPending,       Shape::M, ["."  ,  "."  ,  "Y"    , "."  ]),
    (Action::RevealListOwn,           Shape::M, ["."  ,  "Y"  ,  "Y"    , "."  ]),
    (Action::CaseEnd,                 Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseLabel,               Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseAccessReport,        Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseRequest,             Shape::U, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseRequestDecide,       Shape::Q, ["....", ".Y..", ".Y.Y" , "...."]),
    (Action::CaseRequestList,         Shape::U, [".." ,  "Y." ,  "YY"   , ".." ]),
    (Action::CaseRequestList,         Shape::M, ["."  ,  "."  ,  "Y"    , "."  ]),
    (Action::CaseCorrectIdentity,     Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseCloseOldIdentity,    Shape::C, ["YY" ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseTransferOut,         Shape::C, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::CaseTransferIn,          Shape::U, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::IntakeList,              Shape::U, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::IntakeReadIdentity,      Shape::U, [".." ,  "Y." ,  ".."   , ".." ]),
    (Action::IntakeCounts,            Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::HubStatusRead,           Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::HubReadRequest,          Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::AuditRead,               Shape::M, ["."  ,  "."  ,  "."    , "Y"  ]),
    (Action::AuditVerify,             Shape::M, ["."  ,  "."  ,  "."    , "Y"  ]),
    (Action::TargetsManage,           Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::SyncPlan,                Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::SyncApply,               Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::AccountCheck,            Shape::C, ["YY" ,  "Y." ,  ".."   , ".." ]),
    (Action::LeakScan,                Shape::C, ["YY" ,  "Y." ,  ".."   , ".." ]),
    (Action::LeakScan,                Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::ProvisioningStatusRead,  Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::TokensManage,            Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
    (Action::UsersManage,             Shape::M, ["Y"  ,  "."  ,  "."    , "."  ]),
];

const COLUMNS: [Role; 4] = [
    Role::CentralAdmin,
    Role::School,
    Role::Approver,
    Role::Auditor,
];

fn authz() -> Authorizer {
    Authorizer::embedded().expect("built-in policies load")
}

fn person(roles: &[Role]) -> Principal {
    Principal::new(ME, roles.to_vec(), vec![OWN.to_owned()])
}

#[test]
fn every_action_has_a_row() {
    let listed: BTreeSet<Action> = TABLE.iter().map(|(a, _, _)| *a).collect();
    for a in Action::ALL {
        assert!(
            listed.contains(a),
            "{a} is missing from the expectation table: add a row saying who may do it"
        );
    }
    let mut seen = BTreeSet::new();
    for (a, shape, columns) in TABLE {
        assert!(seen.insert((*a, *shape)), "{a} {shape:?} listed twice");
        for col in columns {
            assert_eq!(col.len(), cases(*shape).len(), "{a} {shape:?}: wrong width");
        }
    }
}

#[test]
fn the_matrix_is_exactly_as_written() {
    let authz = authz();
    let rows: HashMap<(Action, Shape), [&str; 4]> =
        TABLE.iter().map(|(a, s, c)| ((*a, *s), *c)).collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for &action in Action::ALL {
        for shape in SHAPES {
            let expected = rows.get(&(action, shape));
            for (col, role) in COLUMNS.into_iter().enumerate() {
                let p = person(&[role]);
                for (i, (label, resource)) in cases(shape).into_iter().enumerate() {
                    let want = expected.is_some_and(|row| row[col].as_bytes()[i] == b'Y');
                    let got = authz.authorize(&p, action, &resource).is_ok();
                    checked += 1;
                    if want != got {
                        failures.push(format!(
                            "{action} as {role} on {shape:?} ({label}): expected {}, got {}",
                            if want { "ALLOW" } else { "DENY" },
                            if got { "ALLOW" } else { "DENY" },
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > Action::ALL.len() * 4 * 8, "the loops ran");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_role_means_nothing() {
    let authz = authz();
    let nobody = person(&[]);
    for &action in Action::ALL {
        for shape in SHAPES {
            for (label, resource) in cases(shape) {
                assert!(
                    authz.authorize(&nobody, action, &resource).is_err(),
                    "{action} on {label} allowed with no role"
                );
            }
        }
    }
    assert!(authz
        .allowed_actions(&nobody, &Resource::Municipality)
        .is_empty());
}

#[test]
fn roles_add_up_but_guards_win() {
    let authz = authz();
    let own_case = Resource::Case { unit: OWN.into() };
    let allowed =
        |roles: &[Role], a: Action, r: &Resource| authz.authorize(&person(roles), a, r).is_ok();

    // A rektor who is also an approver: both sets of rights...
    let both = [Role::School, Role::Approver];
    assert!(allowed(&both, Action::CaseReadIdentity, &own_case));
    assert!(allowed(
        &both,
        Action::ReviewsListAll,
        &Resource::Municipality
    ));
    assert!(allowed(
        &both,
        Action::RevealRequest,
        &Resource::Case { unit: OTHER.into() }
    ));
    // ...but never their own request approved.
    for unit in [OWN, OTHER] {
        let own_request = Resource::RevealRequest {
            unit: unit.into(),
            requested_by: ME.into(),
        };
        assert!(!allowed(&both, Action::RevealApprove, &own_request));
        assert!(allowed(&both, Action::RevealRead, &own_request));
    }
    // Still no other unit's identity through the school role.
    assert!(!allowed(
        &both,
        Action::CaseReadIdentity,
        &Resource::Case { unit: OTHER.into() }
    ));

    // Central admin who is (wrongly) also school staff: keeps admin work,
    // never sees the identity or the plan, even in their own unit.
    let admin_school = [Role::CentralAdmin, Role::School];
    assert!(allowed(&admin_school, Action::OrderRegister, &own_case));
    assert!(allowed(&admin_school, Action::CaseRead, &own_case));
    assert!(allowed(&admin_school, Action::OrderSend, &own_case));
    for &a in Action::ALL
        .iter()
        .filter(|a| a.touches_real_identity_or_plan())
    {
        for (label, r) in [SHAPES, SHAPES].concat().into_iter().flat_map(cases) {
            assert!(
                !allowed(&admin_school, a, &r),
                "central-admin+school got {a} on {label}"
            );
            assert!(
                !allowed(&[Role::Auditor, Role::School, Role::Approver], a, &r),
                "auditor+school+approver got {a} on {label}"
            );
        }
    }

    // Every role at once: the guards still hold.
    let all = Role::ALL;
    assert!(allowed(&all, Action::AuditVerify, &Resource::Municipality));
    assert!(allowed(&all, Action::SyncApply, &Resource::Municipality));
    assert!(!allowed(&all, Action::PlanRead, &own_case));
    assert!(!allowed(
        &all,
        Action::RevealApprove,
        &Resource::RevealRequest {
            unit: OWN.into(),
            requested_by: ME.into()
        }
    ));

    // School staff in several units: each of them, and only those.
    let two_units = Principal::new(ME, vec![Role::School], vec!["u1".into(), "u2".into()]);
    for (unit, want) in [("u1", true), ("u2", true), ("u3", false)] {
        let case = Resource::Case { unit: unit.into() };
        assert_eq!(
            authz.authorize(&two_units, Action::PlanRead, &case).is_ok(),
            want,
            "{unit}"
        );
    }
}

#[test]
fn permits_are_bound_to_one_action_and_one_person() {
    let authz = authz();
    let p = person(&[Role::School]);
    let permit = authz
        .authorize(&p, Action::PlanRead, &Resource::Case { unit: OWN.into() })
        .unwrap();
    assert_eq!(permit.action(), Action::PlanRead);
    assert_eq!(permit.principal_id(), ME);
    assert!(permit.require(Action::PlanRead).is_ok());
    let denied = permit.require(Action::PlanWrite).unwrap_err();
    assert_eq!(denied.action(), Action::PlanWrite);
    // The error says nothing about the resource.
    assert_eq!(denied.to_string(), "not permitted");
}

#[test]
fn malformed_requests_are_denied() {
    let authz = authz();
    let blank = Principal::new("  ", Role::ALL.to_vec(), vec![OWN.into()]);
    assert!(authz
        .authorize(&blank, Action::AuditRead, &Resource::Municipality)
        .is_err());
    // An empty requester must not match an empty principal id or anybody else.
    let school = person(&[Role::School, Role::Approver]);
    let anonymous_request = Resource::RevealRequest {
        unit: OWN.into(),
        requested_by: String::new(),
    };
    assert!(authz
        .authorize(&school, Action::RevealApprove, &anonymous_request)
        .is_err());
    // Empty unit codes never match an empty unit in the principal's list.
    let empty_unit = Principal::new(ME, vec![Role::School], vec![String::new()]);
    assert!(authz
        .authorize(
            &empty_unit,
            Action::PlanRead,
            &Resource::Case {
                unit: String::new()
            }
        )
        .is_err());
    // Unit codes and ids with quotes are data, not policy text.
    let tricky = Principal::new(
        r#"x" || true"#,
        vec![Role::School],
        vec![r#"a"::"b"#.into()],
    );
    assert!(authz
        .authorize(
            &tricky,
            Action::PlanRead,
            &Resource::Case {
                unit: r#"a"::"b"#.into()
            }
        )
        .is_ok());
    assert!(authz
        .authorize(
            &tricky,
            Action::PlanRead,
            &Resource::Case { unit: "a".into() }
        )
        .is_err());
}

#[test]
fn roles_and_actions_parse_and_serialize() {
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
    }
    assert_eq!("central-admin".parse::<Role>().unwrap(), Role::CentralAdmin);
    assert!("admin".parse::<Role>().is_err());
    let names: BTreeSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(names.len(), Action::ALL.len(), "action ids are unique");
    for &a in Action::ALL {
        assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
    }
}

#[test]
fn embedded_policies_have_readable_ids() {
    let ids = authz().policy_ids();
    assert!(
        ids.contains(&"guards/no-self-approval".to_owned()),
        "{ids:?}"
    );
    assert!(ids.contains(&"school/unit-casework".to_owned()), "{ids:?}");
}

// ---- loading from a folder ----------------------------------------------

fn copy_embedded(dir: &std::path::Path) {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/cedar");
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn from_dir_loads_a_copy_of_the_shipped_folder() {
    let dir = tempfile::tempdir().unwrap();
    copy_embedded(dir.path());
    std::fs::write(dir.path().join("README.txt"), "ignored").unwrap();
    let from_dir = Authorizer::from_dir(dir.path()).unwrap();
    assert_eq!(from_dir.policy_ids(), authz().policy_ids());
}

#[test]
fn from_dir_with_a_broken_policy_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    copy_embedded(dir.path());
    std::fs::write(
        dir.path().join("local.cedar"),
        "// a local rule\npermit (\n  principal in Fiktiv::Role::\"school\"\n  action,\n  resource\n);\n",
    )
    .unwrap();
    let err = Authorizer::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::Parse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("local"), "names the file: {msg}");
    assert!(msg.contains("4:"), "gives the line: {msg}");
}

#[test]
fn from_dir_with_a_policy_that_does_not_fit_the_schema_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    copy_embedded(dir.path());
    std::fs::write(
        dir.path().join("local.cedar"),
        "@id(\"typo\")\npermit (principal in Fiktiv::Role::\"school\", action == Fiktiv::Action::\"case.opne\", resource);\n",
    )
    .unwrap();
    let err = Authorizer::from_dir(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PolicyLoadError::Validation(_)), "{msg}");
    assert!(msg.contains("local/typo"), "names the policy: {msg}");
    assert!(msg.contains("case.opne"), "names the problem: {msg}");
}

#[test]
fn from_dir_refuses_a_policy_that_leaks_identities() {
    let dir = tempfile::tempdir().unwrap();
    copy_embedded(dir.path());
    // An operator "fixes" a support case by letting the admin read plans,
    // and removes the guard that would have stopped it.
    std::fs::remove_file(dir.path().join("guards.cedar")).unwrap();
    std::fs::write(
        dir.path().join("oops.cedar"),
        "permit (principal in Fiktiv::Role::\"central-admin\", action == Fiktiv::Action::\"plan.read\", resource);\n",
    )
    .unwrap();
    let err = Authorizer::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            PolicyLoadError::Invariant {
                action: Action::PlanRead,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("central administrator"), "{err}");
}

#[test]
fn from_dir_refuses_a_self_approval_policy_without_guards() {
    let dir = tempfile::tempdir().unwrap();
    copy_embedded(dir.path());
    std::fs::remove_file(dir.path().join("guards.cedar")).unwrap();
    let err = Authorizer::from_dir(dir.path()).unwrap_err();
    // Without guards.cedar the shipped approver policy would let an
    // approver decide their own request; loading must stop.
    assert!(matches!(err, PolicyLoadError::Invariant { .. }), "{err}");
}

#[test]
fn from_dir_other_failures() {
    let empty = tempfile::tempdir().unwrap();
    let err = Authorizer::from_dir(empty.path()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::NoPolicies(_)), "{err}");

    let missing = empty.path().join("nope");
    let err = Authorizer::from_dir(&missing).unwrap_err();
    assert!(matches!(err, PolicyLoadError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");

    let changed = tempfile::tempdir().unwrap();
    copy_embedded(changed.path());
    let schema = changed.path().join("schema.cedarschema");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(
        &schema,
        text.replace(
            "entity Case in [Unit];",
            "entity Case in [Unit, Municipality];",
        ),
    )
    .unwrap();
    let err = Authorizer::from_dir(changed.path()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::SchemaMismatch(_)), "{err}");

    let template = tempfile::tempdir().unwrap();
    copy_embedded(template.path());
    std::fs::write(
        template.path().join("t.cedar"),
        "permit (principal == ?principal, action == Fiktiv::Action::\"audit.read\", resource);\n",
    )
    .unwrap();
    let err = Authorizer::from_dir(template.path()).unwrap_err();
    assert!(matches!(err, PolicyLoadError::Template { .. }), "{err}");

    let dup = tempfile::tempdir().unwrap();
    copy_embedded(dup.path());
    std::fs::write(
        dup.path().join("d.cedar"),
        "@id(\"x\") permit (principal in Fiktiv::Role::\"auditor\", action == Fiktiv::Action::\"audit.read\", resource);\n\
         @id(\"x\") permit (principal in Fiktiv::Role::\"auditor\", action == Fiktiv::Action::\"audit.verify\", resource);\n",
    )
    .unwrap();
    let err = Authorizer::from_dir(dup.path()).unwrap_err();
    assert!(
        matches!(err, PolicyLoadError::DuplicateId(ref id) if id == "d/x"),
        "{err}"
    );
}

#[test]
fn an_operator_can_narrow_the_rules() {
    // Example customisation: this municipality does not let approvers ask
    // for reveals themselves. A forbid narrows; the probes still pass.
    let dir = tempfile::tempdir().unwrap();
    copy_embedded(dir.path());
    std::fs::write(
        dir.path().join("local.cedar"),
        "@id(\"approvers-do-not-ask\")\nforbid (principal in Fiktiv::Role::\"approver\", action == Fiktiv::Action::\"reveal.request\", resource)\nunless { principal in Fiktiv::Role::\"school\" && resource in principal.units };\n",
    )
    .unwrap();
    let authz = Authorizer::from_dir(dir.path()).unwrap();
    let approver = person(&[Role::Approver]);
    let case = Resource::Case { unit: OTHER.into() };
    assert!(authz
        .authorize(&approver, Action::RevealRequest, &case)
        .is_err());
    assert!(authz
        .authorize(
            &person(&[Role::School]),
            Action::RevealRequest,
            &Resource::Case { unit: OWN.into() }
        )
        .is_ok());
}
