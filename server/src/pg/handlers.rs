//! Connection handlers: startup, query execution with cancellation, and errors.
//!
//! Query parsing, planning and result encoding (text and binary) come from
//! `datafusion-postgres`. These handlers wrap it to add the startup
//! parameters, cancellation by CancelRequest, disconnect or time limit,
//! the per-query memory and row limits, SQLSTATE mapping, logs and metrics.

use std::collections::HashMap;
use std::fmt::Debug;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::FieldInfo;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionGuard, ConnectionHandle, ConnectionManager,
    ErrorHandler, PgWireServerHandlers,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::messages::extendedquery::Execute;
use datafusion_postgres::pgwire::messages::simplequery::Query;
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Sink, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::pg::hooks::{read_only_parse_error, statement_kind};
use crate::pg::notices::{NoticeClient, PendingNotices};
use crate::pg::startup::{ApitrailStartup, LoginPolicy};
use crate::pg::{compat, errors};

/// Cause of a running query's early stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    CancelRequest,
    Disconnect,
    Timeout,
}

impl Interruption {
    fn error(self) -> PgWireError {
        let message = match self {
            Interruption::CancelRequest => "canceling statement due to user request",
            Interruption::Disconnect => "canceling statement because the client disconnected",
            Interruption::Timeout => "canceling statement due to statement timeout",
        };
        errors::user_error(errors::QUERY_CANCELED, message)
    }

    fn outcome(self) -> &'static str {
        match self {
            Interruption::CancelRequest => "cancelled",
            Interruption::Disconnect => "disconnected",
            Interruption::Timeout => "timeout",
        }
    }
}

type InterruptFuture = Shared<BoxFuture<'static, Interruption>>;

/// Per-connection state kept in the pgwire session extensions.
pub(super) struct ConnectionState {
    pub(super) cancel_handle: Arc<ConnectionHandle>,
    /// Fired by the socket watcher in `pg::serve_connection` when the peer closes.
    pub(super) disconnected: CancellationToken,
    // Unregisters the connection from the cancel registry when dropped.
    pub(super) _guard: ConnectionGuard,
}

/// Tokens that fire when a peer disconnects, by peer address. The accept
/// loop adds one per connection, and the startup handler moves it into the
/// connection's state.
pub type DisconnectTokens = Arc<Mutex<HashMap<std::net::SocketAddr, CancellationToken>>>;

/// The handler set for one PostgreSQL listener.
pub struct Handlers {
    session: Arc<ApitrailSession>,
    startup: Arc<ApitrailStartup>,
    cancel: Arc<DefaultCancelHandler>,
}

/// Source of each query's session: the PostgreSQL session and its hooks, from which
/// every query gets a session of its own with a memory pool limited to
/// `query_memory_bytes`, and the row limit of results.
pub struct QuerySessions {
    pub ctx: Arc<SessionContext>,
    pub hooks: Vec<Arc<dyn QueryHook>>,
    /// Memory one query may use, in bytes; 0 for no per-query limit.
    pub query_memory_bytes: usize,
    /// Rows after which a result is cut; 0 for no limit.
    pub max_rows: u64,
}

impl QuerySessions {
    /// Returns the `datafusion-postgres` service that runs one query.
    ///
    /// The service plans and executes on the session it was built with, so
    /// a memory pool per query needs a service per query, over a copy of the
    /// shared session's state with the query's own runtime.
    fn service(&self, shared: &Arc<DfSessionService>) -> PgWireResult<Arc<DfSessionService>> {
        if self.query_memory_bytes == 0 {
            return Ok(Arc::clone(shared));
        }
        let state = apitrail_query::limits::query_state(&self.ctx.state(), self.query_memory_bytes)
            .map_err(|error| errors::from_datafusion(&error))?;
        let ctx = Arc::new(SessionContext::new_with_state(state));
        Ok(Arc::new(DfSessionService::new_with_hooks(
            ctx,
            self.hooks.clone(),
        )))
    }
}

impl Handlers {
    pub fn new(
        inner: DfSessionService,
        sessions: QuerySessions,
        query_timeout: Duration,
        tokens: DisconnectTokens,
        login: LoginPolicy,
    ) -> Self {
        let manager = Arc::new(ConnectionManager::new());
        Handlers {
            session: Arc::new(ApitrailSession {
                parser: Arc::new(ApitrailParser {
                    inner: inner.query_parser(),
                }),
                inner: Arc::new(inner),
                sessions,
                query_timeout,
            }),
            startup: Arc::new(ApitrailStartup::new(Arc::clone(&manager), tokens, login)),
            cancel: Arc::new(DefaultCancelHandler::new(manager)),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.session)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.session)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(SqlstateErrorHandler)
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// Sets a SQLSTATE on every error and logs it.
struct SqlstateErrorHandler;

impl ErrorHandler for SqlstateErrorHandler {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        errors::to_user_error(error);
        match error {
            PgWireError::UserError(info) => tracing::info!(
                peer = %client.socket_addr(),
                sqlstate = %info.code,
                error = %info.message,
                "postgres query failed"
            ),
            other => {
                tracing::warn!(peer = %client.socket_addr(), error = %other, "postgres protocol error")
            }
        }
    }
}

