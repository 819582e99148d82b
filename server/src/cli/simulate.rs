//! `apitrail simulate`: writes labelled synthetic partner traffic, with its
//! ground truth, to a file or to a running server.
//!
//! The events come from [`apitrail_ingest::simulate`], drawn on a blocking
//! thread. Through a server they are cut at record boundaries into bodies
//! of at most `--batch-bytes` and posted one at a time to
//! `/api/v1/ingest`. Each batch id is made of the batch number and the
//! SHA-256 of the body, so a retried or repeated run of the same options
//! adds nothing, and a run with other options never collides with it.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use apitrail_ingest::simulate::{
    Progress, ScenarioSelection, ScenarioSpec, Simulation, SimulationOptions, Summary, TruthRecord,
    encode, write_truth,
};
use apitrail_ingest::{Format, IngestReport};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::Target;

/// How long one ingest request may take before it is sent again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Attempts of one batch before the command gives up.
const ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Format of the events: aws_apigateway, kong, otlp or aws_alb.
    #[arg(long, default_value = "aws_apigateway")]
    format: String,
    /// Seed of every random choice; the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of simulated weeks, 1 to 52.
    #[arg(long, default_value_t = 5)]
    weeks: u32,
    /// Number of partners, 1 to 150.
    #[arg(long, default_value_t = 30)]
    partners: usize,
    /// First simulated day, YYYY-MM-DD; the simulation starts at 00:00 UTC.
    #[arg(long, default_value = "2025-04-07")]
    start: String,
    /// Multiplier of every partner's volume, above 0 and at most 100.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Scenarios to inject, comma-separated, each NAME[:partner=ID][:start=RFC3339],
    /// or `none`. Every scenario once when absent.
    #[arg(long)]
    scenarios: Option<String>,
    /// File to write the events to, or `-` for standard output.
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    output: Option<PathBuf>,
    /// URL of a running apitrail server to send the events to, such as http://127.0.0.1:7070.
    #[arg(long)]
    server: Option<String>,
    /// Secret of an access token, sent to the server as a Bearer token.
    #[arg(long, env = "APITRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the CA (or the self-signed certificate) that an https --server uses.
    #[arg(long, env = "APITRAIL_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Largest body of one ingest request to --server, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    batch_bytes: usize,
    /// File to write the ground truth to: one JSON line per injected scenario.
    #[arg(long)]
    truth: PathBuf,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let format: Format = args.format.parse()?;
    encode::check_format(format)?;
    let options = simulation_options(&args)?;
    let simulation = Arc::new(Simulation::new(&options)?);
    let bar = progress_bar(&simulation);

    let (summary, destination) = match (&args.output, &args.server) {
        (Some(path), _) => {
            let summary =
                write_to_file(simulation.clone(), format, path.clone(), bar.clone()).await?;
            (summary, describe_output(path))
        }
        (None, Some(server)) => {
            let url = server.trim_end_matches('/').to_string();
            let summary =
                send_to_server(&args, simulation.clone(), format, &url, bar.clone()).await?;
            (summary, url)
        }
        (None, None) => bail!("pass --output FILE (or -) or --server URL"),
    };
    bar.finish_and_clear();

    save_truth(&args.truth, &summary.truth)?;
    print_summary(&summary, format, &destination, &args.truth);
    Ok(ExitCode::SUCCESS)
}

fn simulation_options(args: &SimulateArgs) -> anyhow::Result<SimulationOptions> {
    Ok(SimulationOptions {
        seed: args.seed,
        start: parse_date(&args.start)?,
        weeks: args.weeks,
        partners: args.partners,
        scale: args.scale,
        scenarios: parse_scenarios(args.scenarios.as_deref())?,
    })
}

/// Parses `YYYY-MM-DD`; the simulation checks that the date exists.
fn parse_date(text: &str) -> anyhow::Result<(i64, u32, u32)> {
    let invalid =
        || anyhow::anyhow!("invalid --start {text:?}: expected a date such as 2025-04-07");
    let mut parts = text.trim().splitn(3, '-');
    let year = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let month = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let day = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    Ok((year, month, day))
}

fn parse_scenarios(text: Option<&str>) -> anyhow::Result<ScenarioSelection> {
    let Some(text) = text else {
        return Ok(ScenarioSelection::Default);
    };
    if text.trim() == "none" {
        return Ok(ScenarioSelection::None);
    }
    let mut specs = Vec::new();
    for item in text.split(',') {
        if item.trim().is_empty() {
            bail!("--scenarios {text:?} has an empty entry; separate names with single commas");
        }
        specs.push(item.parse::<ScenarioSpec>()?);
    }
    Ok(ScenarioSelection::List(specs))
}

