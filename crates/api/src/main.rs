//! The `esignsp` binary.

use clap::Parser;

#[actix_web::main]
async fn main() {
    let code = esignsp_api::cli::run(esignsp_api::cli::Cli::parse()).await;
    std::process::exit(code);
}
