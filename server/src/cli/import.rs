//! `apitrail import`: load log files through a server or straight into a data directory.
//!
//! Inputs are files, directories, glob patterns and `s3://` URLs
//! ([`inputs`], [`s3`]). Plain, gzip and zstd content is recognised by its
//! first bytes.
//!
//! Through a server, each file is streamed as one ingest request, so the
//! server's WAL makes it durable and line numbers in errors are file lines.
//! Straight into a data directory (no server may run on it), the file itself
//! is the redo log. Its events are written as Parquet and committed in one
//! table version tagged with the file's SHA-256. A crash mid-import leaves
//! nothing half-visible, and a second import of the same content adds
//! nothing, through a server too ([`destination`]).
//!
//! With `--follow`, the command keeps running and sends the lines that
//! files gain, as they are written ([`follow`]).

mod checkpoint;
mod destination;
mod follow;
mod inputs;
mod s3;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use apitrail_ingest::{Format, IngestReport};

use crate::Target;
use destination::{Destination, FileResult, ImportSettings};
use inputs::InputSpec;
use s3::S3Client;

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    target: Target,
    /// Format of the files (see docs/sources.md); detected per file when absent.
    #[arg(long)]
    format: Option<String>,
    /// Mapping of the generic `json` format, from `[[ingest.json_mappings]]`; implies `--format json`.
    #[arg(long)]
    mapping: Option<String>,
    /// Label of the gateway or load balancer that wrote the files.
    #[arg(long)]
    sensor: Option<String>,
    /// URL of an S3-compatible server for s3:// inputs, such as http://127.0.0.1:9000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    s3_endpoint: Option<String>,
    /// Keep running: send the lines that files gain, files that appear in
    /// followed directories or match followed patterns, and new objects under
    /// followed S3 prefixes. Ctrl-C or SIGTERM stops after the current batch.
    #[arg(long)]
    follow: bool,
    /// Checkpoint file of --follow [default: $XDG_STATE_HOME/apitrail/follow-<hash of the server URL>.json
    /// through a server, <data-dir>/follow-checkpoint.json on a data directory].
    #[arg(long, requires = "follow")]
    checkpoint: Option<PathBuf>,
    /// Seconds between two looks at the followed files, directories and prefixes.
    #[arg(long, default_value_t = 1.0, requires = "follow")]
    poll_interval: f64,
    /// Log files, directories (every regular, non-hidden file inside,
    /// recursively), glob patterns such as 'logs/*.gz', or s3://bucket/prefix/
    /// URLs; plain or compressed with gzip or zstd.
    #[arg(required = true)]
    inputs: Vec<OsString>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let settings = ImportSettings {
        format: match args.format.as_deref() {
            Some(name) => Some(name.parse::<Format>()?),
            None => None,
        },
        sensor: args.sensor.clone(),
        mapping: args.mapping.clone(),
    };
    let specs = InputSpec::parse_all(&args.inputs)?;
    let s3 = S3Client::new(args.s3_endpoint.clone());
    let follow_options = if args.follow {
        Some(follow::FollowOptions {
            poll_interval: poll_interval(args.poll_interval)?,
            checkpoint: match &args.checkpoint {
                Some(path) => path.clone(),
                None => default_checkpoint(&args.target)?,
            },
        })
    } else {
        None
    };

    let destination = Destination::open(&args.target).await?;
    let result = match follow_options {
        Some(options) => follow::run(&destination, &settings, &s3, specs, options).await,
        None => import_all(&destination, &settings, &s3, &specs).await,
    };
    destination.close().await?;
    result
}

fn poll_interval(seconds: f64) -> anyhow::Result<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        bail!(
            "--poll-interval must be a number of seconds above 0 and at most 86400, got {seconds}"
        );
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Returns the checkpoint path of a follower that names none.
///
/// Through a server it lies in the user's state directory, one file per
/// server URL; on a data directory it lies inside that directory.
fn default_checkpoint(target: &Target) -> anyhow::Result<PathBuf> {
    let Some(server) = target.server_url() else {
        let data_dir = target
            .data_dir
            .as_ref()
            .expect("no server URL means a data directory");
        return Ok(data_dir.join("follow-checkpoint.json"));
    };
    let state_dir = match std::env::var_os("XDG_STATE_HOME") {
        Some(dir) if PathBuf::from(&dir).is_absolute() => PathBuf::from(dir),
        _ => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/state"),
            None => bail!(
                "neither XDG_STATE_HOME nor HOME is set, so the follower has no default checkpoint; name one with --checkpoint"
            ),
        },
    };
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(server.as_bytes()));
    Ok(state_dir
        .join("apitrail")
        .join(format!("follow-{}.json", &hash[..16])))
}

/// Counts over a whole command.
#[derive(Debug, Default)]
struct Totals {
    imported: u64,
    already_imported: u64,
    failed: u64,
    accepted: u64,
    rejected: u64,
    skipped: u64,
}

impl Totals {
    fn add_report(&mut self, report: &IngestReport) {
        self.accepted += report.accepted;
        self.rejected += report.rejected;
        self.skipped += report.skipped;
    }

    fn line(&self) -> String {
        format!(
            "total: {} files imported, {} already imported, {} failed; {} accepted, {} rejected, {} skipped",
            self.imported,
            self.already_imported,
            self.failed,
            self.accepted,
            self.rejected,
            self.skipped
        )
    }
}

/// Imports every input once, prints a summary per file and a total line.
async fn import_all(
    destination: &Destination,
    settings: &ImportSettings,
    s3: &S3Client,
    specs: &[InputSpec],
) -> anyhow::Result<ExitCode> {
    let mut totals = Totals::default();
    for spec in specs {
        let inputs = match inputs::expand(spec, s3).await {
            Ok(inputs) => inputs,
            Err(e) => {
                eprintln!("{spec}: failed: {e:#}");
                totals.failed += 1;
                continue;
            }
        };
        for input in inputs {
            let result = destination.import(&input, settings).await;
            record_result(&mut totals, &input.name(), result, destination);
        }
    }
    println!("{}", totals.line());
    Ok(if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints one file's summary and adds it to `totals`.
fn record_result(totals: &mut Totals, name: &str, result: FileResult, destination: &Destination) {
    match result {
        FileResult::Imported(report) => {
            println!("{name}: {}", summary(&report));
            print_errors(&report);
            totals.imported += 1;
            totals.add_report(&report);
        }
        FileResult::AlreadyImported => {
            println!("{name}: already imported (same content), skipped");
            totals.already_imported += 1;
        }
        FileResult::Failed(message, report) => {
            eprintln!("{name}: failed: {message}");
            totals.failed += 1;
            if let Some(report) = report {
                eprintln!("{name}: before the failure: {}", summary(&report));
                if destination.keeps_partial_imports() {
                    totals.add_report(&report);
                }
            }
        }
    }
}

fn summary(report: &IngestReport) -> String {
    let mut text = format!(
        "{} accepted, {} rejected, {} skipped",
        report.accepted, report.rejected, report.skipped
    );
    if let Some(format) = &report.format {
        text.push_str(&format!(" (format {format})"));
    }
    for (reason, count) in &report.skipped_reasons {
        text.push_str(&format!("; skipped {count} {reason}"));
    }
    text
}

fn print_errors(report: &IngestReport) {
    const SHOWN: usize = 5;
    for error in report.errors.iter().take(SHOWN) {
        println!("  line {}: {}", error.line, error.reason);
    }
    if report.error_count > SHOWN as u64 {
        println!(
            "  ... {} more; every rejected line is in the rejects file of the data directory",
            report.error_count - SHOWN as u64
        );
    }
}