/// Query handler: delegates to `datafusion-postgres` and makes the result
/// stop on cancel, disconnect or time limit, and end at the row limit.
pub struct ApitrailSession {
    /// The service whose parser plans extended-protocol statements, and which
    /// runs queries when there is no per-query memory limit.
    inner: Arc<DfSessionService>,
    sessions: QuerySessions,
    parser: Arc<ApitrailParser>,
    query_timeout: Duration,
}

impl ApitrailSession {
    /// Builds the future that resolves when the query must stop. It is shared
    /// by the planning step and by every result stream of the query.
    async fn interruption<C: ClientInfo>(&self, client: &C) -> InterruptFuture {
        let state = client.session_extensions().get::<ConnectionState>();
        let cancel = match &state {
            Some(state) => Some(state.cancel_handle.start_query().await),
            None => None,
        };
        let disconnected = state.map(|state| state.disconnected.clone());
        let timeout = self.query_timeout;
        async move {
            let cancel = async move {
                // An error means a newer query replaced the sender, so this
                // query can no longer be cancelled by request.
                let requested = match cancel {
                    Some(receiver) => receiver.await.is_ok(),
                    None => false,
                };
                if !requested {
                    std::future::pending::<()>().await;
                }
            };
            let disconnect = async move {
                match disconnected {
                    Some(token) => token.cancelled().await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = cancel => Interruption::CancelRequest,
                () = disconnect => Interruption::Disconnect,
                () = tokio::time::sleep(timeout) => Interruption::Timeout,
            }
        }
        .boxed()
        .shared()
    }
}

/// The `datafusion-postgres` parser, with write statements that fail to
/// parse reported as read-only violations, and subqueries over
/// `pg_sequence` folded first (see [`compat::fold_pg_sequence_subqueries`]).
pub struct ApitrailParser {
    inner: Arc<Parser>,
}

#[async_trait]
impl QueryParser for ApitrailParser {
    type Statement = <Parser as QueryParser>::Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let folded = compat::fold_pg_sequence_subqueries(sql);
        let sql = folded.as_deref().unwrap_or(sql);
        self.inner
            .parse_sql(client, sql, types)
            .await
            .map_err(|error| read_only_parse_error(sql, error))
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(statement, column_format)
    }
}

/// Logs and counts one statement when its result is done or dropped.
struct QueryRecord {
    peer: std::net::SocketAddr,
    protocol: &'static str,
    kind: &'static str,
    started: Instant,
    rows: u64,
    outcome: &'static str,
    /// Whether the result was cut at the row limit.
    truncated: bool,
}

impl Drop for QueryRecord {
    fn drop(&mut self) {
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        metrics::counter!(
            "apitrail_pg_queries_total",
            "protocol" => self.protocol,
            "kind" => self.kind,
            "outcome" => self.outcome,
        )
        .increment(1);
        tracing::info!(
            peer = %self.peer,
            protocol = self.protocol,
            kind = self.kind,
            rows = self.rows,
            elapsed_ms,
            outcome = self.outcome,
            truncated = self.truncated,
            "postgres statement"
        );
    }
}

type RowStream = Pin<
    Box<
        dyn Stream<Item = PgWireResult<datafusion_postgres::pgwire::messages::data::DataRow>>
            + Send,
    >,
>;

/// The row limit of one result and the queue for the warning of a cut.
#[derive(Clone)]
struct RowCut {
    /// Rows after which the result is cut; `None` for no limit.
    limit: Option<u64>,
    notices: Arc<PendingNotices>,
}

