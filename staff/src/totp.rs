//! The TOTP second factor: RFC 6238 with SHA-1, 30-second steps and 6 digits, the
//! profile every authenticator app supports. Codes are computed by the `totp-rs`
//! crate; the time comes from the vault's clock, never the system clock, and a code
//! is accepted for the current step or one step either side (clock drift). Which step
//! matched is returned, so the caller can refuse a code that was used before.

use chrono::{DateTime, Utc};
use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};
use zeroize::Zeroizing;

use fiktiv_routine::{DomainError, DomainResult};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// The issuer shown in the authenticator app.
pub const ISSUER: &str = "Fiktiv";
/// Length of a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// A new random secret.
pub fn generate_secret() -> Zeroizing<Vec<u8>> {
    let mut s = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(s.as_mut_slice());
    s
}

fn totp(secret: &[u8], account: &str) -> DomainResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|_| DomainError::Internal("TOTP parameters refused".into()))
}

/// The secret in base32 (for typing into an app) and as an `otpauth://` URI.
pub fn display(
    secret: &[u8],
    account: &str,
) -> DomainResult<(Zeroizing<String>, Zeroizing<String>)> {
    let t = totp(secret, account)?;
    let b32 = Zeroizing::new(Secret::Raw(secret.to_vec()).to_encoded().to_string());
    Ok((b32, Zeroizing::new(t.get_url())))
}

/// The step whose code equals `code`, trying now and one step either side.
pub fn matching_step(secret: &[u8], code: &str, now: DateTime<Utc>) -> DomainResult<Option<u64>> {
    let code = code.trim();
    if code.len() != DIGITS || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let Ok(secs) = u64::try_from(now.timestamp()) else {
        return Ok(None);
    };
    // The account name plays no part in the code.
    let t = totp(secret, "x")?;
    let current = secs / STEP_SECS;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = Zeroizing::new(t.generate(step * STEP_SECS));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    /// RFC 6238 appendix B, SHA-1 column (8 digits there; the last 6 here).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let now = Utc.timestamp_opt(t, 0).unwrap();
            let six = &code8[2..];
            let step = matching_step(secret, six, now).unwrap();
            assert_eq!(step, Some(t as u64 / 30), "t={t}");
        }
    }

    #[test]
    fn wrong_or_malformed_codes_fail() {
        let secret = b"12345678901234567890";
        let now = Utc.timestamp_opt(59, 0).unwrap();
        assert_eq!(matching_step(secret, "000000", now).unwrap(), None);
        assert_eq!(matching_step(secret, "", now).unwrap(), None);
        assert_eq!(matching_step(secret, "28708", now).unwrap(), None);
        assert_eq!(matching_step(secret, "28708a", now).unwrap(), None);
        // One step later still matches (drift); two steps later does not.
        let later = Utc.timestamp_opt(59 + 30, 0).unwrap();
        assert_eq!(matching_step(secret, "287082", later).unwrap(), Some(1));
        let much_later = Utc.timestamp_opt(59 + 60, 0).unwrap();
        assert_eq!(matching_step(secret, "287082", much_later).unwrap(), None);
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let (b32, uri) = display(&generate_secret(), "anna.svensson").unwrap();
        assert_eq!(b32.len(), 32);
        assert!(
            uri.starts_with("otpauth://totp/Fiktiv:anna.svensson?"),
            "{}",
            *uri
        );
        assert!(uri.contains(&format!("secret={}", *b32)));
    }
}
