//! Which final digits a fictitious personal number may have.
//!
//! The central administrator decides the last digits of the fictitious
//! number (routine step 2). A fictitious number must never equal a real
//! person's number. The defaults in `policies/number_ranges.default.toml`
//! ([`DEFAULT_POLICY_TOML`]) give that guarantee, and that file explains why:
//! - Sweden: by default the check digit fails the Luhn check
//!   ([`CheckDigitRule::MustFailLuhn`]), which no real personnummer or
//!   samordningsnummer does, so the number belongs to nobody. The operator
//!   option [`CheckDigitRule::MustPassLuhn`] issues Luhn-valid numbers for
//!   downstream systems that refuse others; such a number may be a living
//!   person's, so the service refuses any that equals a real one in the vault
//!   or was given out before, and it must never reach a service that looks
//!   numbers up.
//! - Norway: synthetic numbers add [`NO_SYNTHETIC_MONTH_OFFSET`] to the
//!   month, which lies outside every real range. The individual number must
//!   match the birth year's century and may be narrowed further by
//!   configuration.
//!
//! This module only checks. Composing and parsing numbers belongs to the
//! vault's identifier code. Messages never echo a number or a date.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// The shipped default number policy.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../number_ranges.default.toml");

/// Added to the month of a Norwegian synthetic fødselsnummer (the tax
/// agency's synthetic test persons). No real number uses a month above 52.
pub const NO_SYNTHETIC_MONTH_OFFSET: u32 = 80;

/// An inclusive range of three-digit numbers, `from..=to`, within 0..=999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRange", into = "RawRange")]
pub struct DigitRange {
    from: u16,
    to: u16,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    from: u16,
    to: u16,
}

impl TryFrom<RawRange> for DigitRange {
    type Error = String;
    fn try_from(r: RawRange) -> Result<Self, Self::Error> {
        DigitRange::new(r.from, r.to)
            .ok_or_else(|| format!("range {}..={} must satisfy from <= to <= 999", r.from, r.to))
    }
}

impl From<DigitRange> for RawRange {
    fn from(r: DigitRange) -> Self {
        Self {
            from: r.from,
            to: r.to,
        }
    }
}

impl DigitRange {
    /// `from..=to`, if `from <= to <= 999`.
    pub const fn new(from: u16, to: u16) -> Option<Self> {
        if from <= to && to <= 999 {
            Some(Self { from, to })
        } else {
            None
        }
    }

    /// Whether `n` is in the range.
    pub const fn contains(&self, n: u16) -> bool {
        self.from <= n && n <= self.to
    }
}

/// What the Swedish check digit must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckDigitRule {
    /// The check digit must fail the Luhn check, so the number can never be
    /// a real personnummer or samordningsnummer. The default.
    MustFailLuhn,
    /// The check digit must pass the Luhn check: the number is valid in
    /// format and checksum. An operator option for targets that refuse other
    /// numbers. Such a number may belong to a living person, so the service
    /// checks it against every real number in the vault, and it must never
    /// reach a service that looks numbers up.
    MustPassLuhn,
    /// Numbers from the tax agency's published list of test personal numbers
    /// (Skatteverket's "testpersonnummer", never assigned to anyone), imported from
    /// the file `test_numbers_file` ([`NumberPolicy::load_test_numbers`]). Valid in
    /// format and checksum, and nobody's; only the listed numbers are given out, each
    /// once.
    TaxAgencyTestNumbers,
    /// No check digit: the temporary form SS 12000 allows in `civicNo` for a pupil
    /// with neither a personal nor a coordination number, the date followed by two
    /// letters ([`SwedishNumbers::temporary_letters`], `TF` by default) and two digits
    /// (`20130101TF01`). No personal or coordination number has letters, so the number
    /// belongs to nobody; 100 numbers per birth date (serials 0 to 99).
    Ss12000Temporary,
}

