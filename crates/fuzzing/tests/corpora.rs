//! Replays every corpus file (`fuzz/corpus/<target>/`) and every past finding
//! (`fuzz/regressions/<target>/`) through the checks of the fuzz targets, on stable: what the
//! fuzzer once found, or reached, stays covered by `cargo test`.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `check` on every file of `dir`; the files whose check panicked.
fn replay(dir: &Path, check: esignsp_fuzzing::Check) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("readable input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(file.display().to_string());
        }
    }
    (files.len(), failed)
}

#[test]
fn every_corpus_file_and_past_finding_passes_its_target_check() {
    let mut failed = Vec::new();
    for (name, check) in esignsp_fuzzing::TARGETS {
        let (corpus, mut f) = replay(&fuzz_dir().join("corpus").join(name), check);
        assert!(corpus > 0, "fuzz/corpus/{name} has seeds");
        failed.append(&mut f);
        let (_, mut f) = replay(&fuzz_dir().join("regressions").join(name), check);
        failed.append(&mut f);
    }
    assert!(failed.is_empty(), "inputs failing their target's check: {failed:#?}");
}

#[test]
fn every_target_has_a_fuzz_target_file_and_no_file_lacks_a_target() {
    let names: Vec<&str> = esignsp_fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    for name in &names {
        assert!(fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")).is_file(), "fuzz/fuzz_targets/{name}.rs");
    }
    for dir in ["fuzz_targets", "corpus", "regressions"] {
        for entry in std::fs::read_dir(fuzz_dir().join(dir)).expect(dir).filter_map(Result::ok) {
            let path = entry.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            assert!(names.contains(&stem.as_str()), "{} belongs to no target", path.display());
        }
    }
}
