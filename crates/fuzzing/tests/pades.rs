//! The check of the `pades_sign` fuzz target as property tests on stable: a bounded number of
//! random inputs per `cargo test` (arbitrary bytes, bytes behind a PDF header, and byte-level
//! changes to valid PDFs: a classic cross-reference table, the same PDF already signed, so the
//! second-signature path is reached too, and the same PDF with object streams and a
//! cross-reference stream, for the sparse reader's stream paths). The fuzzer itself runs in `fuzz/`
//! (`scripts/fuzz.sh`); both call `esignsp_fuzzing::pades_sign`.

use std::cell::RefCell;

use esignsp_fuzzing::{pades_sign, pades_signs};
use esignsp_testkit::pdf::multi_page_pdf;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;

/// The valid PDFs that mutations start from: unsigned, signed once by the fuzz key, and with
/// object streams and a cross-reference stream (qpdf).
fn originals() -> &'static [Vec<u8>; 3] {
    static ORIGINALS: std::sync::OnceLock<[Vec<u8>; 3]> = std::sync::OnceLock::new();
    ORIGINALS.get_or_init(|| {
        let plain = multi_page_pdf(2);
        let signed = pades_signs(&plain).expect("the fuzz key signs a valid PDF");
        let scratch = esignsp_testkit::pdf::scratch("fuzz-streams");
        let streams = esignsp_testkit::pdf::with_object_streams(&scratch, &plain);
        [plain, signed, streams]
    })
}

/// Mutation cases per run: 256, or `ESIGNSP_FUZZ_CASES` (a longer run by hand).
fn cases() -> u32 {
    std::env::var("ESIGNSP_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
}

/// One byte-level change: overwrite, delete, insert a PDF delimiter or digit, or cut the file.
#[derive(Debug, Clone)]
enum Change {
    Set(Index, u8),
    Delete(Index),
    Insert(Index, u8),
    Truncate(Index),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Change::Set(i, b)),
        any::<Index>().prop_map(Change::Delete),
        (any::<Index>(), prop::sample::select(b"0123456789 \n\r<>[]()/R%".to_vec()))
            .prop_map(|(i, b)| Change::Insert(i, b)),
        any::<Index>().prop_map(Change::Truncate),
    ]
}

fn apply(mut pdf: Vec<u8>, changes: &[Change]) -> Vec<u8> {
    for change in changes {
        if pdf.is_empty() {
            break;
        }
        match change {
            Change::Set(i, b) => {
                let at = i.index(pdf.len());
                pdf[at] = *b;
            }
            Change::Delete(i) => {
                pdf.remove(i.index(pdf.len()));
            }
            Change::Insert(i, b) => pdf.insert(i.index(pdf.len()), *b),
            Change::Truncate(i) => pdf.truncate(i.index(pdf.len())),
        }
    }
    pdf
}

#[test]
fn the_valid_originals_sign_and_a_changed_one_is_refused() {
    for original in originals() {
        pades_sign(original);
        let signed = pades_signs(original).expect("a valid PDF signs");
        assert!(signed.starts_with(original));
    }
    let outcome = pades_signs(&originals()[0][..100]);
    assert!(outcome.as_ref().is_err_and(esignsp_domain::SigningError::is_document_fault), "{outcome:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_or_signed_never_a_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        pades_sign(&data);
    }

    #[test]
    fn arbitrary_bytes_behind_a_pdf_header_are_refused_or_signed(
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut data = b"%PDF-1.7\n".to_vec();
        data.extend(body);
        pades_sign(&data);
    }
}

#[test]
fn changed_valid_pdfs_are_refused_or_signed_never_a_panic() {
    // No failure file: a failing case is printed, and the fuzz corpus keeps what is worth keeping.
    let config = ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    let tally = RefCell::new((0_usize, 0_usize));
    let strategy = (0..originals().len(), prop::collection::vec(change(), 1..6));
    runner
        .run(&strategy, |(which, changes)| {
            let changed = apply(originals()[which].clone(), &changes);
            pades_sign(&changed);
            let mut tally = tally.borrow_mut();
            match pades_signs(&changed) {
                Ok(_) => tally.0 += 1,
                Err(_) => tally.1 += 1,
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (signed, refused) = tally.into_inner();
    println!("changed PDFs: {signed} signed, {refused} refused");
    assert!(signed > 0 && refused > 0, "both outcomes occur: {signed} signed, {refused} refused");
}