/// Swedish rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwedishNumbers {
    /// Allowed serials (födelsenummer, the three digits after the date).
    pub serials: Vec<DigitRange>,
    /// What the check digit must do.
    pub check_digit: CheckDigitRule,
    /// The two letters after the date of an [`CheckDigitRule::Ss12000Temporary`]
    /// number: two of `A`-`Z`.
    #[serde(default = "default_temporary_letters")]
    pub temporary_letters: TemporaryLetters,
    /// The file of the tax agency's test personal numbers
    /// ([`CheckDigitRule::TaxAgencyTestNumbers`]): one 12-digit number per line, or a
    /// CSV export whose cells hold them (other cells and lines are ignored).
    #[serde(default)]
    pub test_numbers_file: Option<std::path::PathBuf>,
    /// The numbers read from `test_numbers_file`, canonical (12 digits).
    #[serde(skip)]
    pub test_numbers: std::collections::BTreeSet<String>,
}

fn default_temporary_letters() -> TemporaryLetters {
    TemporaryLetters(*b"TF")
}

/// Two ASCII capital letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TemporaryLetters([u8; 2]);

impl TemporaryLetters {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("TF")
    }
}

impl TryFrom<String> for TemporaryLetters {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err("temporary_letters must be two capital letters A-Z".to_owned()),
        }
    }
}

impl From<TemporaryLetters> for String {
    fn from(t: TemporaryLetters) -> Self {
        t.as_str().to_owned()
    }
}

/// Norwegian rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NorwegianNumbers {
    /// Allowed individual numbers (the three digits after the date),
    /// on top of the century rule.
    pub individual_numbers: Vec<DigitRange>,
}

/// A number-policy file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("number policy: {0}")]
pub struct NumberPolicyError(String);

/// One problem with proposed number digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberViolation {
    /// Not exactly the expected count of ASCII digits.
    NotDigits,
    /// The Swedish serial is outside the allowed ranges.
    SerialNotAllowed,
    /// The Swedish check digit passes Luhn, which policy forbids: the
    /// number could be a real person's.
    CheckDigitCouldBeReal,
    /// The Swedish check digit fails Luhn, which policy forbids.
    CheckDigitInvalid,
    /// Not a number of the imported list of the tax agency's test personal numbers.
    NotATestNumber,
    /// The Norwegian individual number is outside the allowed ranges.
    IndividualNotAllowed,
    /// The Norwegian individual number does not fit the birth year's century.
    IndividualWrongCentury,
}

impl NumberViolation {
    /// Stable code.
    pub const fn code(self) -> &'static str {
        match self {
            NumberViolation::NotDigits => "number.not-digits",
            NumberViolation::NotATestNumber => "number.not-a-test-number",
            NumberViolation::SerialNotAllowed => "number.serial-not-allowed",
            NumberViolation::CheckDigitCouldBeReal => "number.check-digit-could-be-real",
            NumberViolation::CheckDigitInvalid => "number.check-digit-invalid",
            NumberViolation::IndividualNotAllowed => "number.individual-not-allowed",
            NumberViolation::IndividualWrongCentury => "number.individual-wrong-century",
        }
    }

    /// A fixed message that never echoes the digits.
    pub const fn message(self) -> &'static str {
        match self {
            NumberViolation::NotDigits => "The digits have the wrong length or are not all digits.",
            NumberViolation::NotATestNumber => {
                "The number is not in the imported list of the tax agency's test personal \
                 numbers."
            }
            NumberViolation::SerialNotAllowed => {
                "The serial is outside the ranges allowed by policy."
            }
            NumberViolation::CheckDigitCouldBeReal => {
                "The check digit is valid, so the number could belong to a real person. Policy \
                 requires a check digit that cannot be real."
            }
            NumberViolation::CheckDigitInvalid => "The check digit is not valid.",
            NumberViolation::IndividualNotAllowed => {
                "The individual number is outside the ranges allowed by policy."
            }
            NumberViolation::IndividualWrongCentury => {
                "The individual number does not fit the birth year."
            }
        }
    }
}

impl std::fmt::Display for NumberViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for NumberViolation {}

/// The number policy for both countries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberPolicy {
    /// Sweden.
    pub se: SwedishNumbers,
    /// Norway.
    pub no: NorwegianNumbers,
}

impl NumberPolicy {
    /// Parse a policy file, refusing unknown keys and bad ranges.
    pub fn from_toml(text: &str) -> Result<Self, NumberPolicyError> {
        toml::from_str(text).map_err(|e| NumberPolicyError(e.to_string()))
    }

