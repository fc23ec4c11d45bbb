//! Typed ids: an order id cannot be passed where a reveal id is expected. All are
//! random UUIDs; the case id is the vault's [`fiktiv_vault::CaseId`].

use std::fmt;
use std::str::FromStr;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            #[allow(clippy::new_without_default)] // a new id is random
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// An order to the central administrator.
    OrderId
);
typed_id!(
    /// A request to reveal a real identity.
    RevealId
);
typed_id!(
    /// An API token (the public part; the secret is never stored).
    TokenId
);
