//! Property tests of sealing: round trips, tamper detection, case/field binding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use fiktiv_vault::seal::{self, DataKey, SealError};
use fiktiv_vault::CaseId;
use proptest::prelude::*;

fn field() -> impl Strategy<Value = String> {
    "[a-z:._-]{1,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..2048), f in field(), v in 1u32..5) {
        let dk = DataKey::generate();
        let case = CaseId::new();
        let sealed = seal::seal(&dk, &case, &f, v, &plain).unwrap();
        let opened = seal::open(&dk, &case, &f, v, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), plain.as_slice());
        // fresh nonce every time: sealing twice gives different bytes
        let again = seal::seal(&dk, &case, &f, v, &plain).unwrap();
        prop_assert_ne!(&sealed, &again);
    }

    #[test]
    fn any_flipped_byte_fails(plain in proptest::collection::vec(any::<u8>(), 0..256), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dk = DataKey::generate();
        let case = CaseId::new();
        let mut sealed = seal::seal(&dk, &case, "identity:pupil", 1, &plain).unwrap();
        // covers the format byte, every nonce byte, ciphertext and tag
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        let err = seal::open(&dk, &case, "identity:pupil", 1, &sealed).unwrap_err();
        prop_assert!(matches!(err, SealError::Authentication | SealError::Malformed));
    }

    #[test]
    fn associated_data_binds_case_field_and_version(plain in proptest::collection::vec(any::<u8>(), 1..128), f in field(), g in field(), v in 1u32..100) {
        let dk = DataKey::generate();
        let case = CaseId::new();
        let sealed = seal::seal(&dk, &case, &f, v, &plain).unwrap();
        prop_assert_eq!(seal::open(&dk, &CaseId::new(), &f, v, &sealed).unwrap_err(), SealError::Authentication);
        if f != g {
            prop_assert_eq!(seal::open(&dk, &case, &g, v, &sealed).unwrap_err(), SealError::Authentication);
        }
        prop_assert_eq!(seal::open(&dk, &case, &f, v + 1, &sealed).unwrap_err(), SealError::Authentication);
        prop_assert_eq!(seal::open(&DataKey::generate(), &case, &f, v, &sealed).unwrap_err(), SealError::Authentication);
    }

    #[test]
    fn truncation_fails(plain in proptest::collection::vec(any::<u8>(), 0..128), cut in 1usize..40) {
        let dk = DataKey::generate();
        let case = CaseId::new();
        let sealed = seal::seal(&dk, &case, "f", 1, &plain).unwrap();
        let cut = cut.min(sealed.len());
        prop_assert!(seal::open(&dk, &case, "f", 1, &sealed[..sealed.len() - cut]).is_err());
    }
}