fn progress_bar(simulation: &Simulation) -> ProgressBar {
    let world = simulation.world();
    let days = ((world.end_ms - world.start_ms) / 86_400_000).max(1) as u64;
    let bar = ProgressBar::new(days);
    bar.set_style(
        ProgressStyle::with_template("simulating [{bar:30}] day {pos}/{len} {msg} {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar
}

fn report_progress(bar: &ProgressBar, progress: Progress) {
    bar.set_position(u64::from(progress.days_done));
    bar.set_message(format!("{} events", progress.events));
}

fn describe_output(path: &Path) -> String {
    if path == Path::new("-") {
        "standard output".to_string()
    } else {
        path.display().to_string()
    }
}

async fn write_to_file(
    simulation: Arc<Simulation>,
    format: Format,
    path: PathBuf,
    bar: ProgressBar,
) -> anyhow::Result<Summary> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<Summary> {
        let mut progress = |progress: Progress| report_progress(&bar, progress);
        if path == Path::new("-") {
            let stdout = io::stdout();
            let mut writer = BufWriter::with_capacity(1 << 20, stdout.lock());
            return Ok(simulation.write(format, &mut writer, &mut progress)?);
        }
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let summary = simulation
            .write(format, &mut writer, &mut progress)
            .with_context(|| format!("writing {}", path.display()))?;
        writer
            .flush()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(summary)
    })
    .await
    .context("the simulation thread failed")?
}

/// Collects written records into bodies of about `limit` bytes, cut after a
/// newline, and hands each full body to the sending task.
struct BatchWriter {
    sender: mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
    limit: usize,
}

impl BatchWriter {
    fn send(&mut self, body: Vec<u8>) -> io::Result<()> {
        self.sender
            .blocking_send(body)
            .map_err(|_| io::Error::other("the upload to the server stopped"))
    }

    /// Sends what is left.
    fn finish(mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let body = std::mem::take(&mut self.buffer);
        self.send(body)
    }
}

impl Write for BatchWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= self.limit
            && let Some(end) = self.buffer.iter().rposition(|&byte| byte == b'\n')
        {
            let rest = self.buffer.split_off(end + 1);
            let body = std::mem::replace(&mut self.buffer, rest);
            self.send(body)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts over every batch sent.
#[derive(Debug, Default)]
struct Upload {
    batches: u64,
    replayed: u64,
    accepted: u64,
    rejected: u64,
}

async fn send_to_server(
    args: &SimulateArgs,
    simulation: Arc<Simulation>,
    format: Format,
    url: &str,
    bar: ProgressBar,
) -> anyhow::Result<Summary> {
    if args.batch_bytes == 0 {
        bail!("--batch-bytes must be at least 1");
    }
    let target = Target {
        server: Some(url.to_string()),
        data_dir: None,
        token: args.token.clone(),
        ca_cert: args.ca_cert.clone(),
    };
    let client = target.http_client()?;
    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(2);
    let limit = args.batch_bytes;
    let generator = tokio::task::spawn_blocking(move || -> anyhow::Result<Summary> {
        let mut writer = BatchWriter {
            sender,
            buffer: Vec::with_capacity(limit.min(64 << 20) + 4096),
            limit,
        };
        let mut progress = |progress: Progress| report_progress(&bar, progress);
        let summary = simulation.write(format, &mut writer, &mut progress)?;
        writer.finish()?;
        Ok(summary)
    });

    let mut upload = Upload::default();
    while let Some(body) = receiver.recv().await {
        let batch_id = batch_id(upload.batches, &body);
        let (report, replayed) = post_batch(&client, url, format, &batch_id, body).await?;
        upload.batches += 1;
        upload.replayed += u64::from(replayed);
        upload.accepted += report.accepted;
        upload.rejected += report.rejected;
        if report.rejected > 0 {
            for error in report.errors.iter().take(3) {
                eprintln!("batch {batch_id}: line {}: {}", error.line, error.reason);
            }
        }
    }
    let summary = generator.await.context("the simulation thread failed")??;
    eprintln!(
        "sent {} batches to {url}: {} accepted, {} rejected; {} batches were stored before and added nothing",
        upload.batches, upload.accepted, upload.rejected, upload.replayed
    );
    if upload.rejected > 0 {
        bail!("the server rejected {} simulated events", upload.rejected);
    }
    Ok(summary)
}

/// `simulate-<number>-<first 32 hex digits of the body's SHA-256>`.
fn batch_id(number: u64, body: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(body));
    format!("simulate-{number}-{}", &hash[..32])
}