    /// Reads the tax agency's test personal numbers for
    /// [`CheckDigitRule::TaxAgencyTestNumbers`] from `text` (the file
    /// `test_numbers_file`): every run of 12 digits, or of 10 digits with a `-` or `+`
    /// after the sixth, on any line or in any CSV cell. Each must be a valid personal
    /// number (a real date, a valid check digit): an error names the line, never the
    /// number. At least one is needed.
    pub fn load_test_numbers(&mut self, text: &str) -> Result<usize, NumberPolicyError> {
        let mut out = std::collections::BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            for cell in line.split([',', ';', '\t', ' ', '"']) {
                let cell = cell.trim();
                let digits: String = cell.chars().filter(char::is_ascii_digit).collect();
                let shaped = match cell.len() {
                    12 => digits.len() == 12,
                    11 => digits.len() == 10 && matches!(cell.as_bytes().get(6), Some(b'-' | b'+')),
                    _ => false,
                };
                if !shaped {
                    continue;
                }
                let full = if digits.len() == 12 {
                    digits
                } else {
                    // A ten-digit form: test numbers are of people born 1890 and later;
                    // `+` marks one aged 100 or more.
                    let yy: i32 = digits.get(..2).and_then(|y| y.parse().ok()).unwrap_or(0);
                    let century = if cell.as_bytes().get(6) == Some(&b'+') || yy > 30 {
                        "19"
                    } else {
                        "20"
                    };
                    format!("{century}{digits}")
                };
                let valid = full
                    .get(..8)
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
                    .zip(full.get(8..11).and_then(|s| s.parse::<u16>().ok()))
                    .and_then(|(date, serial)| se_check_digit(date, serial))
                    .is_some_and(|c| full.get(11..).and_then(|c| c.parse::<u8>().ok()) == Some(c));
                if !valid {
                    return Err(NumberPolicyError(format!(
                        "test_numbers_file: line {} holds a number that is not a valid \
                         personal number",
                        i + 1
                    )));
                }
                out.insert(full);
            }
        }
        if out.is_empty() {
            return Err(NumberPolicyError(
                "test_numbers_file holds no personal number".to_owned(),
            ));
        }
        let n = out.len();
        self.se.test_numbers = out;
        Ok(n)
    }

    /// The shipped default (`policies/number_ranges.default.toml`).
    pub fn default_policy() -> Result<Self, NumberPolicyError> {
        Self::from_toml(DEFAULT_POLICY_TOML)
    }

    /// Whether the Swedish serial (0..=999) is in an allowed range.
    pub fn allowed_se_serial(&self, serial: u16) -> bool {
        self.se.serials.iter().any(|r| r.contains(serial))
    }

    /// Check the last four digits (`NNNC`) of a fictitious Swedish number
    /// whose date part is `birth_date`: four digits, serial allowed, and
    /// the check digit as the policy requires. All violations are returned.
    pub fn check_se_last_four(
        &self,
        birth_date: NaiveDate,
        last_four: &str,
    ) -> Vec<NumberViolation> {
        if self.se.check_digit == CheckDigitRule::TaxAgencyTestNumbers {
            let Some(digits) = ascii_digits::<4>(last_four) else {
                return vec![NumberViolation::NotDigits];
            };
            let number = format!(
                "{}{}",
                birth_date.format("%Y%m%d"),
                digits
                    .iter()
                    .map(|d| char::from(b'0' + d))
                    .collect::<String>()
            );
            return if self.se.test_numbers.contains(&number) {
                Vec::new()
            } else {
                vec![NumberViolation::NotATestNumber]
            };
        }
        if self.se.check_digit == CheckDigitRule::Ss12000Temporary {
            // Two letters, then a serial of two digits.
            let ok = last_four.get(..2) == Some(self.se.temporary_letters.as_str())
                && last_four.get(2..).and_then(ascii_digits::<2>).is_some();
            return if ok {
                Vec::new()
            } else {
                vec![NumberViolation::NotDigits]
            };
        }
        let Some(digits) = ascii_digits::<4>(last_four) else {
            return vec![NumberViolation::NotDigits];
        };
        let serial = u16::from(digits[0]) * 100 + u16::from(digits[1]) * 10 + u16::from(digits[2]);
        let mut out = Vec::new();
        if !self.allowed_se_serial(serial) {
            out.push(NumberViolation::SerialNotAllowed);
        }
        let valid = se_check_digit(birth_date, serial) == Some(digits[3]);
        match (self.se.check_digit, valid) {
            (CheckDigitRule::MustFailLuhn, true) => {
                out.push(NumberViolation::CheckDigitCouldBeReal)
            }
            (CheckDigitRule::MustPassLuhn, false) => out.push(NumberViolation::CheckDigitInvalid),
            _ => {}
        }
        out
    }

    /// Whether the Norwegian individual number is allowed for a person born
    /// in `birth_year`: it must fit the century rule and the configured ranges.
    pub fn allowed_no_individual(&self, individual: u16, birth_year: i32) -> bool {
        self.check_no_individual(individual, birth_year).is_empty()
    }

    /// The Norwegian individual numbers allowed for a person born in `birth_year`, as
    /// inclusive ranges in order (what a refusal can tell the person choosing digits).
    pub fn no_allowed_individuals(&self, birth_year: i32) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for n in 0..=999u16 {
            if !self.allowed_no_individual(n, birth_year) {
                continue;
            }
            match out.last_mut() {
                Some((_, to)) if *to + 1 == n => *to = n,
                _ => out.push((n, n)),
            }
        }
        out
    }

    /// All violations of a Norwegian individual number for `birth_year`.
    pub fn check_no_individual(&self, individual: u16, birth_year: i32) -> Vec<NumberViolation> {
        let mut out = Vec::new();
        if !self
            .no
            .individual_numbers
            .iter()
            .any(|r| r.contains(individual))
        {
            out.push(NumberViolation::IndividualNotAllowed);
        }
        if !no_individual_fits_year(individual, birth_year) {
            out.push(NumberViolation::IndividualWrongCentury);
        }
        out
    }
}

