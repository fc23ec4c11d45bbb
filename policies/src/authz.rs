//! Authorization from Cedar policy files, deny by default, decided in one place.
//!
//! The flow in a handler:
//!
//! ```
//! use fiktiv_policies::{Action, Authorizer, Principal, Resource, Role};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let authz = Authorizer::embedded()?;
//! let rektor = Principal::new("staff-17", vec![Role::School], vec!["unit-a".into()]);
//! let case = Resource::Case { unit: "unit-a".into() };
//! let permit = authz.authorize(&rektor, Action::PlanRead, &case)?;
//! // A domain function takes `&Permit` and checks that it is the right one:
//! permit.require(Action::PlanRead)?;
//! assert!(permit.require(Action::CaseEnd).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Model
//!
//! The Cedar schema (`policies/cedar/schema.cedarschema`) is compiled in and
//! acts as the contract between this code and the policy files:
//! - `Fiktiv::Staff::"<principal id>"` with attribute `units: Set<Unit>`, and
//!   is `in` one `Fiktiv::Role::"<role>"` per role it holds;
//! - `Fiktiv::Municipality`, `Fiktiv::Unit` (in Municipality), `Fiktiv::Case`
//!   (in its Unit), `Fiktiv::RevealRequest` and `Fiktiv::CaseRequest` (each in its
//!   Unit, attribute `requested_by: Staff`);
//! - one action per [`Action`], with the id [`Action::as_str`].
//!
//! A request whose resource type does not fit the action (say `CaseOpen` on
//! the `Municipality`) fails Cedar's request validation and is denied. So is
//! a request in which any policy raised an evaluation error: a forbid that
//! errors must not quietly let a permit through.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
    Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Roles and principals
// ---------------------------------------------------------------------------

/// A role a person (or API token) holds. A person may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Central system administrator: orders, number digits, provisioning.
    /// Never sees a real identity or an action plan.
    CentralAdmin,
    /// School unit staff (principal and appointed staff), scoped to
    /// [`Principal::units`].
    School,
    /// Second approver of reveal requests (four eyes).
    Approver,
    /// Auditor / data protection officer: the audit trail only.
    Auditor,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 4] = [
        Role::CentralAdmin,
        Role::School,
        Role::Approver,
        Role::Auditor,
    ];

    /// The role's name in configuration, serde and the Cedar entity id.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::CentralAdmin => "central-admin",
            Role::School => "school",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role or action name that Fiktiv does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{name}`")]
pub struct UnknownName {
    kind: &'static str,
    name: String,
}

impl FromStr for Role {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "role",
                name: s.to_owned(),
            })
    }
}

/// Who is asking: a signed-in staff member or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Opaque staff or token id (never a personal number or a name).
    pub id: String,
    /// Roles held. An empty list means no access at all.
    pub roles: Vec<Role>,
    /// School unit codes the person works for. They only give access
    /// together with [`Role::School`].
    pub units: Vec<String>,
}

impl Principal {
    /// Convenience constructor.
    pub fn new(id: impl Into<String>, roles: Vec<Role>, units: Vec<String>) -> Self {
        Self {
            id: id.into(),
            roles,
            units,
        }
    }
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

macro_rules! actions {
    ($( $(#[$doc:meta])* $variant:ident => $id:literal, )*) => {
        /// Every operation of the API, one per kind of endpoint. The comment
        /// on each variant names the [`Resource`] it is checked against.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $( $(#[$doc])* $variant, )*
        }

        impl Action {
            /// Every action. Generated from the same list as the enum, so it
            /// cannot miss one.
            pub const ALL: &'static [Action] = &[ $( Action::$variant, )* ];

            /// The Cedar action id, e.g. `"case.open"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Action::$variant => $id, )*
                }
            }
        }
    };
}

