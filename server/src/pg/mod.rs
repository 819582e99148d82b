//! PostgreSQL wire protocol front-end on `--pg-addr`.
//!
//! Built on `datafusion-postgres` (pgwire for the protocol, arrow-pg for
//! text and binary encoding, datafusion-pg-catalog for `pg_catalog`).
//! Connections share one DataFusion session, separate from the one the HTTP
//! API uses, that reads the same `apitrail.public` tables and functions plus
//! `pg_catalog` and the PostgreSQL compatibility functions.
//!
//! - [`startup`]: login (SCRAM-SHA-256 or a password over TLS) and startup parameters.
//! - [`handlers`]: query execution, cancellation, the per-query memory and
//!   row limits, logs, metrics.
//! - [`notices`]: the WARNING sent after a result cut at the row limit.
//! - [`hooks`]: the read-only rule and session statements.
//! - [`settings`]: reported settings and `version()`/`current_setting()`.
//! - [`compat`], [`functions`], [`catalog`]: statement rewrites, functions
//!   and `pg_catalog` columns that client catalog queries need.
//! - [`errors`]: SQLSTATE codes.

pub mod catalog;
pub mod compat;
pub mod errors;
pub mod functions;
pub mod handlers;
pub mod hooks;
pub mod notices;
pub mod settings;
pub mod startup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apitrail_query::QueryEngine;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::{DfSessionService, QueryHook};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::pg::handlers::{DisconnectTokens, Handlers, QuerySessions};

/// Catalog and schema that hold the apitrail tables, as the engine names them.
const CATALOG: &str = "apitrail";
const SCHEMA: &str = "public";

/// Settings of the PostgreSQL listener.
#[derive(Clone)]
pub struct PgOptions {
    /// Maximum time a statement may run.
    pub query_timeout: Duration,
    /// Token policy of the listener.
    pub auth: crate::auth::Authenticator,
    /// Password method on TLS connections.
    pub password_method: crate::config::PgPasswordMethod,
    /// Acceptor for SSLRequest; `None` declines TLS.
    pub tls: Option<TlsAcceptor>,
}

/// A bound PostgreSQL listener, not yet accepting.
pub struct PgServer {
    listener: TcpListener,
    handlers: Arc<Handlers>,
    tokens: DisconnectTokens,
    /// Acceptor with which pgwire replies 'S' to SSLRequest and runs the
    /// handshake. Without it, pgwire replies 'N', and the client continues in
    /// plain text or closes the connection.
    tls: Option<TlsAcceptor>,
}