/// Posts one batch, retrying transport failures, 429 and 5xx with backoff.
async fn post_batch(
    client: &reqwest::Client,
    url: &str,
    format: Format,
    batch_id: &str,
    body: Vec<u8>,
) -> anyhow::Result<(IngestReport, bool)> {
    let body = bytes::Bytes::from(body);
    let mut last_error = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            let delay = Duration::from_secs(1 << (attempt - 1));
            eprintln!("batch {batch_id}: {last_error}; sending it again in {delay:?}");
            tokio::time::sleep(delay).await;
        }
        let response = client
            .post(format!("{url}/api/v1/ingest"))
            .query(&[
                ("format", format.name()),
                ("batch_id", batch_id),
                ("source", "apitrail-simulate"),
            ])
            .timeout(REQUEST_TIMEOUT)
            .body(body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                last_error = Target::connect_error(url, &error);
                continue;
            }
        };
        let status = response.status();
        let replayed = response
            .headers()
            .get("apitrail-batch-replayed")
            .is_some_and(|value| value == "true");
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            let report: IngestReport = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the server: {text}"))?;
            return Ok((report, replayed));
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|body| body["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        last_error = format!("the server answered {status}: {message}");
        if !(status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) {
            bail!(
                "batch {batch_id}: {last_error}{}",
                Target::auth_hint(status)
            );
        }
    }
    bail!("batch {batch_id} failed {ATTEMPTS} times; the last error: {last_error}")
}

fn save_truth(path: &Path, records: &[TruthRecord]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create the truth file {}", path.display()))?;
    let mut writer = BufWriter::new(file);
    write_truth(records, &mut writer)
        .and_then(|()| writer.flush())
        .with_context(|| format!("writing the truth file {}", path.display()))
}

fn print_summary(summary: &Summary, format: Format, destination: &str, truth: &Path) {
    eprintln!(
        "simulated {} events in {} records, {} bytes of {format}, to {destination}",
        summary.events, summary.records, summary.bytes
    );
    for record in &summary.truth {
        eprintln!(
            "  {} on {} ({}), consumer {}, {} to {}, {} events",
            record.scenario,
            record.partner,
            record.app,
            record.consumer,
            record.start,
            record.end,
            record.events
        );
    }
    eprintln!(
        "ground truth of {} scenarios in {}",
        summary.truth.len(),
        truth.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_writer_cuts_after_newline() {
        let (sender, mut receiver) = mpsc::channel(16);
        let mut writer = BatchWriter {
            sender,
            buffer: Vec::new(),
            limit: 10,
        };
        writer
            .write_all(b"first line\nsecond line\n")
            .expect("sent");
        writer.write_all(b"x\n").expect("buffered");
        writer.finish().expect("sent");
        let mut bodies = Vec::new();
        while let Ok(body) = receiver.try_recv() {
            bodies.push(body);
        }
        assert_eq!(
            bodies,
            vec![b"first line\nsecond line\n".to_vec(), b"x\n".to_vec()]
        );
    }

    #[test]
    fn batch_id_follows_content() {
        assert_eq!(batch_id(3, b"a"), batch_id(3, b"a"));
        assert_ne!(batch_id(3, b"a"), batch_id(3, b"b"));
        assert!(batch_id(0, b"").starts_with("simulate-0-"));
    }

    #[test]
    fn scenarios_parse() {
        assert_eq!(parse_scenarios(None).ok(), Some(ScenarioSelection::Default));
        assert_eq!(
            parse_scenarios(Some("none")).ok(),
            Some(ScenarioSelection::None)
        );
        let Ok(ScenarioSelection::List(specs)) =
            parse_scenarios(Some("volume_spike,leaked_key:partner=p02"))
        else {
            panic!("a valid list");
        };
        assert_eq!(specs.len(), 2);
        assert!(parse_scenarios(Some("volume_spike,,leaked_key")).is_err());
        assert!(parse_scenarios(Some("tea_party")).is_err());
    }

    #[test]
    fn dates_parse() {
        assert_eq!(parse_date("2025-04-07").ok(), Some((2025, 4, 7)));
        assert!(parse_date("April").is_err());
    }
}