actions! {
    /// Open a case with the real identity (step 1). Resource: `Unit`.
    CaseOpen => "case.open",
    /// List cases. Resource: `Unit` (one unit) or `Municipality` (all).
    CaseList => "case.list",
    /// Case metadata: unit, state, dates. No real identity. Resource: `Case`.
    CaseRead => "case.read",
    /// The school's own case page, showing the real identity. Resource: `Case`.
    CaseReadIdentity => "case.read-identity",
    /// Write the action plan (handlingsplan). Resource: `Case`.
    PlanWrite => "plan.write",
    /// Read the action plan. Resource: `Case`.
    PlanRead => "plan.read",
    /// Record the decision: fictitious login, or no digital login and that
    /// guardians were told what that means (step 2). Resource: `Case`.
    LoginDecisionWrite => "login-decision.write",
    /// Decide the fictitious name and birth date (step 2). Resource: `Case`.
    FictitiousIdentityWrite => "fictitious-identity.write",
    /// Link a guardian with a fictitious identity of their own (step 3).
    /// Resource: `Case`.
    GuardianWrite => "guardian.write",
    /// Send the order to the central administrator (step 4). Resource: `Case`.
    OrderSend => "order.send",
    /// Read the queue of orders. Resource: `Municipality`.
    OrderQueueRead => "order-queue.read",
    /// Register an order: assign the number digits. Resource: `Case`.
    OrderRegister => "order.register",
    /// Record which staff were told about the plan, and when (step 7).
    /// Resource: `Case`.
    StaffToldWrite => "staff-told.write",
    /// Read back who on the staff was told, and when. Resource: `Case`.
    StaffToldRead => "staff-told.read",
    /// Reviews due in one unit. Resource: `Unit`.
    ReviewsList => "reviews.list",
    /// Reviews due in the whole municipality. Resource: `Municipality`.
    ReviewsListAll => "reviews.list-all",
    /// Record a review outcome (step 8). Resource: `Case`.
    ReviewRecord => "review.record",
    /// A case's review history (outcome, who, when) and its due date.
    /// Resource: `Case`.
    ReviewRead => "review.read",
    /// Ask to reveal a real identity. Resource: `Case`.
    RevealRequest => "reveal.request",
    /// Approve or refuse a reveal request. Resource: `RevealRequest`.
    RevealApprove => "reveal.approve",
    /// Read the identity revealed by an approved request.
    /// Resource: `RevealRequest`.
    RevealRead => "reveal.read",
    /// List the reveal requests waiting for a decision, other than one's
    /// own (the list is filtered by requester). Resource: `Municipality`.
    RevealListPending => "reveal.list-pending",
    /// List one's own reveal requests and their state (the list holds only
    /// the caller's requests). Resource: `Municipality`.
    RevealListOwn => "reveal.list-own",
    /// End a case (pupil left or protection lifted). Resource: `Case`.
    CaseEnd => "case.end",
    /// Ask to take over a case (the pupil moves to this unit) or to reopen an ended one
    /// (the pupil comes back), found by the pupil's personal number. Resource: the
    /// receiving `Unit`. In the identity group: it takes a real personal number in.
    CaseRequest => "case.request",
    /// Accept or refuse a case request. Resource: `CaseRequest` (in the case's current
    /// unit). Nobody decides their own request.
    CaseRequestDecide => "case.request-decide",
    /// List case requests: a unit's (to decide, and its own), or all pending ones.
    /// Resource: `Unit` or `Municipality`.
    CaseRequestList => "case.request-list",
    /// Correct the pupil's real identity (a new name, a new personal number): sealed
    /// anew, blind indexes replaced, the old identity kept for the leak scan. In the
    /// identity group. Resource: `Case`.
    CaseCorrectIdentity => "case.correct-identity",
    /// Stop looking for a case's old real identity (after a correction): forget its
    /// sealed record and blind indexes. Reveals nothing. Resource: `Case`.
    CaseCloseOldIdentity => "case.close-old-identity",
    /// Seal a case for another municipality's Fiktiv (a transfer package), with the
    /// guardians' written consent; the case then ends here. In the identity group.
    /// Resource: `Case`.
    CaseTransferOut => "case.transfer-out",
    /// Import a transfer package from another municipality as a new case in a unit.
    /// In the identity group. Resource: `Unit`.
    CaseTransferIn => "case.transfer-in",
    /// The school's own label of a case, written and read (shown to the unit only, not
    /// to the central administrator). Resource: `Case`.
    CaseLabel => "case.label",
    /// The right-of-access report of a case: what is held, where it went, who read the
    /// real identity (it shows the real identity). Resource: `Case`.
    CaseAccessReport => "case.access-report",
    /// A unit's intake items from the SS 12000 hub (marked pupils enrolled there with
    /// no case), without their identities. Resource: `Unit`.
    IntakeList => "intake.list",
    /// Open an intake item's identity (audited first), to open the case. In the
    /// identity group. Resource: `Unit`.
    IntakeReadIdentity => "intake.read-identity",
    /// Intake items per unit, counts only. Resource: `Municipality`.
    IntakeCounts => "intake.counts",
    /// How the reads of the SS 12000 hub stand (times, counts, the last error code).
    /// Resource: `Municipality`.
    HubStatusRead => "hub-status.read",
    /// Ask for a full read of the SS 12000 hub now (it runs on one instance, as the
    /// scheduled reads do). Resource: `Municipality`.
    HubReadRequest => "hub.read-request",
    /// Read the audit trail. Resource: `Municipality`.
    AuditRead => "audit.read",
    /// Verify the audit trail's hash chain. Resource: `Municipality`.
    AuditVerify => "audit.verify",
    /// Configure provisioning targets. Resource: `Municipality`.
    TargetsManage => "targets.manage",
    /// Compute a provisioning plan. Resource: `Municipality`.
    SyncPlan => "sync.plan",
    /// Apply a provisioning plan. Resource: `Municipality`.
    SyncApply => "sync.apply",
    /// Check the fictitious pupil's accounts in the targets (step 5).
    /// Resource: `Case`.
    AccountCheck => "account.check",
    /// Scan targets for the real pupil (step 6). Results only.
    /// Resource: `Case` or `Municipality`.
    LeakScan => "leak.scan",
    /// Provisioning status per target. Resource: `Municipality`.
    ProvisioningStatusRead => "provisioning-status.read",
    /// Manage API tokens. Resource: `Municipality`.
    TokensManage => "tokens.manage",
    /// Manage staff and their roles. Resource: `Municipality`.
    UsersManage => "users.manage",
}

