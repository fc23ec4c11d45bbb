//! The digit shapes of an ASCII text ([`AsciiDigits`]): what the number and date
//! scanners need at the least, so that a text that cannot hold a number or a date is
//! not scanned for one.

/// The digits of an ASCII text, as the scanners' shortcuts need them: a caller that
/// scans one text for both numbers and dates works them out once and calls
/// [`super::scan_number_candidates_in_full`] and
/// [`crate::normalize::scan_date_candidates_in_full`] only where they may find something.
#[derive(Debug, PartialEq, Eq)]
pub struct AsciiDigits {
    pub(super) total: usize,
    /// The longest run of consecutive digits.
    pub(super) longest_run: usize,
    /// Is there a digit, a separator (`-`, `.`, `/`), one or two digits, the same
    /// separator and a digit (the least a separated date needs)?
    pub(super) separated: bool,
    /// Is there a run of 6 or more digits followed by one to three number separators
    /// (`-`, `+`, white space) and a digit (the least a separated number needs)?
    pub(super) headed: bool,
    /// Are there six digits in a row whose middle two are a month (`01` to `12`)? The
    /// least a date written without separators needs: `YYMMDD` and `DDMMYY` have their
    /// month in the middle of their six digits, `DDMMYYYY` in the middle of its first
    /// six, `YYYYMMDD` in the middle of its last six. (Worked out only for a run of 6.)
    pub(super) month_window: bool,
}

/// Could the two ASCII bytes be a month, `01` to `12`?
fn month(tens: u8, ones: u8) -> bool {
    match tens {
        b'0' => (b'1'..=b'9').contains(&ones),
        b'1' => (b'0'..=b'2').contains(&ones),
        _ => false,
    }
}

/// [`AsciiDigits::month_window`] of `b`, byte by byte.
fn month_window(b: &[u8]) -> bool {
    b.windows(6).any(|w| {
        w.iter().all(u8::is_ascii_digit)
            && month(
                w.get(2).copied().unwrap_or(0),
                w.get(3).copied().unwrap_or(0),
            )
    })
}

/// A number separator, as [`super::tokenize`] reads an ASCII byte (dash, plus, white
/// space).
fn number_separator_byte(b: u8) -> bool {
    matches!(b, b'-' | b'+') || char::from(b).is_whitespace()
}

/// Texts up to this many bytes are read as bit masks ([`AsciiDigits::of_masks`]).
const MASK_BYTES: usize = 64;

/// Eight ASCII bytes (one `u64`, little-endian: byte `i` in bits `8i..8i + 8`) read at
/// once: one bit per byte (bit `i` for byte `i`) for each kind of byte the shapes need.
struct Masks8 {
    digits: u64,
    dashes: u64,
    dots: u64,
    slashes: u64,
    /// Number separators ([`number_separator_byte`]): `-`, `+`, white space.
    separators: u64,
}

/// `0x01` in every byte.
const LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit of each byte of `x` (every byte below 128): is the byte at least `c`?
/// (`x + 128 - c` per byte; no byte carries into the next.)
fn at_least(x: u64, c: u8) -> u64 {
    x.wrapping_add(LO * u64::from(0x80 - c)) & HI
}

