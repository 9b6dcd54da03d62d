//! `esignsp-load`: drives one esignsp operation with C concurrent keep-alive connections for a
//! fixed number of requests and prints one JSON line: requests per second, p50/p95/p99 latency
//! in milliseconds, and the count of each status. Used by `scripts/bench.sh`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;

/// Which operation to drive.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Operation {
    /// `PUT …/signer_processes/{id}/result` on distinct ids.
    PutResult,
    /// `GET …/signer_processes/{id}/result`.
    GetResult,
    /// `POST …/signer_processes` (multipart) with a PDF of `--pdf-bytes`.
    Create,
}

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the API, e.g. http://127.0.0.1:8080/trustedx-resources/esignsp/v2.
    #[arg(long)]
    base: String,
    /// The operation.
    #[arg(long, value_enum)]
    operation: Operation,
    /// Concurrent connections.
    #[arg(long)]
    concurrency: usize,
    /// Total requests.
    #[arg(long)]
    requests: usize,
    /// Bearer token.
    #[arg(long)]
    token: String,
    /// File of process ids, one a line (PUT and GET take the i-th id for the i-th request).
    #[arg(long)]
    ids: Option<std::path::PathBuf>,
    /// Size of the PDF of `create`.
    #[arg(long, default_value_t = 100 * 1024)]
    pdf_bytes: usize,
    /// Time-out of one request, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_seconds: u64,
    /// Write the ids acknowledged with 200 here (durability drill).
    #[arg(long)]
    acknowledged: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let ids: Arc<Vec<String>> = Arc::new(
        args.ids
            .as_ref()
            .map(|f| std::fs::read_to_string(f).unwrap_or_default().lines().map(str::to_owned).collect())
            .unwrap_or_default(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(args.timeout_seconds))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(args.pdf_bytes, b'%');
    // One buffer for every request (a part borrows it): 256 uploads of 10 MiB share it.
    let pdf: &'static [u8] = pdf.leak();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, ids, next) = (client.clone(), ids.clone(), next.clone());
            let (base, token, operation, total) =
                (args.base.clone(), args.token.clone(), args.operation, args.requests);
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).unwrap_or_else(|e| panic!("histogram: {e}"));
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                let mut acknowledged = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let id = ids.get(i % ids.len().max(1)).cloned().unwrap_or_default();
                    let request = match operation {
                        Operation::PutResult => client
                            .put(format!("{base}/signer_processes/{id}/result"))
                            .header("Content-Type", "application/json")
                            .body(r#"{"status":"finished","details":{"message":"bench"}}"#),
                        Operation::GetResult => client.get(format!("{base}/signer_processes/{id}/result")),
                        Operation::Create => {
                            let form = reqwest::multipart::Form::new()
                                .text(
                                    "process",
                                    r#"{"process_type":"urn:safelayer:eidas:processes:document:sign:esigp"}"#,
                                )
                                .part("document", reqwest::multipart::Part::bytes(pdf).file_name("bench.pdf"));
                            client.post(format!("{base}/signer_processes")).multipart(form)
                        }
                    };
                    let sent = Instant::now();
                    let status = match request.bearer_auth(&token).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let _ = histogram.record(micros.max(1));
                    *statuses.entry(status).or_default() += 1;
                    if status == 200 {
                        acknowledged.push(id);
                    }
                }
                (histogram, statuses, acknowledged)
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3).unwrap_or_else(|e| panic!("histogram: {e}"));
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut acknowledged = Vec::new();
    for worker in workers {
        if let Ok((h, s, a)) = worker.await {
            let _ = histogram.add(&h);
            for (k, v) in s {
                *statuses.entry(k).or_default() += v;
            }
            acknowledged.extend(a);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(file) = args.acknowledged {
        let _ = std::fs::write(file, acknowledged.join("\n"));
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "requests": histogram.len(),
            "seconds": elapsed,
            "rps": histogram.len() as f64 / elapsed,
            "p50_ms": ms(0.50), "p95_ms": ms(0.95), "p99_ms": ms(0.99),
            "statuses": statuses,
        })
    );
}