impl Action {
    /// `true` for actions that show, take in, or could be used to probe a
    /// real identity or the action plan. They make up the schema's action
    /// group `"real-identity-or-plan"`; a test keeps the two lists equal.
    /// The load-time probes use this list.
    pub const fn touches_real_identity_or_plan(self) -> bool {
        matches!(
            self,
            Action::CaseOpen
                | Action::CaseReadIdentity
                | Action::PlanWrite
                | Action::PlanRead
                | Action::FictitiousIdentityWrite
                | Action::GuardianWrite
                | Action::RevealRead
                | Action::CaseAccessReport
                | Action::CaseRequest
                | Action::CaseCorrectIdentity
                | Action::CaseTransferOut
                | Action::CaseTransferIn
                | Action::IntakeReadIdentity
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "action",
                name: s.to_owned(),
            })
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

/// What an action is applied to. It holds only unit codes and staff ids,
/// never anything about the pupil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The whole municipality (queues, targets, audit, all-unit lists).
    Municipality,
    /// One school unit, by unit code.
    Unit(String),
    /// One case, which belongs to the unit with this code.
    Case {
        /// Unit code of the school the pupil attends.
        unit: String,
    },
    /// A request to reveal a real identity.
    RevealRequest {
        /// Unit code of the case the request is about.
        unit: String,
        /// Principal id of the person who made the request.
        requested_by: String,
    },
    /// A request to move or reopen a case.
    CaseRequest {
        /// Unit code of the case now (the unit that decides).
        unit: String,
        /// Principal id of the person who made the request (who may not decide it).
        requested_by: String,
    },
}

// ---------------------------------------------------------------------------
// Permit and Denied
// ---------------------------------------------------------------------------

/// Proof that one principal was allowed one action. It can only be made by
/// [`Authorizer::authorize`]; its fields are private. A domain function
/// takes `&Permit` and calls [`Permit::require`] with its own action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    action: Action,
    principal_id: String,
}

