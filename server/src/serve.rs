//! `apitrail serve`: open the store, start the flusher and the HTTP API, stop cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apitrail_query::{QueryEngine, ViewOptions};
use apitrail_storage::Store;
use apitrail_storage::documents::DocumentStore;
use apitrail_storage::object_stores::{redact_options, redact_url};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

use crate::auth::{Authenticator, TokenStore};
use crate::config::ServerConfig;
use crate::http::{AppState, router};
use crate::pipeline::IngestPipeline;
use crate::tls::TlsSettings;

/// Flags of `apitrail serve`; each overrides the configuration file.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "APITRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./apitrail-data].
    #[arg(long, env = "APITRAIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:7070].
    #[arg(long, env = "APITRAIL_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// Address of the Arrow Flight SQL service [default: 127.0.0.1:7071].
    #[arg(long, env = "APITRAIL_FLIGHT_ADDR")]
    flight_addr: Option<SocketAddr>,
    /// Address of the PostgreSQL wire protocol service [default: 127.0.0.1:5433].
    #[arg(long, env = "APITRAIL_PG_ADDR")]
    pg_addr: Option<SocketAddr>,
    /// Address of the OpenTelemetry OTLP/gRPC receiver [default: 127.0.0.1:4317].
    #[arg(long, env = "APITRAIL_OTLP_GRPC_ADDR")]
    otlp_grpc_addr: Option<SocketAddr>,
    /// Address of the OpenTelemetry OTLP/HTTP receiver [default: 127.0.0.1:4318].
    #[arg(long, env = "APITRAIL_OTLP_HTTP_ADDR")]
    otlp_http_addr: Option<SocketAddr>,
    /// URL or path of the events table [default: <data-dir>/table].
    #[arg(long, env = "APITRAIL_STORE")]
    store: Option<String>,
    /// Flush the write buffer when its oldest event has waited this many seconds [default: 30].
    #[arg(long, env = "APITRAIL_FLUSH_MAX_AGE_SECS")]
    flush_max_age_secs: Option<f64>,
    /// Flush the write buffer at this many rows [default: 1000000].
    #[arg(long, env = "APITRAIL_FLUSH_MAX_ROWS")]
    flush_max_rows: Option<usize>,
    /// Largest ingest body in bytes, as sent [default: 4 GiB].
    #[arg(long, env = "APITRAIL_MAX_BODY_BYTES")]
    max_body_bytes: Option<u64>,
    /// Require a token on loopback listeners too, even before any token exists.
    #[arg(long, env = "APITRAIL_AUTH_REQUIRED")]
    auth_required: bool,
    /// PEM file with the server certificate, then any intermediates. With --tls-key, it turns on TLS for HTTP, Flight SQL, PostgreSQL and the OTLP receivers.
    #[arg(long, env = "APITRAIL_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key file of --tls-cert.
    #[arg(long, env = "APITRAIL_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Memory one query may use, in bytes; 0 for no per-query limit [default: 1 GiB].
    #[arg(long, env = "APITRAIL_QUERY_MAX_MEMORY_BYTES")]
    query_max_memory_bytes: Option<usize>,
    /// Rows a query result may have before it is cut; 0 for no limit [default: 0].
    #[arg(long, env = "APITRAIL_QUERY_MAX_ROWS")]
    query_max_rows: Option<u64>,
    /// Bytes of data files one query may scan; 0 for no limit [default: 0].
    #[arg(long, env = "APITRAIL_QUERY_MAX_SCAN_BYTES")]
    query_max_scan_bytes: Option<u64>,
    /// Log lines as JSON objects instead of text.
    #[arg(long, env = "APITRAIL_LOG_JSON")]
    log_json: bool,
}

impl ServeArgs {
    fn resolve(&self) -> anyhow::Result<ServerConfig> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.http_addr {
            config.http_addr = v;
        }
        if let Some(v) = self.flight_addr {
            config.flight_addr = v;
        }
        if let Some(v) = self.pg_addr {
            config.pg_addr = v;
        }
        if let Some(v) = self.otlp_grpc_addr {
            config.otlp_grpc_addr = v;
        }
        if let Some(v) = self.otlp_http_addr {
            config.otlp_http_addr = v;
        }
        if let Some(v) = &self.store {
            config.store = Some(v.clone());
        }
        if let Some(v) = self.flush_max_age_secs {
            config.flush_max_age_secs = v;
        }
        if let Some(v) = self.flush_max_rows {
            config.flush_max_rows = v;
        }
        if let Some(v) = self.max_body_bytes {
            config.max_body_bytes = v;
        }
        if self.auth_required {
            config.auth.required = true;
        }
        if let Some(v) = &self.tls_cert {
            config.tls.cert_file = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            config.tls.key_file = Some(v.clone());
        }
        if let Some(v) = self.query_max_memory_bytes {
            config.query_max_memory_bytes = v;
        }
        if let Some(v) = self.query_max_rows {
            config.query_max_rows = v;
        }
        if let Some(v) = self.query_max_scan_bytes {
            config.query_max_scan_bytes = v;
        }
        if let Ok(key) = std::env::var("APITRAIL_SECRET_KEY") {
            config.secret_key = Some(key);
        }
        Ok(config)
    }
}