/// The month field of a Norwegian synthetic number for a real month 1..=12.
pub const fn no_synthetic_month(month: u32) -> u32 {
    month + NO_SYNTHETIC_MONTH_OFFSET
}

/// Whether a Norwegian individual number fits the birth year's century
/// (Skatteetaten's allocation: 000–499 for 1900–1999, 500–749 for
/// 1854–1899, 500–999 for 2000–2039, 900–999 for 1940–1999). Years outside
/// 1854–2039 have no valid individual number.
pub fn no_individual_fits_year(individual: u16, birth_year: i32) -> bool {
    match birth_year {
        1854..=1899 => (500..=749).contains(&individual),
        1900..=1939 => individual <= 499,
        1940..=1999 => individual <= 499 || (900..=999).contains(&individual),
        2000..=2039 => (500..=999).contains(&individual),
        _ => false,
    }
}

/// The Luhn check digit of a Swedish number with this date and serial,
/// computed over the ten-digit form's first nine digits `YYMMDDNNN`.
/// `None` if the serial is above 999.
pub fn se_check_digit(birth_date: NaiveDate, serial: u16) -> Option<u8> {
    if serial > 999 {
        return None;
    }
    let yy = birth_date.year().rem_euclid(100);
    let text = format!(
        "{yy:02}{:02}{:02}{serial:03}",
        birth_date.month(),
        birth_date.day()
    );
    let digits: Vec<u8> = text.bytes().map(|b| b - b'0').collect();
    Some(luhn_check_digit(&digits))
}

/// The Luhn (mod 10) check digit for `digits` (each 0..=9), with weights
/// 2, 1, 2, ... from the first digit, as for Swedish personnummer.
pub fn luhn_check_digit(digits: &[u8]) -> u8 {
    let parity = digits.len() % 2;
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            // Double every other digit, counted so that the digit next to
            // the check digit is doubled.
            if i % 2 == parity {
                d
            } else {
                let x = d * 2;
                x / 10 + x % 10
            }
        })
        .sum();
    // `sum % 10` is below 10, so this fits a u8.
    ((10 - sum % 10) % 10) as u8
}

