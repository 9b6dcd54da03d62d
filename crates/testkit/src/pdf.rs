//! Real PDFs for the tests, and the independent validators run on signed ones: poppler's
//! `pdfsig` (NSS), pyHanko `sign validate` (from the project's `.venv`) and `qpdf --check`.
//! `scripts/test.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use lopdf::{dictionary, Document, Object, Stream};

/// A PDF 1.4 of `pages` pages (A4, one line of text each) with a classic cross-reference
/// table, written by lopdf.
#[must_use]
pub fn multi_page_pdf(pages: u32) -> Vec<u8> {
    let mut document = Document::with_version("1.4");
    let pages_id = document.new_object_id();
    let font = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources = document.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids = Vec::new();
    for page in 1..=pages {
        let content = format!("BT /F1 24 Tf 72 720 Td (Contract page {page} of {pages}) Tj ET");
        let contents = document.add_object(Stream::new(dictionary! {}, content.into_bytes()));
        let page = document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => contents,
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        kids.push(Object::Reference(page));
    }
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => i64::from(pages) }),
    );
    let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog);
    document.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let mut out = Vec::new();
    document.save_to(&mut out).expect("save");
    out
}

/// A scratch directory of its own for each test, removed when the test passes (kept, with the
/// files a validator refused, when it fails).
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh [`Scratch`] directory named after the test run and `name`.
///
/// # Panics
/// When the directory cannot be made.
#[must_use]
pub fn scratch(name: &str) -> Scratch {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "esignsp-test-{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    Scratch(dir)
}

/// `pdf` rewritten by qpdf with object streams and a cross-reference stream (PDF 1.5), in `dir`.
///
/// # Panics
/// When qpdf fails.
#[must_use]
pub fn with_object_streams(dir: &Path, pdf: &[u8]) -> Vec<u8> {
    let (input, output) = (dir.join("classic.pdf"), dir.join("streams.pdf"));
    std::fs::write(&input, pdf).expect("write");
    let (ok, text) = run(Command::new("qpdf").arg("--object-streams=generate").arg(&input).arg(&output));
    assert!(ok, "qpdf failed: {text}");
    std::fs::read(output).expect("read")
}

/// A script of the project's `scripts/` directory.
#[must_use]
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

/// Runs `command`; whether it succeeded and what it printed (stdout then stderr).
///
/// # Panics
/// When the command cannot be run at all.
pub fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run {command:?} ({e}): scripts/test.sh installs the validators (poppler-utils, qpdf, .venv)")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A tool of the project's Python virtual environment (`ESIGNSP_VENV`, else `.venv/`).
#[must_use]
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("ESIGNSP_VENV")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"), PathBuf::from);
    venv.join("bin").join(name)
}

/// Runs `pdfsig` on `file` with an NSS database in `dir/nss` that trusts only `ca_file` (made
/// on first use); what it printed.
///
/// # Panics
/// When NSS's `certutil` fails.
#[must_use]
pub fn pdfsig(dir: &Path, ca_file: &Path, file: &Path) -> String {
    let nss = dir.join("nss");
    if !nss.exists() {
        std::fs::create_dir_all(&nss).expect("nss dir");
        let db = format!("sql:{}", nss.display());
        let (ok, text) = run(Command::new("certutil").args(["-N", "--empty-password", "-d", &db]));
        assert!(ok, "certutil -N: {text}");
        let (ok, text) = run(Command::new("certutil")
            .args(["-A", "-d", &db, "-n", "esignsp test root", "-t", "CT,C,C", "-i"])
            .arg(ca_file));
        assert!(ok, "certutil -A: {text}");
    }
    run(Command::new("pdfsig").arg("-nssdir").arg(format!("sql:{}", nss.display())).arg(file)).1
}

/// What the validators printed for a signed PDF.
#[derive(Debug, Clone)]
pub struct Validation {
    /// `qpdf --check`.
    pub qpdf: String,
    /// `pdfsig -nssdir …`.
    pub pdfsig: String,
    /// `pyhanko sign validate --pretty-print` then its one-line form.
    pub pyhanko: String,
}

/// Validates `pdf` (written to `dir/name`) with qpdf, pdfsig and pyHanko, trusting only the
/// root `ca_file`, and asserts that each accepts exactly `signatures` signatures, all trusted,
/// the last one covering the whole file.
///
/// # Panics
/// When a validator refuses the file (the test's failure).
pub fn assert_valid(dir: &Path, name: &str, pdf: &[u8], ca_file: &Path, signatures: usize) -> Validation {
    std::fs::create_dir_all(dir).expect("dir");
    let file = dir.join(name);
    std::fs::write(&file, pdf).expect("write");
    let (ok, qpdf) = run(Command::new("qpdf").arg("--check").arg(&file));
    assert!(ok && qpdf.contains("No syntax or stream encoding errors found"), "qpdf --check:\n{qpdf}");

    let pdfsig = pdfsig(dir, ca_file, &file);
    assert_eq!(pdfsig.matches("Signature Validation: Signature is Valid.").count(), signatures, "pdfsig:\n{pdfsig}");
    assert_eq!(
        pdfsig.matches("Certificate Validation: Certificate is Trusted.").count(),
        signatures,
        "pdfsig:\n{pdfsig}"
    );
    assert_eq!(pdfsig.matches("Signature Type: ETSI.CAdES.detached").count(), signatures, "pdfsig:\n{pdfsig}");
    assert!(pdfsig.contains("Total document signed"), "the last signature covers the whole file:\n{pdfsig}");

    let pyhanko = venv_tool("pyhanko");
    let (ok, pretty) = run(Command::new(&pyhanko)
        .args(["sign", "validate", "--pretty-print", "--trust"])
        .arg(ca_file)
        .arg("--trust-replace")
        .arg(&file));
    assert!(ok, "pyhanko sign validate:\n{pretty}");
    assert_eq!(pretty.matches("The signature is judged VALID.").count(), signatures, "pyhanko:\n{pretty}");
    let (ok, summary) = run(Command::new(&pyhanko)
        .args(["sign", "validate", "--trust"])
        .arg(ca_file)
        .arg("--trust-replace")
        .arg(&file));
    assert!(ok, "pyhanko sign validate:\n{summary}");
    let lines: Vec<&str> = summary.lines().filter(|l| l.contains(":INTACT:")).collect();
    assert_eq!(lines.len(), signatures, "pyhanko:\n{summary}");
    assert!(lines.iter().all(|l| l.contains(":INTACT:TRUSTED")), "pyhanko:\n{summary}");
    assert!(lines.last().is_some_and(|l| l.ends_with(",UNTOUCHED")), "the last signature covers all:\n{summary}");
    Validation { qpdf, pdfsig, pyhanko: format!("{pretty}{summary}") }
}
