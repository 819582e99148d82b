//! `apitrail query`: run SQL through a server or on a data directory and print a table.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use apitrail_query::{QueryEngine, QueryLimits, ViewOptions};
use apitrail_storage::documents::DocumentStore;
use apitrail_storage::{Store, StoreConfig};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;

use crate::Target;
use crate::config::ServerConfig;
use crate::pipeline::load_inventory;

#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    target: Target,
    /// The SQL query.
    sql: String,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let batches = match args.target.server_url() {
        Some(server) => query_server(&args.target.http_client()?, &server, &args.sql).await?,
        None => {
            let data_dir = args
                .target
                .data_dir
                .clone()
                .expect("no server URL means a data directory");
            if !data_dir.is_dir() {
                bail!("data directory {} not found", data_dir.display());
            }
            query_data_dir(StoreConfig::for_data_dir(data_dir)?, &args.sql).await?
        }
    };
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let table = arrow::util::pretty::pretty_format_batches(&batches)?;
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{table}")
        .and_then(|()| writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" }));
    match written {
        // A reader such as `head` that stops early is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        result => {
            result.context("writing the result")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn query_server(
    client: &reqwest::Client,
    server: &str,
    sql: &str,
) -> anyhow::Result<Vec<RecordBatch>> {
    let response = client
        .post(format!("{server}/api/v1/query?output=arrow"))
        .json(&serde_json::json!({ "sql": sql }))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(crate::Target::connect_error(server, &e)))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the query result")?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("{message}{}", crate::Target::auth_hint(status));
    }
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
        .context("decoding the Arrow result")?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

async fn query_data_dir(config: StoreConfig, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let documents = DocumentStore::open(&config.views_url, &config.storage_options)?;
    let inventory = load_inventory(&ServerConfig::default(), &documents).await?;
    let store = Store::open_read_only(config).await?;
    let engine = QueryEngine::new(
        Arc::clone(&store),
        &QueryLimits::default(),
        &inventory,
        &ViewOptions::default(),
    )
    .await?;
    let stream = engine.execute(sql).await?;
    Ok(stream.try_collect().await?)
}