impl Permit {
    /// The action that was allowed.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The id of the principal who was allowed (for the audit event).
    pub fn principal_id(&self) -> &str {
        &self.principal_id
    }

    /// `Ok` only if this permit is for exactly `action`.
    pub fn require(&self, action: Action) -> Result<(), Denied> {
        if self.action == action {
            Ok(())
        } else {
            tracing::warn!(
                permit_for = self.action.as_str(),
                required = action.as_str(),
                "permit presented for the wrong action"
            );
            Err(Denied { action })
        }
    }
}

/// Access denied. It carries the action that was refused, and deliberately
/// nothing about the resource or the reason: a denial must not tell the
/// caller whether a case exists or where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not permitted")]
pub struct Denied {
    action: Action,
}

impl Denied {
    /// The action that was refused.
    pub fn action(&self) -> Action {
        self.action
    }
}

// ---------------------------------------------------------------------------
// Loading errors
// ---------------------------------------------------------------------------

/// Why a policy set could not be loaded. Each message names the file or
/// policy at fault, so an operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// The folder or a file in it could not be read.
    #[error("cannot read policy path {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The folder holds no `*.cedar` file, or its files hold no policy.
    /// An empty set would deny everything, which is surely a mistake.
    #[error("no policies found in {0} (expected one or more *.cedar files)")]
    NoPolicies(String),
    /// A policy file is not valid Cedar.
    #[error("policy file {file} does not parse:\n{message}")]
    Parse {
        /// File name.
        file: String,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A policy file holds a template (`?principal` / `?resource`).
    /// Fiktiv does not link templates.
    #[error("policy file {file} contains a template; Fiktiv does not use policy templates")]
    Template {
        /// File name.
        file: String,
    },
    /// Two policies got the same id (`<file>/<@id>`).
    #[error("policy id {0} is defined twice; give each policy a unique @id(\"...\") per file")]
    DuplicateId(String),
    /// The built-in schema does not parse (a bug in this crate).
    #[error("the built-in Cedar schema is invalid: {0}")]
    Schema(String),
    /// The folder has a `schema.cedarschema` that differs from the built-in one.
    #[error(
        "{0} differs from the built-in schema; the schema is part of the program and cannot be \
         changed by configuration (remove the file, or copy it unchanged)"
    )]
    SchemaMismatch(PathBuf),
    /// The policies do not type-check against the schema.
    #[error("policies do not match the schema:\n{}", .0.join("\n"))]
    Validation(Vec<String>),
    /// An action Fiktiv uses is not declared in the schema (a bug in this crate).
    #[error("the schema does not declare action {0}")]
    MissingAction(&'static str),
    /// The policies would allow something that must never be allowed.
    #[error("policies break a safety rule: {rule} (action {action} was allowed in a probe)")]
    Invariant {
        /// The rule that was broken.
        rule: &'static str,
        /// The action the probe found allowed.
        action: Action,
    },
}

// ---------------------------------------------------------------------------
// The authorizer
// ---------------------------------------------------------------------------

/// The built-in schema text.
const EMBEDDED_SCHEMA: &str = include_str!("../cedar/schema.cedarschema");

/// The built-in policy files: (name used in policy ids, text).
const EMBEDDED_POLICIES: &[(&str, &str)] = &[
    ("school", include_str!("../cedar/school.cedar")),
    (
        "central_admin",
        include_str!("../cedar/central_admin.cedar"),
    ),
    ("approver", include_str!("../cedar/approver.cedar")),
    ("auditor", include_str!("../cedar/auditor.cedar")),
    ("guards", include_str!("../cedar/guards.cedar")),
];

/// File name of the schema, if an operator copies the whole folder.
const SCHEMA_FILE: &str = "schema.cedarschema";

/// The single entity id of the municipality.
const MUNICIPALITY_ID: &str = "municipality";
/// Entity ids of the per-request resource entities. There is exactly one
/// of each in a request, so a fixed id is enough.
const CASE_ID: &str = "case";
const REVEAL_REQUEST_ID: &str = "reveal-request";
const CASE_REQUEST_ID: &str = "case-request";