fn ascii_digits<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != N || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b - b'0';
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn luhn_matches_known_examples() {
        // The standard Luhn test vector: 7992739871 -> 3.
        assert_eq!(luhn_check_digit(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]), 3);
        // Worked by hand for date 150402 and serial 123, weights 2,1,2,...:
        // 2+5+0+4+0+2+2+2+6 = 23, so 10 - 3 = 7.
        assert_eq!(se_check_digit(d(2015, 4, 2), 123), Some(7));
        // The century does not enter the ten-digit form.
        assert_eq!(se_check_digit(d(1915, 4, 2), 123), Some(7));
        assert_eq!(se_check_digit(d(2000, 1, 1), 1000), None);
    }

    const MUST_FAIL: &str = "[se]\nserials = [{ from = 0, to = 999 }]\ncheck_digit = \"must-fail-luhn\"\n[no]\nindividual_numbers = [{ from = 0, to = 999 }]\n";

    #[test]
    fn the_allowed_norwegian_individual_numbers_are_ranges_of_the_allowed_ones() {
        let p = NumberPolicy::from_toml(
            "[se]\nserials = [{ from = 0, to = 999 }]\ncheck_digit = \"must-fail-luhn\"\n[no]\nindividual_numbers = [{ from = 0, to = 599 }, { from = 700, to = 999 }]\n",
        )
        .unwrap();
        // Born 2014: the century allows 500-999; the configuration 0-599 and 700-999.
        assert_eq!(p.no_allowed_individuals(2014), vec![(500, 599), (700, 999)]);
        for n in 0..=999 {
            let inside = p
                .no_allowed_individuals(2014)
                .iter()
                .any(|&(a, b)| (a..=b).contains(&n));
            assert_eq!(inside, p.allowed_no_individual(n, 2014), "{n}");
        }
        // Born 1950: 0-499 and 900-999, within the configuration.
        assert_eq!(p.no_allowed_individuals(1950), vec![(0, 499), (900, 999)]);
    }

    #[test]
    fn ss12000_temporary_numbers_take_two_letters_and_two_digits() {
        let p = NumberPolicy::from_toml(
            &DEFAULT_POLICY_TOML.replace("\"must-fail-luhn\"", "\"ss12000-temporary\""),
        )
        .unwrap();
        assert_eq!(p.se.check_digit, CheckDigitRule::Ss12000Temporary);
        assert_eq!(p.se.temporary_letters.as_str(), "TF");
        let born = d(2013, 1, 1);
        assert!(p.check_se_last_four(born, "TF01").is_empty());
        for bad in ["1234", "TX01", "tf01", "TF1", "TF0A", "TF012"] {
            assert_eq!(
                p.check_se_last_four(born, bad),
                [NumberViolation::NotDigits],
                "{bad}"
            );
        }
        let other = NumberPolicy::from_toml(&DEFAULT_POLICY_TOML.replace(
            "check_digit = \"must-fail-luhn\"",
            "check_digit = \"ss12000-temporary\"\ntemporary_letters = \"XY\"",
        ))
        .unwrap();
        assert!(other.check_se_last_four(born, "XY99").is_empty());
        for bad in ["xy", "X", "XYZ", "X1", "ÅÄ"] {
            let toml = DEFAULT_POLICY_TOML.replace(
                "check_digit = \"must-fail-luhn\"",
                &format!("check_digit = \"ss12000-temporary\"\ntemporary_letters = \"{bad}\""),
            );
            assert!(NumberPolicy::from_toml(&toml).is_err(), "{bad}");
        }
    }

    #[test]
    fn tax_agency_test_numbers_are_read_validated_and_the_only_ones_allowed() {
        let mut p = NumberPolicy::from_toml(&DEFAULT_POLICY_TOML.replace(
            "check_digit = \"must-fail-luhn\"",
            "check_digit = \"tax-agency-test-numbers\"\ntest_numbers_file = \"t.csv\"",
        ))
        .unwrap();
        assert_eq!(p.se.check_digit, CheckDigitRule::TaxAgencyTestNumbers);
        let born = d(2015, 4, 2);
        let c = se_check_digit(born, 123).unwrap();
        let c2 = se_check_digit(born, 456).unwrap();
        let listed = format!("20150402123{c}");
        let csv = format!("Testpersonnummer;Kommentar\n{listed};x\n\"150402-456{c2}\"\n");
        assert_eq!(p.load_test_numbers(&csv).unwrap(), 2);
        assert!(p.check_se_last_four(born, &format!("123{c}")).is_empty());
        assert!(p.check_se_last_four(born, &format!("456{c2}")).is_empty());
        assert_eq!(
            p.check_se_last_four(born, "1111"),
            [NumberViolation::NotATestNumber]
        );
        // A number that is not valid: refused, the line named, the number not shown.
        let bad = format!("{listed}\n20150402123{}\n", (c + 1) % 10);
        let e = p.load_test_numbers(&bad).unwrap_err().to_string();
        assert!(e.contains("line 2") && !e.contains("2015040212"), "{e}");
        assert!(p.load_test_numbers("no numbers here\n").is_err());
    }

    #[test]
    fn default_policy_loads() {
        let p = NumberPolicy::default_policy().unwrap();
        assert!(p.allowed_se_serial(0) && p.allowed_se_serial(999));
        // The default guarantees that a Swedish number is nobody's.
        assert_eq!(p.se.check_digit, CheckDigitRule::MustFailLuhn);
    }

    #[test]
    fn swedish_must_pass_option_requires_a_valid_check_digit() {
        let p = NumberPolicy::from_toml(
            &DEFAULT_POLICY_TOML.replace("\"must-fail-luhn\"", "\"must-pass-luhn\""),
        )
        .unwrap();
        assert_eq!(p.se.check_digit, CheckDigitRule::MustPassLuhn);
        let born = d(2015, 4, 2);
        let c = se_check_digit(born, 123).unwrap();
        assert!(p.check_se_last_four(born, &format!("123{c}")).is_empty());
        assert_eq!(
            p.check_se_last_four(born, &format!("123{}", (c + 1) % 10)),
            [NumberViolation::CheckDigitInvalid]
        );
    }

    /// The default refuses every valid check digit: its numbers are nobody's.
    #[test]
    fn swedish_default_refuses_a_valid_check_digit() {
        let p = NumberPolicy::default_policy().unwrap();
        let born = d(2015, 4, 2);
        let c = se_check_digit(born, 123).unwrap();
        assert_eq!(
            p.check_se_last_four(born, &format!("123{c}")),
            [NumberViolation::CheckDigitCouldBeReal]
        );
        assert!(p
            .check_se_last_four(born, &format!("123{}", (c + 1) % 10))
            .is_empty());
    }

    #[test]
    fn swedish_must_fail_option_refuses_numbers_that_could_be_real() {
        let p = NumberPolicy::from_toml(MUST_FAIL).unwrap();
        let born = d(2015, 4, 2);
        let real_c = se_check_digit(born, 123).unwrap();
        let could_be_real = format!("123{real_c}");
        assert_eq!(
            p.check_se_last_four(born, &could_be_real),
            [NumberViolation::CheckDigitCouldBeReal]
        );
        let never_real = format!("123{}", (real_c + 1) % 10);
        assert!(p.check_se_last_four(born, &never_real).is_empty());
        for bad in ["123", "12345", "12a4", "-123", "１２３４"] {
            assert_eq!(
                p.check_se_last_four(born, bad),
                [NumberViolation::NotDigits],
                "{bad}"
            );
        }
    }

    #[test]
    fn swedish_configured_ranges_and_valid_luhn() {
        let p = NumberPolicy::from_toml(
            "[se]\nserials = [{ from = 900, to = 949 }, { from = 980, to = 989 }]\ncheck_digit = \"must-pass-luhn\"\n[no]\nindividual_numbers = [{ from = 0, to = 999 }]\n",
        )
        .unwrap();
        assert!(!p.allowed_se_serial(899));
        assert!(p.allowed_se_serial(900) && p.allowed_se_serial(949));
        assert!(!p.allowed_se_serial(950));
        assert!(p.allowed_se_serial(985));
        let born = d(2016, 2, 29);
        let c = se_check_digit(born, 901).unwrap();
        assert!(p.check_se_last_four(born, &format!("901{c}")).is_empty());
        assert_eq!(
            p.check_se_last_four(born, &format!("901{}", (c + 5) % 10)),
            [NumberViolation::CheckDigitInvalid]
        );
        assert_eq!(
            p.check_se_last_four(born, &format!("100{}", se_check_digit(born, 100).unwrap())),
            [NumberViolation::SerialNotAllowed]
        );
    }

    #[test]
    fn norwegian_century_rule_and_ranges() {
        let p = NumberPolicy::default_policy().unwrap();
        assert!(p.allowed_no_individual(512, 2015));
        assert!(!p.allowed_no_individual(499, 2015));
        assert_eq!(
            p.check_no_individual(499, 2015),
            [NumberViolation::IndividualWrongCentury]
        );
        assert!(p.allowed_no_individual(950, 1985));
        assert!(p.allowed_no_individual(100, 1985));
        assert!(!p.allowed_no_individual(600, 1985));
        assert!(!p.allowed_no_individual(600, 2040));
        let narrow = NumberPolicy::from_toml(
            "[se]\nserials = [{ from = 0, to = 999 }]\ncheck_digit = \"must-fail-luhn\"\n[no]\nindividual_numbers = [{ from = 700, to = 799 }]\n",
        )
        .unwrap();
        assert!(narrow.allowed_no_individual(750, 2012));
        assert_eq!(
            narrow.check_no_individual(650, 2012),
            [NumberViolation::IndividualNotAllowed]
        );
        assert_eq!(
            narrow.check_no_individual(100, 2012),
            [
                NumberViolation::IndividualNotAllowed,
                NumberViolation::IndividualWrongCentury
            ]
        );
        assert_eq!(no_synthetic_month(12), 92);
    }

    #[test]
    fn bad_files_are_refused() {
        let ok_no = "[no]\nindividual_numbers = [{ from = 0, to = 999 }]\n";
        for bad_se in [
            "[se]\nserials = [{ from = 10, to = 5 }]\ncheck_digit = \"must-fail-luhn\"\n",
            "[se]\nserials = [{ from = 0, to = 1000 }]\ncheck_digit = \"must-fail-luhn\"\n",
            "[se]\nserials = [{ from = 0, to = 999 }]\ncheck_digit = \"luhn\"\n",
            "[se]\nserials = [{ from = 0, to = 999 }]\n",
            "[se]\nserials = [{ from = 0, to = 999, step = 2 }]\ncheck_digit = \"must-fail-luhn\"\n",
            "[se]\nserials = [{ from = 0, to = 999 }]\ncheck_digit = \"must-fail-luhn\"\nextra = 1\n",
        ] {
            assert!(NumberPolicy::from_toml(&format!("{bad_se}{ok_no}")).is_err(), "{bad_se}");
        }
        let err = NumberPolicy::from_toml(
            "[se]\nserials = [{ from = 10, to = 5 }]\ncheck_digit = \"must-fail-luhn\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("from <= to"), "{err}");
    }

    #[test]
    fn messages_never_hold_digits() {
        for v in [
            NumberViolation::NotDigits,
            NumberViolation::SerialNotAllowed,
            NumberViolation::CheckDigitCouldBeReal,
            NumberViolation::CheckDigitInvalid,
            NumberViolation::IndividualNotAllowed,
            NumberViolation::IndividualWrongCentury,
        ] {
            assert!(!v.message().chars().any(|c| c.is_ascii_digit()), "{v:?}");
            assert!(v.code().starts_with("number."));
        }
    }

    proptest! {
        #[test]
        fn must_fail_policy_never_accepts_a_luhn_valid_number(
            y in 1900i32..2100, ord in 1u32..=365, last_four in "[0-9]{4}",
        ) {
            let p = NumberPolicy::from_toml(MUST_FAIL).unwrap();
            let born = NaiveDate::from_yo_opt(y, ord).unwrap();
            let serial: u16 = last_four[..3].parse().unwrap();
            let c = last_four.as_bytes()[3] - b'0';
            let accepted = p.check_se_last_four(born, &last_four).is_empty();
            prop_assert_eq!(accepted, se_check_digit(born, serial) != Some(c));
        }

        #[test]
        fn exactly_one_check_digit_passes(y in 1900i32..2100, ord in 1u32..=365, serial in 0u16..=999) {
            let born = NaiveDate::from_yo_opt(y, ord).unwrap();
            let p = NumberPolicy::from_toml(
                "[se]\nserials = [{ from = 0, to = 999 }]\ncheck_digit = \"must-pass-luhn\"\n[no]\nindividual_numbers = [{ from = 0, to = 999 }]\n",
            ).unwrap();
            let passing = (0..10u8)
                .filter(|c| p.check_se_last_four(born, &format!("{serial:03}{c}")).is_empty())
                .count();
            prop_assert_eq!(passing, 1);
        }
    }
}
