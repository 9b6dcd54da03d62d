//! Signs a PDF with the PAdES B-B signer, for trying it on real documents:
//!
//! ```text
//! cargo run -p esignsp-adapters --example pades_sign -- KEY.pem CHAIN.pem IN.pdf OUT.pdf [pss]
//! ```
//!
//! KEY.pem is a PKCS#8 `PRIVATE KEY`, CHAIN.pem the signer's certificate and its chain.

use std::path::Path;
use std::process::ExitCode;

use esignsp_adapters::pades::{PadesSigner, RsaPadding};
use esignsp_domain::SignatureRequest;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, chain, input, output, rest @ ..] = args.as_slice() else {
        eprintln!("usage: pades_sign KEY.pem CHAIN.pem IN.pdf OUT.pdf [pss]");
        return ExitCode::from(2);
    };
    let padding = if rest.iter().any(|a| a == "pss") { RsaPadding::Pss } else { RsaPadding::Pkcs1v15 };
    let signer = match PadesSigner::from_files(Path::new(key), Path::new(chain), padding) {
        Ok(signer) => signer,
        Err(e) => {
            eprintln!("pades_sign: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pdf = match std::fs::read(input) {
        Ok(pdf) => pdf,
        Err(e) => {
            eprintln!("pades_sign: cannot read {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match signer.sign_blocking(&pdf, &SignatureRequest::at(time::OffsetDateTime::now_utc())) {
        Ok(signed) => match std::fs::write(output, signed) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pades_sign: cannot write {output}: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("pades_sign: {text}");
            ExitCode::FAILURE
        }
    }
}