/// Wraps a result's rows so that they end with a 57014 error when
/// `interrupt` fires, end after `cut.limit` rows with a warning when the
/// result has more, and records the statement when the stream is dropped.
///
/// Ending the stream drops the query's own stream, which stops the query.
/// pgwire then sends CommandComplete with the number of rows sent.
fn guard_rows(
    rows: RowStream,
    interrupt: InterruptFuture,
    record: QueryRecord,
    cut: RowCut,
) -> RowStream {
    let stream = futures::stream::unfold(
        (rows, interrupt, record, false),
        move |(mut rows, mut interrupt, mut record, done)| {
            let cut = cut.clone();
            async move {
                if done {
                    return None;
                }
                tokio::select! {
                    biased;
                    reason = &mut interrupt => {
                        record.outcome = reason.outcome();
                        Some((Err(reason.error()), (rows, interrupt, record, true)))
                    }
                    item = rows.next() => {
                        match &item {
                            Some(Ok(_)) if cut.limit.is_some_and(|limit| record.rows >= limit) => {
                                record.truncated = true;
                                report_cut(&cut, record.rows);
                                return None;
                            }
                            Some(Ok(_)) => record.rows += 1,
                            Some(Err(_)) => record.outcome = "error",
                            None => {}
                        }
                        item.map(|item| (item, (rows, interrupt, record, false)))
                    }
                }
            }
        },
    );
    Box::pin(stream)
}

/// Queues the warning that a result was cut at `rows` rows and counts the cut.
fn report_cut(cut: &RowCut, rows: u64) {
    metrics::counter!("apitrail_query_truncations_total", "protocol" => "postgres").increment(1);
    cut.notices.warn(format!(
        "the result was truncated to {rows} rows by the server's row limit (query_max_rows); \
         add a LIMIT or a narrower WHERE clause to get the rows you need"
    ));
}

/// Statement details for its record, taken before the query borrows the client.
struct QueryStart {
    peer: std::net::SocketAddr,
    protocol: &'static str,
    kind: &'static str,
    started: Instant,
    interrupt: InterruptFuture,
    cut: RowCut,
}

impl QueryStart {
    fn record(&self, outcome: &'static str) -> QueryRecord {
        QueryRecord {
            peer: self.peer,
            protocol: self.protocol,
            kind: self.kind,
            started: self.started,
            rows: 0,
            outcome,
            truncated: false,
        }
    }
}

impl ApitrailSession {
    async fn start<C: ClientInfo>(
        &self,
        client: &C,
        protocol: &'static str,
        sql: &str,
    ) -> QueryStart {
        QueryStart {
            peer: client.socket_addr(),
            protocol,
            kind: statement_kind(sql),
            started: Instant::now(),
            interrupt: self.interruption(client).await,
            cut: RowCut {
                limit: Some(self.sessions.max_rows).filter(|limit| *limit > 0),
                notices: PendingNotices::of(client),
            },
        }
    }
}

/// Runs `query` until it finishes or `start.interrupt` fires, and wraps the
/// rows of each result so that they stop when it fires later.
async fn run_guarded<F>(start: QueryStart, query: F) -> PgWireResult<Vec<Response>>
where
    F: std::future::Future<Output = PgWireResult<Vec<Response>>>,
{
    let result = tokio::select! {
        biased;
        reason = start.interrupt.clone() => {
            drop(start.record(reason.outcome()));
            return Err(reason.error());
        }
        result = query => result,
    };
    let responses = match result {
        Ok(responses) => responses,
        Err(error) => {
            drop(start.record("error"));
            return Err(error);
        }
    };
    let wrapped = responses
        .into_iter()
        .map(|response| match response {
            Response::Query(mut query) => {
                let rows =
                    std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
                query.data_rows = guard_rows(
                    rows,
                    start.interrupt.clone(),
                    start.record("ok"),
                    start.cut.clone(),
                );
                Response::Query(query)
            }
            Response::Error(error) => {
                drop(start.record("error"));
                Response::Error(error)
            }
            other => {
                drop(start.record("ok"));
                other
            }
        })
        .collect();
    Ok(wrapped)
}

#[async_trait]
impl SimpleQueryHandler for ApitrailSession {
    /// Runs pgwire's own handling with a connection that sends the warnings
    /// of cut results after their CommandComplete.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut client = NoticeClient::new(client);
        self._on_query(&mut client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let start = self.start(&*client, "simple", query).await;
        let inner = self.sessions.service(&self.inner)?;
        run_guarded(start, SimpleQueryHandler::do_query(&*inner, client, query))
            .await
            .map_err(|error| read_only_parse_error(query, error))
    }
}

#[async_trait]
impl ExtendedQueryHandler for ApitrailSession {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = ApitrailParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    /// Runs pgwire's own handling with a connection that sends the warnings
    /// of cut results after their CommandComplete.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut client = NoticeClient::new(client);
        self._on_execute(&mut client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let start = self
            .start(&*client, "extended", &portal.statement.statement.0)
            .await;
        let inner = self.sessions.service(&self.inner)?;
        let query = async {
            ExtendedQueryHandler::do_query(&*inner, client, portal, max_rows)
                .await
                .map(|response| vec![response])
        };
        let mut responses = run_guarded(start, query).await?;
        Ok(responses.pop().unwrap_or(Response::EmptyQuery))
    }
}
