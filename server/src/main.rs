//! The `apitrail` binary: the server and its command-line tools.
//!
//! - `apitrail serve`: runs the HTTP API over a data directory ([`serve`]).
//! - `apitrail import`: loads log files through a server or straight into a
//!   data directory ([`cli::import`]).
//! - `apitrail query`: runs SQL and prints a table ([`cli::query`]).
//! - `apitrail simulate`: writes labelled synthetic partner traffic and its
//!   ground truth to a file or a server ([`cli::simulate`]).
//! - `apitrail spec load`: loads an OpenAPI or Swagger document ([`cli::spec`]).
//! - `apitrail token`: creates, lists and revokes access tokens ([`cli::token`]).
//!
//! [`config`] contains the settings, [`ingest`] the pipeline shared by HTTP and
//! import, [`http`] the routes, [`otlp`] the OpenTelemetry receivers and
//! [`output`] the result encodings.

#![expect(
    unreachable_pub,
    reason = "a binary crate has no public API; `pub` marks items its modules share"
)]

mod auth;
mod cli;
mod config;
mod errors;
mod es;
mod flight;
mod http;
mod https;
mod ingest;
mod otlp;
mod output;
mod pg;
mod pipeline;
mod serve;
mod tls;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// jemalloc instead of the system allocator. Parsing allocates and frees many
/// short strings per event, and glibc's malloc spent about a quarter of the
/// parse time on them in the ingest benchmark. mimalloc, also tried, gave
/// freed pages back to the kernel between batches and faulted them in again.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "apitrail",
    version,
    about = "Store and query every HTTP API call event"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on a data directory.
    Serve(serve::ServeArgs),
    /// Load log files through a running server or straight into a data directory.
    Import(cli::import::ImportArgs),
    /// Run one SQL query and print the result as a table.
    Query(cli::query::QueryArgs),
    /// Write synthetic partner traffic with injected abuse, and its ground truth.
    Simulate(cli::simulate::SimulateArgs),
    /// Manage the API descriptions that endpoints are checked against.
    Spec(cli::spec::SpecArgs),
    /// Create, list and revoke access tokens.
    Token(cli::token::TokenArgs),
}

/// Destination of a command-line tool's work: a server or a data directory.
#[derive(Debug, Clone, clap::Args)]
struct Target {
    /// URL of a running apitrail server.
    #[arg(long, env = "APITRAIL_SERVER", conflicts_with = "data_dir")]
    server: Option<String>,
    /// Data directory to use directly when no server runs on it.
    #[arg(long, env = "APITRAIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Secret of an access token, sent to the server as a Bearer token.
    #[arg(long, env = "APITRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the CA (or the self-signed certificate) that an https --server uses.
    #[arg(long, env = "APITRAIL_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

impl Target {
    const DEFAULT_SERVER: &'static str = "http://127.0.0.1:7070";

    fn server_url(&self) -> Option<String> {
        match (&self.server, &self.data_dir) {
            (Some(url), _) => Some(url.trim_end_matches('/').to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(Self::DEFAULT_SERVER.to_string()),
        }
    }

    /// Describes a request that got no response, with the likely fix:
    /// a TLS failure (an untrusted certificate, plain HTTP against HTTPS)
    /// or a server that is not running.
    fn connect_error(server: &str, error: &reqwest::Error) -> String {
        let mut chain = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(current) = source {
            chain.push_str(&current.to_string().to_ascii_lowercase());
            chain.push(' ');
            source = current.source();
        }
        let tls = ["certificate", "tls", "handshake", "ssl"]
            .iter()
            .any(|word| chain.contains(word));
        if tls {
            format!(
                "the TLS connection to {server} failed ({error}); if the server's certificate is self-signed or from a private CA, pass it with --ca-cert or APITRAIL_CA_CERT, and use https:// only when the server has [tls] configured"
            )
        } else {
            format!(
                "cannot reach the server at {server} ({error}); is `apitrail serve` running, or did you mean --data-dir?"
            )
        }
    }

    /// Returns the fix a command-line user can apply to a 401 or 403 response.
    fn auth_hint(status: reqwest::StatusCode) -> &'static str {
        match status {
            reqwest::StatusCode::UNAUTHORIZED => {
                "; pass a token's secret with --token or APITRAIL_TOKEN"
            }
            reqwest::StatusCode::FORBIDDEN => "; use a token that has the role this command needs",
            _ => "",
        }
    }

    /// Builds an HTTP client that sends the token, if one was given, with every request.
    fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder();
        if let Some(token) = &self.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    anyhow::anyhow!("the token contains characters a header cannot hold")
                })?;
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading the CA file {}: {e}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                anyhow::anyhow!("{} contains no valid PEM certificate: {e}", path.display())
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        builder
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Import(args) => cli::import::run(args).await,
            Command::Query(args) => cli::query::run(args).await,
            Command::Simulate(args) => cli::simulate::run(args).await,
            Command::Spec(args) => cli::spec::run(args).await,
            Command::Token(args) => cli::token::run(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