/// Parsed Cedar entity type names, made once at load.
#[derive(Debug, Clone)]
struct Types {
    staff: EntityTypeName,
    role: EntityTypeName,
    municipality: EntityTypeName,
    unit: EntityTypeName,
    case: EntityTypeName,
    reveal_request: EntityTypeName,
    case_request: EntityTypeName,
}

impl Types {
    fn new() -> Result<Self, PolicyLoadError> {
        let t = |s: &str| {
            EntityTypeName::from_str(s)
                .map_err(|e| PolicyLoadError::Schema(format!("entity type {s}: {e}")))
        };
        Ok(Self {
            staff: t("Fiktiv::Staff")?,
            role: t("Fiktiv::Role")?,
            municipality: t("Fiktiv::Municipality")?,
            unit: t("Fiktiv::Unit")?,
            case: t("Fiktiv::Case")?,
            reveal_request: t("Fiktiv::RevealRequest")?,
            case_request: t("Fiktiv::CaseRequest")?,
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// Why a request was denied. Internal: it goes to the log, never to the caller.
#[derive(Debug)]
enum DenyReason {
    /// No policy permitted it (or a forbid matched).
    Policy,
    /// Principal id, unit code or requester id is empty.
    Malformed(&'static str),
    /// The entities did not fit the schema.
    Entities(String),
    /// The request did not fit the schema (wrong resource type for the action).
    Request(String),
    /// A policy raised an error while evaluating.
    Evaluation(String),
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::Policy => f.write_str("no policy permits it"),
            DenyReason::Malformed(what) => write!(f, "malformed request: {what}"),
            DenyReason::Entities(e) => write!(f, "entities do not fit the schema: {e}"),
            DenyReason::Request(e) => write!(f, "request does not fit the schema: {e}"),
            DenyReason::Evaluation(e) => write!(f, "policy evaluation error: {e}"),
        }
    }
}

/// Decides every authorization question from the loaded Cedar policies.
/// Cheap to share (`Arc<Authorizer>`); it holds no per-request state.
pub struct Authorizer {
    policies: PolicySet,
    schema: Schema,
    engine: cedar_policy::Authorizer,
    types: Types,
    actions: HashMap<Action, EntityUid>,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("policies", &self.policies.num_of_policies())
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// The policies shipped with Fiktiv (`policies/cedar/*.cedar`), compiled in.
    pub fn embedded() -> Result<Self, PolicyLoadError> {
        let sources = EMBEDDED_POLICIES
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect();
        Self::from_sources(sources, "the built-in policies")
    }

    /// Load an operator's policy folder: every `*.cedar` file in `dir` (not
    /// in subfolders), in file-name order. The policies are validated
    /// against the built-in schema and probed for the safety rules. A
    /// `schema.cedarschema` in the folder is allowed only if it is the
    /// built-in one (ignoring whitespace); other files are ignored.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, PolicyLoadError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PolicyLoadError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if !path.is_file() {
                continue;
            }
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file_name == SCHEMA_FILE {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                if !same_ignoring_whitespace(&text, EMBEDDED_SCHEMA) {
                    return Err(PolicyLoadError::SchemaMismatch(path));
                }
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("cedar") {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(file_name)
                .to_owned();
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            files.push((stem, text));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Self::from_sources(files, &dir.display().to_string())
    }

    fn from_sources(sources: Vec<(String, String)>, origin: &str) -> Result<Self, PolicyLoadError> {
        let (schema, warnings) = Schema::from_cedarschema_str(EMBEDDED_SCHEMA)
            .map_err(|e| PolicyLoadError::Schema(e.to_string()))?;
        for w in warnings {
            tracing::warn!(warning = %w, "built-in Cedar schema warning");
        }

        let mut policies = PolicySet::new();
        for (name, text) in &sources {
            let parsed = PolicySet::from_str(text).map_err(|e| PolicyLoadError::Parse {
                file: format!("{name}.cedar"),
                message: render_parse_errors(&e, text),
            })?;
            if parsed.templates().next().is_some() {
                return Err(PolicyLoadError::Template {
                    file: format!("{name}.cedar"),
                });
            }
            for policy in parsed.policies() {
                let local = policy
                    .annotation("id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| policy.id().to_string());
                let id = format!("{name}/{local}");
                policies
                    .add(policy.new_id(PolicyId::new(&id)))
                    .map_err(|_| PolicyLoadError::DuplicateId(id))?;
            }
        }
        if policies.is_empty() {
            return Err(PolicyLoadError::NoPolicies(origin.to_owned()));
        }

        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors = result
                .validation_errors()
                .map(|e| format!("  - {e}"))
                .collect();
            return Err(PolicyLoadError::Validation(errors));
        }
        for w in result.validation_warnings() {
            tracing::warn!(warning = %w, "Cedar policy validation warning");
        }

        let types = Types::new()?;
        let action_type = EntityTypeName::from_str("Fiktiv::Action")
            .map_err(|e| PolicyLoadError::Schema(e.to_string()))?;
        let declared: HashSet<&EntityUid> = schema.actions().collect();
        let mut actions = HashMap::new();
        for &action in Action::ALL {
            let uid = Types::uid(&action_type, action.as_str());
            if !declared.contains(&uid) {
                return Err(PolicyLoadError::MissingAction(action.as_str()));
            }
            actions.insert(action, uid);
        }

        let authorizer = Self {
            policies,
            schema,
            engine: cedar_policy::Authorizer::new(),
            types,
            actions,
        };
        authorizer.check_safety_rules()?;
        tracing::info!(
            policies = authorizer.policies.num_of_policies(),
            origin,
            "authorization policies loaded"
        );
        Ok(authorizer)
    }

    /// The built-in Cedar schema, for operators writing their own policies.
    pub fn schema_text() -> &'static str {
        EMBEDDED_SCHEMA
    }

    /// Ids of the loaded policies (`<file>/<@id>`), sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The one authorization check. `Ok(Permit)` only if the policies
    /// permit `action` on `resource` for `principal` and no policy forbids
    /// it. Everything else is `Err(Denied)`.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
    ) -> Result<Permit, Denied> {
        match self.decide(principal, action, resource) {
            Ok(()) => Ok(Permit {
                action,
                principal_id: principal.id.clone(),
            }),
            Err(reason) => {
                match &reason {
                    // Info, not debug: a failed authorization is a security event
                    // (ASVS V16.3.2). The principal id and action are not personal data.
                    DenyReason::Policy => tracing::info!(
                        principal = %principal.id,
                        action = action.as_str(),
                        "denied by policy"
                    ),
                    other => tracing::warn!(
                        principal = %principal.id,
                        action = action.as_str(),
                        reason = %other,
                        "denied: request could not be evaluated"
                    ),
                }
                Err(Denied { action })
            }
        }
    }

    /// The actions `principal` may perform on `resource`, for showing the
    /// right buttons. Each is decided exactly as [`Authorizer::authorize`].
    pub fn allowed_actions(&self, principal: &Principal, resource: &Resource) -> Vec<Action> {
        Action::ALL
            .iter()
            .copied()
            .filter(|&a| self.decide(principal, a, resource).is_ok())
            .collect()
    }

    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
    ) -> Result<(), DenyReason> {
        if principal.id.trim().is_empty() {
            return Err(DenyReason::Malformed("empty principal id"));
        }
        let t = &self.types;
        let principal_uid = Types::uid(&t.staff, &principal.id);
        let units = RestrictedExpression::new_set(
            principal
                .units
                .iter()
                .map(|u| RestrictedExpression::new_entity_uid(Types::uid(&t.unit, u))),
        );
        let roles: HashSet<EntityUid> = principal
            .roles
            .iter()
            .map(|r| Types::uid(&t.role, r.as_str()))
            .collect();
        let staff = Entity::new(
            principal_uid.clone(),
            HashMap::from([("units".to_owned(), units)]),
            roles,
        )
        .map_err(|e| DenyReason::Entities(e.to_string()))?;

        let municipality = Types::uid(&t.municipality, MUNICIPALITY_ID);
        let mut entities = vec![
            staff,
            Entity::new_no_attrs(municipality.clone(), HashSet::new()),
        ];
        let unit_entity = |code: &str| -> Result<(EntityUid, Entity), DenyReason> {
            if code.trim().is_empty() {
                return Err(DenyReason::Malformed("empty unit code"));
            }
            let uid = Types::uid(&t.unit, code);
            let entity = Entity::new_no_attrs(uid.clone(), HashSet::from([municipality.clone()]));
            Ok((uid, entity))
        };
        let resource_uid = match resource {
            Resource::Municipality => municipality.clone(),
            Resource::Unit(code) => {
                let (uid, entity) = unit_entity(code)?;
                entities.push(entity);
                uid
            }
            Resource::Case { unit } => {
                let (unit_uid, unit) = unit_entity(unit)?;
                entities.push(unit);
                let uid = Types::uid(&t.case, CASE_ID);
                entities.push(Entity::new_no_attrs(uid.clone(), HashSet::from([unit_uid])));
                uid
            }
            Resource::RevealRequest { unit, requested_by }
            | Resource::CaseRequest { unit, requested_by } => {
                if requested_by.trim().is_empty() {
                    return Err(DenyReason::Malformed("empty requester id"));
                }
                let (unit_uid, unit) = unit_entity(unit)?;
                entities.push(unit);
                let uid = if matches!(resource, Resource::CaseRequest { .. }) {
                    Types::uid(&t.case_request, CASE_REQUEST_ID)
                } else {
                    Types::uid(&t.reveal_request, REVEAL_REQUEST_ID)
                };
                let requester =
                    RestrictedExpression::new_entity_uid(Types::uid(&t.staff, requested_by));
                entities.push(
                    Entity::new(
                        uid.clone(),
                        HashMap::from([("requested_by".to_owned(), requester)]),
                        HashSet::from([unit_uid]),
                    )
                    .map_err(|e| DenyReason::Entities(e.to_string()))?,
                );
                uid
            }
        };
        let entities = Entities::from_entities(entities, Some(&self.schema))
            .map_err(|e| DenyReason::Entities(e.to_string()))?;

        let Some(action_uid) = self.actions.get(&action) else {
            // Cannot happen: every Action is checked against the schema at load.
            return Err(DenyReason::Malformed("action not in schema"));
        };
        let request = Request::new(
            principal_uid,
            action_uid.clone(),
            resource_uid,
            Context::empty(),
            Some(&self.schema),
        )
        .map_err(|e| DenyReason::Request(e.to_string()))?;

        let response = self
            .engine
            .is_authorized(&request, &self.policies, &entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(DenyReason::Evaluation(errors.join("; ")));
        }
        match response.decision() {
            Decision::Allow => Ok(()),
            Decision::Deny => Err(DenyReason::Policy),
        }
    }