/// A running PostgreSQL listener; [`PgHandle::stop`] ends it.
pub struct PgHandle {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl PgServer {
    /// Builds the PostgreSQL session over `engine` and binds `addr`. With
    /// `options.tls`, clients may ask for TLS, and plain connections stay allowed.
    pub async fn bind(
        addr: SocketAddr,
        engine: &QueryEngine,
        options: PgOptions,
    ) -> anyhow::Result<Self> {
        let ctx = Arc::new(build_context(engine)?);
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(hooks::ApitrailHook),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        let service = DfSessionService::new_with_hooks(Arc::clone(&ctx), hooks.clone());
        let sessions = QuerySessions {
            ctx,
            hooks,
            query_memory_bytes: engine.limits().query_memory_bytes,
            max_rows: engine.limits().max_rows,
        };
        let tokens = DisconnectTokens::default();
        let login = startup::LoginPolicy {
            auth: options.auth,
            password_method: options.password_method,
        };
        let handlers = Arc::new(Handlers::new(
            service,
            sessions,
            options.query_timeout,
            Arc::clone(&tokens),
            login,
        ));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the PostgreSQL address {addr}"))?;
        Ok(PgServer {
            listener,
            handlers,
            tokens,
            tls: options.tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts accepting connections on a task of its own.
    pub fn spawn(self) -> PgHandle {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(accept_loop(self, shutdown.clone()));
        PgHandle { shutdown, task }
    }
}

impl PgHandle {
    /// Stops accepting and closes every open connection, which cancels their queries.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the postgres listener task failed");
        }
    }
}

/// Builds the PostgreSQL session: the engine's state (functions, runtime and
/// memory limit, settings, the scan limit rule) over a catalog list of its
/// own, so that `pg_catalog` and the compatibility functions stay out of the
/// HTTP API.
fn build_context(engine: &QueryEngine) -> anyhow::Result<SessionContext> {
    let engine_ctx = engine.context();
    let public = engine_ctx
        .catalog(CATALOG)
        .and_then(|catalog| catalog.schema(SCHEMA))
        .context("the query engine has no apitrail.public schema")?;
    let catalog = Arc::new(MemoryCatalogProvider::new());
    catalog
        .register_schema(SCHEMA, public)
        .context("registering apitrail.public for postgres")?;
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    catalogs.register_catalog(CATALOG.to_owned(), catalog);

    let state = SessionStateBuilder::new_from_existing(engine_ctx.state())
        .with_catalog_list(catalogs)
        .build();
    let ctx = SessionContext::new_with_state(state);
    setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider)
        .map_err(|error| anyhow::anyhow!("setting up pg_catalog: {error}"))?;
    let apitrail = ctx
        .catalog(CATALOG)
        .context("the postgres session has no apitrail catalog")?;
    let pg_catalog = apitrail
        .schema("pg_catalog")
        .context("setup_pg_catalog registered no pg_catalog schema")?;
    apitrail
        .register_schema(
            "pg_catalog",
            Arc::new(catalog::PgCatalogCompat::new(pg_catalog)),
        )
        .context("replacing pg_catalog with its extended tables")?;
    settings::register_functions(&ctx);
    functions::register_functions(&ctx);
    Ok(ctx)
}

async fn accept_loop(server: PgServer, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = server.listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((socket, peer)) => {
                let handlers = Arc::clone(&server.handlers);
                let tokens = Arc::clone(&server.tokens);
                let tls = server.tls.clone();
                connections.spawn(serve_connection(socket, peer, handlers, tokens, tls));
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a postgres connection failed");
                // Usually out of file descriptors: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let open = connections.len();
    connections.shutdown().await;
    tracing::info!(closed_connections = open, "postgres listener stopped");
}

/// Serves one connection, with a watcher that fires the connection's
/// disconnect token when the peer closes the socket, so that a running
/// query stops even while nothing is written to the client.
async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    handlers: Arc<Handlers>,
    tokens: DisconnectTokens,
    tls: Option<TlsAcceptor>,
) {
    let disconnected = CancellationToken::new();
    tokens
        .lock()
        .expect("disconnect token map poisoned")
        .insert(peer, disconnected.clone());
    let watcher = match watch_socket(&socket, disconnected.clone()) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot watch the postgres socket for disconnects");
            None
        }
    };
    if let Err(error) = socket.set_nodelay(true) {
        tracing::debug!(%peer, %error, "setting TCP_NODELAY failed");
    }
    let result = datafusion_postgres::pgwire::tokio::process_socket(socket, tls, handlers).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    tokens
        .lock()
        .expect("disconnect token map poisoned")
        .remove(&peer);
    match result {
        Ok(()) => tracing::info!(%peer, "postgres connection closed"),
        Err(error) => tracing::info!(%peer, %error, "postgres connection ended with an error"),
    }
}

/// Watches a duplicate of the socket's descriptor: peeking, never reading,
/// so the protocol handler still receives every byte. A peek of 0 bytes or
/// an error means the peer closed the connection.
fn watch_socket(
    socket: &TcpStream,
    disconnected: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::fd::AsFd;
    let duplicate = socket.as_fd().try_clone_to_owned()?;
    let std_stream = std::net::TcpStream::from(duplicate);
    std_stream.set_nonblocking(true)?;
    let watched = TcpStream::from_std(std_stream)?;
    Ok(tokio::spawn(async move {
        let mut byte = [0u8; 1];
        loop {
            if watched.readable().await.is_err() {
                break;
            }
            match watched.peek(&mut byte).await {
                Ok(0) | Err(_) => break,
                // Data is waiting for the protocol handler; check again later.
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        disconnected.cancel();
    }))
}