/// Log filter when `RUST_LOG` is unset: apitrail at `info`, the Delta
/// libraries only when they warn, since they log every snapshot load.
const DEFAULT_LOG_FILTER: &str = "info,deltalake=warn,deltalake_core=warn,deltalake_core::writer::stats=error,delta_kernel=warn,buoyant_kernel=warn";

/// Installs the tracing subscriber; `RUST_LOG` sets the filter.
pub fn init_tracing(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing(args.log_json);
    let config = args.resolve()?;
    let tls = TlsSettings::load(&config.tls)?;
    let store_config = config.store_config()?;
    match &tls {
        Some(tls) => tracing::info!(
            cert_file = %tls.cert_file().display(),
            "TLS is on for the HTTP, Flight SQL, PostgreSQL and OTLP listeners"
        ),
        None => tracing::info!("TLS is off: no [tls] certificate and key are configured"),
    }
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus metrics recorder")?;

    tracing::info!(
        events_table = %redact_url(&store_config.table_url),
        views_table = %redact_url(&store_config.views_url),
        storage_options = ?redact_options(&store_config.storage_options),
        "opening the store"
    );
    let documents = DocumentStore::open(&store_config.views_url, &store_config.storage_options)?;
    let store = Store::open(store_config).await?;
    let pipeline = Arc::new(IngestPipeline::load(&config, documents).await?);
    let limits = config.query_limits();
    let view_options = ViewOptions {
        orphan_window_days: config.views.orphan_window_days,
        baseline_window_weeks: config.views.baseline_window_weeks,
        all_grain_cache_bytes: config.views.all_grain_cache_bytes,
    };
    let engine = QueryEngine::new(
        Arc::clone(&store),
        &limits,
        &pipeline.inventory,
        &view_options,
    )
    .await?;
    let flusher = store.spawn_flusher();
    let refresher = store.spawn_refresher(Duration::from_secs_f64(config.refresh_interval_secs));
    let maintenance = store.spawn_maintenance();
    let saver = pipeline.spawn_saver();

    let tokens = Arc::new(TokenStore::open(&config.data_dir)?);
    let authenticator =
        |addr: SocketAddr| Authenticator::new(Arc::clone(&tokens), addr, config.auth.required);
    log_auth_policy(&config, authenticator);

    let state = AppState {
        store: Arc::clone(&store),
        engine: engine.clone(),
        pipeline: Arc::clone(&pipeline),
        metrics: Some(metrics),
        max_body_bytes: config.max_body_bytes,
        query_timeout: Duration::from_secs(config.query_timeout_secs),
    };
    // Listen for SIGTERM before announcing the address, so a signal sent as
    // soon as the address is known still gets a clean shutdown.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding the HTTP address {}", config.http_addr))?;
    let local = listener.local_addr()?;

    // Stops the protocol servers other than HTTP when HTTP stops.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let flight_listener = tokio::net::TcpListener::bind(config.flight_addr)
        .await
        .with_context(|| format!("binding the Flight SQL address {}", config.flight_addr))?;
    let flight_addr = flight_listener.local_addr()?;
    let flight_options = crate::flight::FlightOptions {
        query_timeout: Duration::from_secs(config.query_timeout_secs),
    };
    let flight_server = crate::flight::server_builder(tls.as_ref().map(TlsSettings::grpc_config))?;
    let flight = tokio::spawn(crate::flight::serve(
        flight_server,
        flight_listener,
        engine.clone(),
        flight_options,
        authenticator(flight_addr),
        shutdown.clone(),
    ));
    let flight_scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    tracing::info!(flight_addr = %flight_addr, tls = tls.is_some(), "Flight SQL is serving");
    println!("apitrail flight sql listening on {flight_scheme}://{flight_addr}");

    let pg_options = crate::pg::PgOptions {
        query_timeout: state.query_timeout,
        auth: authenticator(config.pg_addr),
        password_method: config.auth.pg_password_method,
        tls: tls.as_ref().map(TlsSettings::pg_acceptor),
    };
    let pg = crate::pg::PgServer::bind(config.pg_addr, &engine, pg_options).await?;
    let pg_local = pg.local_addr()?;
    tracing::info!(pg_addr = %pg_local, tls = tls.is_some(), "PostgreSQL wire protocol is serving");
    // Plain connections stay allowed with TLS on, as in PostgreSQL, so the
    // suffix shows that TLS is offered rather than required.
    let pg_suffix = if tls.is_some() { " (tls)" } else { "" };
    println!("apitrail postgres listening on {pg_local}{pg_suffix}");
    let pg = pg.spawn();

    let http_scheme = if tls.is_some() { "https" } else { "http" };
    let otlp = start_otlp(
        &config,
        &store,
        &pipeline,
        tls.as_ref(),
        &authenticator,
        &shutdown,
    )
    .await?;
    // OTLP exporters take http:// or https:// endpoints for gRPC too.
    println!(
        "apitrail otlp grpc listening on {http_scheme}://{}",
        otlp.grpc_addr
    );
    println!(
        "apitrail otlp http listening on {http_scheme}://{}",
        otlp.http_addr
    );

    tracing::info!(http_addr = %local, tls = tls.is_some(), data_dir = %config.data_dir.display(), "apitrail is serving");
    // Scripts and tests that bind port 0 read the real address from this line.
    println!("apitrail listening on {http_scheme}://{local}");

    match &tls {
        Some(tls) => {
            crate::https::serve(
                listener,
                tls.http_acceptor(),
                router(state, authenticator(local)),
                shutdown_signal(terminate),
            )
            .await;
        }
        None => axum::serve(
            listener,
            router(state, authenticator(local)).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal(terminate))
        .await
        .context("serving HTTP")?,
    }
    pg.stop().await;

    shutdown.cancel();
    match flight.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the Flight SQL server failed"),
        Err(e) => tracing::error!(error = %e, "the Flight SQL server task failed"),
    }
    otlp.stopped().await;
    flusher.abort();
    refresher.abort();
    maintenance.abort();
    saver.abort();
    tracing::info!("stopping: flushing the write buffer");
    store.shutdown().await?;
    pipeline
        .save_learned()
        .await
        .context("saving the templater state at shutdown")?;
    Ok(ExitCode::SUCCESS)
}