    /// Probes the loaded policies for the rules that must never break.
    /// Runs at load, so a bad policy folder stops the service at start
    /// instead of leaking at run time.
    fn check_safety_rules(&self) -> Result<(), PolicyLoadError> {
        const ME: &str = "probe-staff";
        const OTHER: &str = "probe-other-staff";
        const OWN: &str = "probe-unit-own";
        const FOREIGN: &str = "probe-unit-foreign";

        let shapes = |unit: &str| {
            vec![
                Resource::Municipality,
                Resource::Unit(unit.to_owned()),
                Resource::Case {
                    unit: unit.to_owned(),
                },
                Resource::RevealRequest {
                    unit: unit.to_owned(),
                    requested_by: ME.to_owned(),
                },
                Resource::RevealRequest {
                    unit: unit.to_owned(),
                    requested_by: OTHER.to_owned(),
                },
                Resource::CaseRequest {
                    unit: unit.to_owned(),
                    requested_by: ME.to_owned(),
                },
                Resource::CaseRequest {
                    unit: unit.to_owned(),
                    requested_by: OTHER.to_owned(),
                },
            ]
        };
        // Every combination of roles, the empty one included.
        let role_sets: Vec<Vec<Role>> = (0u8..16)
            .map(|mask| {
                Role::ALL
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, r)| r)
                    .collect()
            })
            .collect();
        let who = |roles: &[Role]| Principal::new(ME, roles.to_vec(), vec![OWN.to_owned()]);
        let must_deny = |p: &Principal, a: Action, r: &Resource, rule: &'static str| {
            if self.decide(p, a, r).is_ok() {
                Err(PolicyLoadError::Invariant { rule, action: a })
            } else {
                Ok(())
            }
        };

        let own = shapes(OWN);
        let foreign = shapes(FOREIGN);
        for roles in &role_sets {
            let p = who(roles);
            for &a in Action::ALL {
                for r in own.iter().chain(&foreign) {
                    if roles.is_empty() {
                        must_deny(&p, a, r, "a person with no role can do nothing")?;
                    }
                    if a.touches_real_identity_or_plan()
                        && (roles.contains(&Role::CentralAdmin) || roles.contains(&Role::Auditor))
                    {
                        must_deny(
                            &p,
                            a,
                            r,
                            "the central administrator and the auditor never see a real \
                             identity or an action plan, whatever other roles they hold",
                        )?;
                    }
                }
                if roles.as_slice() == [Role::School] {
                    for r in foreign.iter().filter(|r| **r != Resource::Municipality) {
                        must_deny(&p, a, r, "a school never reaches another unit's cases")?;
                    }
                }
            }
            for r in own.iter().chain(&foreign) {
                if let Resource::CaseRequest { requested_by, .. } = r {
                    if requested_by == ME {
                        must_deny(
                            &p,
                            Action::CaseRequestDecide,
                            r,
                            "nobody decides their own request to move or reopen a case",
                        )?;
                    }
                }
                if let Resource::RevealRequest { requested_by, .. } = r {
                    if requested_by == ME {
                        must_deny(
                            &p,
                            Action::RevealApprove,
                            r,
                            "nobody approves their own reveal request",
                        )?;
                    } else {
                        must_deny(
                            &p,
                            Action::RevealRead,
                            r,
                            "a revealed identity is shown only to the person who requested it",
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn same_ignoring_whitespace(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Turns Cedar parse errors into `line:column: message` lines.
fn render_parse_errors(errors: &cedar_policy::ParseErrors, text: &str) -> String {
    use miette::Diagnostic;
    let mut out = Vec::new();
    for err in errors.iter() {
        let position = err
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| line_col(text, label.offset()))
            .map(|(l, c)| format!("{l}:{c}: "))
            .unwrap_or_default();
        let help = err.help().map(|h| format!(" ({h})")).unwrap_or_default();
        out.push(format!("  {position}{err}{help}"));
    }
    if out.is_empty() {
        out.push(format!("  {errors}"));
    }
    out.join("\n")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn schema_group_matches_rust_list() {
        let schema = Schema::from_cedarschema_str(EMBEDDED_SCHEMA).unwrap().0;
        let group = EntityUid::from_str(r#"Fiktiv::Action::"real-identity-or-plan""#).unwrap();
        let entities = schema.action_entities().unwrap();
        for &a in Action::ALL {
            let uid = EntityUid::from_str(&format!(r#"Fiktiv::Action::"{}""#, a.as_str())).unwrap();
            let in_group = entities
                .ancestors(&uid)
                .map(|mut it| it.any(|p| *p == group))
                .unwrap_or(false);
            assert_eq!(
                in_group,
                a.touches_real_identity_or_plan(),
                "schema group and Action::touches_real_identity_or_plan disagree on {a}"
            );
        }
    }

    #[test]
    fn schema_declares_exactly_the_rust_actions() {
        let schema = Schema::from_cedarschema_str(EMBEDDED_SCHEMA).unwrap().0;
        let groups: HashSet<String> = schema
            .action_groups()
            .map(|g| g.id().unescaped().to_owned())
            .collect();
        let declared: HashSet<String> = schema
            .actions()
            .map(|a| a.id().unescaped().to_owned())
            .filter(|a| !groups.contains(a))
            .collect();
        let ours: HashSet<String> = Action::ALL.iter().map(|a| a.as_str().to_owned()).collect();
        assert_eq!(declared, ours);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