/// The high bits of `m`, one per byte, gathered into its low 8 bits.
fn pack(m: u64) -> u64 {
    (m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// High bit of each byte of `x` (every byte below 128): is the byte a digit?
fn digit_bytes(x: u64) -> u64 {
    at_least(x, b'0') & !at_least(x, b'0' + 10)
}

/// `b` (up to [`MASK_BYTES`]) eight bytes at a time, each as a little-endian `u64` with
/// the shift that puts its bit `i` at bit `i` of the text; the last padded with NUL,
/// which is neither a letter, a digit nor a separator.
fn words8(b: &[u8]) -> impl Iterator<Item = (u64, u32)> + '_ {
    b.chunks(8)
        .take(MASK_BYTES / 8)
        .enumerate()
        .map(|(k, chunk)| {
            let mut word = [0u8; 8];
            if let Some(w) = word.get_mut(..chunk.len()) {
                w.copy_from_slice(chunk);
            }
            (u64::from_le_bytes(word), 8 * k as u32)
        })
}

impl Masks8 {
    /// Letters among eight ASCII bytes (bit `i` for byte `i`).
    fn alphabetic(x: u64) -> u64 {
        // Setting bit 5 maps `A..=Z` onto `a..=z` and nothing else onto them.
        let lower = x | (LO * 0x20);
        pack(at_least(lower, b'a') & !at_least(lower, b'z' + 1))
    }

    /// For bytes below 128 only (ASCII): a byte's high bit is then free to carry each
    /// comparison's answer.
    fn of(x: u64) -> Self {
        let at_least = |c: u8| at_least(x, c);
        // High bit of each byte: is the byte `c`? (The exact zero-byte test of `x ^ c`.)
        let equal = |c: u8| {
            let y = x ^ (LO * u64::from(c));
            !(((y & !HI).wrapping_add(!HI)) | y) & HI
        };
        let dashes = equal(b'-');
        // White space as `char::is_whitespace` reads ASCII: tab to carriage return
        // (9..=13) and the space.
        let white = (at_least(9) & !at_least(14)) | equal(b' ');
        Self {
            digits: pack(digit_bytes(x)),
            dashes: pack(dashes),
            dots: pack(equal(b'.')),
            slashes: pack(equal(b'/')),
            separators: pack(dashes | equal(b'+') | white),
        }
    }
}

/// One bit per byte (bit `i` for byte `i`) of an ASCII text of up to 64 bytes: is it a
/// letter (`u8::is_ascii_alphabetic`)? `None` for a longer text. Eight bytes at a time,
/// without a branch per byte.
pub fn ascii_alphabetic_mask(b: &[u8]) -> Option<u64> {
    if b.len() > MASK_BYTES {
        return None;
    }
    Some(words8(b).fold(0, |out, (x, at)| out | Masks8::alphabetic(x) << at))
}

impl AsciiDigits {
    /// `None` for text that is not ASCII (it is scanned in full).
    pub fn of(text: &str) -> Option<Self> {
        if !text.is_ascii() {
            return None;
        }
        let b = text.as_bytes();
        Some(if b.len() <= MASK_BYTES {
            Self::of_masks(b)
        } else {
            Self::of_bytes(b)
        })
    }

    /// [`Self::of`] for an ASCII text of up to [`MASK_BYTES`] bytes, without a branch
    /// per byte: one bit per byte for digits and for each kind of separator, worked
    /// out eight bytes at a time ([`Masks8`]), and the shapes as shifts and ands of
    /// those masks (bit `i` is byte `i`). A UUID or a hexadecimal id mixes digits and
    /// letters at random, which made the byte loop mispredict about every other byte.
    fn of_masks(b: &[u8]) -> Self {
        let (mut d, mut dash, mut dot, mut slash, mut sep) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for (x, at) in words8(b) {
            let m = Masks8::of(x);
            d |= m.digits << at;
            dash |= m.dashes << at;
            dot |= m.dots << at;
            slash |= m.slashes << at;
            sep |= m.separators << at;
        }
        let total = d.count_ones() as usize;
        // The longest run: each round keeps the digits that have one more digit after
        // them; a run of k digits lasts k rounds.
        let mut longest_run = 0;
        let mut m = d;
        while m != 0 {
            m &= m >> 1;
            longest_run += 1;
        }
        // `at(m, k)`: bit i set when byte i + k is in `m` (bytes past the end are not).
        let at = |m: u64, k: u32| m.checked_shr(k).unwrap_or(0);
        // A digit, then the separator at i: the byte before i is a digit.
        let after_digit = d << 1;
        let separated = [dash, dot, slash].iter().any(|&s| {
            let one = at(d, 1) & at(s, 2) & at(d, 3);
            let two = at(d, 1) & at(d, 2) & at(s, 3) & at(d, 4);
            after_digit & s & (one | two) != 0
        });
        // Six digits before i (a run of at least 6 ends there), then 1..=3 separators
        // from i and a digit.
        let six = (1..=6).fold(!0u64, |acc, k| acc & (d << k));
        let tail = at(d, 1) | (at(sep, 1) & at(d, 2)) | (at(sep, 1) & at(sep, 2) & at(d, 3));
        let headed = six & sep & tail != 0;
        Self::shapes(b, total, longest_run, separated, headed)
    }

    /// The shapes of `b` from what its digits gave; the month window is looked for
    /// only behind a run of six.
    fn shapes(b: &[u8], total: usize, longest_run: usize, separated: bool, headed: bool) -> Self {
        Self {
            total,
            longest_run,
            separated,
            headed,
            month_window: longest_run >= 6 && month_window(b),
        }
    }

    /// [`Self::of`] byte by byte, for any length.
    pub(super) fn of_bytes(b: &[u8]) -> Self {
        // Branch-free, so that it vectorises.
        let total: usize = b
            .iter()
            .map(|&c| usize::from(c.wrapping_sub(b'0') < 10))
            .sum();
        let (mut run, mut longest_run, mut separated, mut headed) = (0, 0, false, false);
        // Fewer digits than any date or number has: the rest does not matter.
        if total < 4 {
            return Self::shapes(b, total, longest_run, separated, headed);
        }
        let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        for (i, &c) in b.iter().enumerate() {
            if c.is_ascii_digit() {
                run += 1;
                continue;
            }
            if run > 0 {
                longest_run = longest_run.max(run);
                // A separator right after a digit.
                if !separated && matches!(c, b'-' | b'.' | b'/') {
                    let second = (1..=2).take_while(|&k| digit(i + k)).count();
                    separated =
                        second > 0 && b.get(i + second + 1) == Some(&c) && digit(i + second + 2);
                }
                if !headed && run >= 6 {
                    let seps = b
                        .get(i..)
                        .unwrap_or(&[])
                        .iter()
                        .take(3)
                        .take_while(|&&s| number_separator_byte(s))
                        .count();
                    headed = seps > 0 && digit(i + seps);
                }
                run = 0;
            }
        }
        longest_run = longest_run.max(run);
        Self::shapes(b, total, longest_run, separated, headed)
    }

    /// May the text hold a personal number? Every form has at least 6 + 4 digits:
    /// 10 or more in a row, or a run of 6 or 8 followed by a separator group and more
    /// digits.
    pub fn may_hold_number(&self) -> bool {
        self.total >= 10 && (self.longest_run >= 10 || self.headed)
    }

    /// May the text hold a date? Every form is six digits in a row with a month in
    /// their middle ([`AsciiDigits::month_window`]) or three separated runs (`4.3.12`:
    /// at least 4 digits).
    pub fn may_hold_date(&self) -> bool {
        self.total >= 4 && ((self.longest_run >= 6 && self.month_window) || self.separated)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The answers that matter: what the scanners' shortcuts ask.
    fn answers(d: &AsciiDigits) -> (bool, bool) {
        (d.may_hold_number(), d.may_hold_date())
    }

    proptest::proptest! {
        // Cheap cases, and the shapes are small targets in a large space.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The masks give what the byte loop gives: every field where the loop
        /// worked them all out (4 digits or more), the answers always.
        #[test]
        fn the_masks_read_what_the_bytes_read(
            text in "[0-9a-f./+ \t-]{0,64}|[0-9x./-]{4,20}|([0-9]{1,3}[-./ +a]){1,6}[0-9a]{0,3}|[0-9x ./+-]{0,40}|[0-9]{0,12}[-+ \t./]{0,4}[0-9]{0,12}[a-z]?[-./]?[0-9]{0,3}[-./]?[0-9]{0,8}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|([0-9]{1,11}[a-z+ ./-]{1,2}){1,5}",
        ) {
            let b = text.as_bytes();
            proptest::prop_assume!(b.len() <= MASK_BYTES);
            let (masks, bytes) = (AsciiDigits::of_masks(b), AsciiDigits::of_bytes(b));
            proptest::prop_assert_eq!(answers(&masks), answers(&bytes));
            proptest::prop_assert_eq!(masks.total, bytes.total);
            if bytes.total >= 4 {
                proptest::prop_assert_eq!(masks, bytes);
            }
        }
    }

    /// Every ASCII byte, at every place of a word: the masks say what the byte
    /// predicates say.
    #[test]
    fn eight_bytes_at_once_read_as_one_at_a_time() {
        for c in 0..128u8 {
            for place in 0..8 {
                let mut word = [b'x'; 8];
                word[place] = c;
                // Its neighbours vary too: the byte before and after.
                word[(place + 1) % 8] = c.wrapping_add(1) & 0x7f;
                let m = Masks8::of(u64::from_le_bytes(word));
                for (i, &b) in word.iter().enumerate() {
                    let bit = |mask: u64| mask >> i & 1 == 1;
                    assert_eq!(bit(m.digits), b.is_ascii_digit(), "{b}");
                    assert_eq!(bit(m.dashes), b == b'-', "{b}");
                    assert_eq!(bit(m.dots), b == b'.', "{b}");
                    assert_eq!(bit(m.slashes), b == b'/', "{b}");
                    assert_eq!(bit(m.separators), number_separator_byte(b), "{b}");
                    let alpha = Masks8::alphabetic(u64::from_le_bytes(word));
                    assert_eq!(bit(alpha), b.is_ascii_alphabetic(), "{b}");
                }
            }
        }
    }

    #[test]
    fn digits_are_counted_in_ascii_only() {
        let d = AsciiDigits::of("ab-123.4567 89").unwrap();
        assert_eq!((d.total, d.longest_run, d.separated), (9, 4, false));
        for (text, number) in [
            ("123456-7890", true),
            ("123456 +\t7890", true),
            ("123456 - +7890", false),
            ("12345678-1234", true),
            ("12345-67890", false),
            ("1234567890", true),
            ("123456789-0", true),
            ("0123456789ab", true),
            ("3f2a9c1e-1234-4abc-8def-0123456a89ab", false),
        ] {
            let d = AsciiDigits::of(text).unwrap();
            assert_eq!(d.may_hold_number(), number, "{text}");
            let long = format!("{}{text}", "x".repeat(MASK_BYTES));
            let d = AsciiDigits::of(&long).unwrap();
            assert_eq!(d.may_hold_number(), number, "{long}");
        }
        assert!(!d.may_hold_number() && !d.may_hold_date());
        let d = AsciiDigits::of("1-2-3").unwrap();
        assert!(!d.may_hold_date(), "three digits are no date");
        let d = AsciiDigits::of("x4.3.12").unwrap();
        assert_eq!((d.total, d.longest_run, d.separated), (4, 2, true));
        assert!(!AsciiDigits::of("4.3-12").unwrap().separated);
        assert!(!AsciiDigits::of("4.345.12").unwrap().separated);
        assert!(
            AsciiDigits::of("１").is_none(),
            "non-ASCII text is scanned in full"
        );
        assert_eq!(AsciiDigits::of("").map(|d| d.total), Some(0));
        // Six digits in a row hold a date only with a month in their middle.
        for (text, date) in [
            ("123456", false),
            ("x999999x", false),
            ("120304", true),
            ("20120304", true),
            ("04032012", true),
            ("id-3f2a9c134567-b", false),
            ("id-3f2a9c131267-b", true),
        ] {
            assert_eq!(
                AsciiDigits::of(text).unwrap().may_hold_date(),
                date,
                "{text}"
            );
            let long = format!("{}{text}", "x".repeat(MASK_BYTES));
            assert_eq!(
                AsciiDigits::of(&long).unwrap().may_hold_date(),
                date,
                "{long}"
            );
        }
        // Shapes at the last bytes of a mask.
        let end = format!("{}123456-7890", "x".repeat(MASK_BYTES - 11));
        assert!(AsciiDigits::of(&end).unwrap().may_hold_number());
        let end = format!("{}4.3.12", "x".repeat(MASK_BYTES - 6));
        assert!(AsciiDigits::of(&end).unwrap().separated);
    }
}
