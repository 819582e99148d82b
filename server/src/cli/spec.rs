//! `apitrail spec load`: load an OpenAPI 3 or Swagger 2 document.
//!
//! Through a server the document goes to `POST /api/v1/specs`. With a data
//! directory (no server may run on it) the catalog document on the store is
//! read, extended by the new revision and written back.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use apitrail_storage::documents::DocumentStore;

use crate::Target;
use crate::config::ServerConfig;
use crate::pipeline::{IngestPipeline, load_outcome_json};

#[derive(Debug, Clone, clap::Args)]
pub struct SpecArgs {
    #[command(subcommand)]
    command: SpecCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum SpecCommand {
    /// Load a document as the next revision of a named API description.
    Load(LoadArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct LoadArgs {
    #[command(flatten)]
    target: Target,
    /// Name that keeps the revisions of one API apart [default: the file name without extension].
    #[arg(long)]
    name: Option<String>,
    /// OpenAPI 3.0/3.1 or Swagger 2.0 document, JSON or YAML.
    file: PathBuf,
}

pub async fn run(args: SpecArgs) -> anyhow::Result<ExitCode> {
    let SpecCommand::Load(args) = args.command;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .context("the file has no name; give one with --name")?,
    };
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let outcome = match args.target.server_url() {
        Some(server) => load_via_server(&args.target.http_client()?, &server, &name, bytes).await?,
        None => {
            let data_dir = args
                .target
                .data_dir
                .clone()
                .expect("no server URL means a data directory");
            load_into_data_dir(data_dir, &name, &bytes).await?
        }
    };
    println!(
        "{name}: {} (revision {}, {} operations, {} deprecated, {} added, {} removed)",
        outcome["outcome"].as_str().unwrap_or("loaded"),
        outcome["revision"],
        outcome["operations"],
        outcome["deprecated_operations"],
        outcome["added_operations"],
        outcome["removed_operations"],
    );
    Ok(ExitCode::SUCCESS)
}

async fn load_via_server(
    client: &reqwest::Client,
    server: &str,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<serde_json::Value> {
    let response = client
        .post(format!("{server}/api/v1/specs"))
        .query(&[("name", name)])
        .body(bytes)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(crate::Target::connect_error(server, &e)))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("reading the server's answer")?;
    if !status.is_success() {
        bail!(
            "{}{}",
            body["error"]
                .as_str()
                .unwrap_or("the server rejected the document"),
            crate::Target::auth_hint(status)
        );
    }
    Ok(body)
}

async fn load_into_data_dir(
    data_dir: PathBuf,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<serde_json::Value> {
    let config = ServerConfig {
        data_dir,
        secret_key: std::env::var("APITRAIL_SECRET_KEY").ok(),
        ..ServerConfig::default()
    };
    let store_config = config.store_config()?;
    // The lock keeps a running server from overwriting the catalog it has in memory.
    let _lock = apitrail_storage::lock::DirLock::acquire(&config.data_dir)?;
    let documents = DocumentStore::open(&store_config.views_url, &store_config.storage_options)?;
    let pipeline = IngestPipeline::load(&config, documents).await?;
    let loaded_at = chrono::Utc::now().timestamp_micros();
    let outcome = pipeline
        .inventory
        .specs
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .load_document(name, bytes, loaded_at)?;
    pipeline.save_specs().await?;
    Ok(load_outcome_json(name, &outcome))
}
