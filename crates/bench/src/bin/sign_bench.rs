//! Signing throughput for `scripts/bench.sh` (issue #16 item 3): signs one PDF at PAdES B-B with
//! one key again and again on `--concurrency` threads for `--seconds`, and prints one JSON line:
//! `{"signatures", "seconds", "per_second", "cpu_seconds", "cpu_ms_per_signature",
//! "peak_rss_mib", "pdf_bytes"}` (CPU from `/proc/self/stat`, the peak from `VmHWM`).
//! `--make-pdf FILE --mib N` writes the benchmark's multi-page PDF of about N MiB instead.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use esignsp_adapters::pades::{PadesSigner, RsaPadding, SigningCredentials};
use esignsp_domain::SignatureRequest;
use lopdf::{dictionary, Document, Object, Stream};

#[derive(Parser)]
struct Args {
    /// The PDF to sign.
    #[arg(long)]
    pdf: Option<PathBuf>,
    /// The signing key (PKCS#8 PEM) and its chain (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long)]
    chain: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Write a multi-page PDF of about `--mib` MiB here and exit.
    #[arg(long)]
    make_pdf: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    mib: usize,
}

/// A PDF 1.4 of pages of text (uncompressed content streams) until it holds about `mib` MiB.
fn multi_page_pdf(mib: usize) -> Vec<u8> {
    let mut document = Document::with_version("1.4");
    let pages_id = document.new_object_id();
    let font = document.add_object(dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica" });
    let resources = document.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let (mut kids, mut size, mut page) = (Vec::new(), 0, 0);
    while size < mib * 1024 * 1024 {
        page += 1;
        let mut content = String::from("BT /F1 9 Tf 40 800 Td 11 TL\n");
        for line in 0..70 {
            content
                .push_str(&format!("(Page {page}, clause {line}: the parties agree to the terms set out here.) '\n"));
        }
        content.push_str("ET");
        size += content.len();
        let contents = document.add_object(Stream::new(dictionary! {}, content.into_bytes()));
        let page = document.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => contents, "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        kids.push(Object::Reference(page));
    }
    let count = i64::try_from(kids.len()).unwrap_or(i64::MAX);
    document
        .objects
        .insert(pages_id, Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }));
    let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog);
    document.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let mut out = Vec::new();
    document.save_to(&mut out).expect("a PDF");
    out
}

/// User + system CPU seconds of this process (`/proc/self/stat`, fields 14 and 15).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// Peak resident memory (`VmHWM`), MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let args = Args::parse();
    if let Some(out) = &args.make_pdf {
        std::fs::write(out, multi_page_pdf(args.mib)).expect("write the PDF");
        return;
    }
    let read =
        |p: &Option<PathBuf>, what: &str| std::fs::read(p.as_ref().unwrap_or_else(|| panic!("--{what}"))).expect(what);
    let pdf = Arc::new(read(&args.pdf, "pdf"));
    let credentials =
        SigningCredentials::from_pem(&read(&args.key, "key"), &read(&args.chain, "chain"), RsaPadding::Pkcs1v15)
            .expect("credentials");
    let signer = PadesSigner::new(credentials);
    let request = SignatureRequest::at(time::OffsetDateTime::now_utc());
    // One signature first: it must work, and the measured part starts warm.
    let first = signer.sign_blocking(&pdf, &request).expect("a signature");
    assert!(first.starts_with(&pdf));
    let (stop, count) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (cpu_before, started) = (cpu_seconds(), Instant::now());
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (signer, pdf, request, stop, count) =
                (signer.clone(), pdf.clone(), request.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let signed = signer.sign_blocking(&pdf, &request).expect("a signature");
                    std::hint::black_box(signed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(args.seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker");
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let n = count.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "signatures": n,
            "seconds": seconds,
            "per_second": n as f64 / seconds,
            "cpu_seconds": cpu,
            "cpu_ms_per_signature": cpu * 1000.0 / n.max(1) as f64,
            "peak_rss_mib": peak_rss_mib(),
            "pdf_bytes": pdf.len(),
        })
    );
}