/// Logs, per listener, whether clients need a token.
fn log_auth_policy(config: &ServerConfig, authenticator: impl Fn(SocketAddr) -> Authenticator) {
    for (protocol, addr) in [
        ("http", config.http_addr),
        ("flight", config.flight_addr),
        ("postgres", config.pg_addr),
        ("otlp_grpc", config.otlp_grpc_addr),
        ("otlp_http", config.otlp_http_addr),
    ] {
        let auth = authenticator(addr);
        let required = auth.required();
        let count = auth.tokens().current().len();
        tracing::info!(protocol, %addr, token_required = required, tokens = count, "authentication");
        if required && count == 0 {
            tracing::warn!(
                protocol, %addr,
                "this listener requires a token but none exists; create one with \
                 `apitrail token create NAME --role read`"
            );
        }
    }
}

/// The running OTLP receivers.
struct OtlpListeners {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    grpc: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl OtlpListeners {
    /// Waits for both receivers to stop after `shutdown` was cancelled, and logs failures.
    async fn stopped(self) {
        for (name, task) in [("OTLP/gRPC", self.grpc), ("OTLP/HTTP", self.http)] {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = format!("{e:#}"), "the {name} receiver failed")
                }
                Err(e) => tracing::error!(error = %e, "the {name} receiver task failed"),
            }
        }
    }
}

/// Binds and starts the OTLP/gRPC and OTLP/HTTP receivers, which stop when `shutdown` fires.
async fn start_otlp(
    config: &ServerConfig,
    store: &Arc<Store>,
    pipeline: &Arc<IngestPipeline>,
    tls: Option<&TlsSettings>,
    authenticator: &impl Fn(SocketAddr) -> Authenticator,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<OtlpListeners> {
    let receiver = crate::otlp::Receiver::new(Arc::clone(store), Arc::clone(pipeline));

    let grpc_listener = bind(config.otlp_grpc_addr, "OTLP/gRPC", "--otlp-grpc-addr").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let grpc_server = crate::otlp::grpc::server_builder(tls.map(TlsSettings::grpc_config))?;
    let grpc = tokio::spawn(crate::otlp::grpc::serve(
        grpc_server,
        grpc_listener,
        receiver.clone(),
        authenticator(grpc_addr),
        shutdown.clone(),
    ));
    tracing::info!(otlp_grpc_addr = %grpc_addr, tls = tls.is_some(), "OTLP/gRPC receiver is serving");

    let http_listener = bind(config.otlp_http_addr, "OTLP/HTTP", "--otlp-http-addr").await?;
    let http_addr = http_listener.local_addr()?;
    let router = crate::otlp::http::router(receiver, authenticator(http_addr));
    let stop = shutdown.clone().cancelled_owned();
    let http = match tls {
        Some(tls) => {
            let acceptor = tls.http_acceptor();
            tokio::spawn(async move {
                crate::https::serve(http_listener, acceptor, router, stop).await;
                Ok(())
            })
        }
        None => tokio::spawn(async move {
            axum::serve(
                http_listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop)
            .await
            .context("serving OTLP/HTTP")
        }),
    };
    tracing::info!(otlp_http_addr = %http_addr, tls = tls.is_some(), "OTLP/HTTP receiver is serving");

    Ok(OtlpListeners {
        grpc_addr,
        http_addr,
        grpc,
        http,
    })
}

/// Binds a listener, naming the flag that moves it when the address is taken.
async fn bind(addr: SocketAddr, name: &str, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {name} address {addr}; set {flag} to a free address"))
}

async fn shutdown_signal(mut terminate: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested");
}
