//! Arrow Flight SQL: the gRPC service that BI tools and detection products
//! reach through ADBC, JDBC and ODBC drivers.
//!
//! A query takes two calls. `GetFlightInfo` plans the SQL, so errors and the
//! result schema come back before any data, and returns a ticket.
//! `DoGet` on that ticket runs the query and streams Arrow batches as
//! DataFusion produces them. A statement ticket carries its SQL, so it needs
//! no server state. A prepared statement lives in a bounded table on the
//! node that created it, with its parameter schema and the parameters last
//! bound through `DoPut`.
//!
//! Every ticket also carries an execution id. `CancelFlightInfo` (and the
//! older `CancelQuery` action) cancel the execution with that id, whether
//! it is running or not started yet. A client that drops its `DoGet` stream
//! drops the query with it. The metadata commands (`GetCatalogs`,
//! `GetDbSchemas`, `GetTables`, `GetTableTypes`, `GetSqlInfo`,
//! `GetXdbcTypeInfo` and the key commands, which are empty since apitrail
//! tables have no keys) round-trip through `DoGet` the same way.
//!
//! A result longer than the row limit is cut, and its stream ends with an
//! empty record batch whose `app_metadata` is `{"truncated":true,"row_limit":N}`.

pub mod auth;
mod info;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use apitrail_query::{QueryEngine, QueryError};
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{GetTablesBuilder, SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightData,
    FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket,
};
use bytes::Bytes;
use datafusion::catalog::information_schema::INFORMATION_SCHEMA;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::errors::grpc_status;

/// Prepared statements kept per node. Clients that never close theirs
/// evict the oldest ones instead of growing the table without end.
const MAX_PREPARED: usize = 4096;
/// Executions remembered as cancelled before their `DoGet` arrived.
const MAX_CANCELLED: usize = 1024;
/// First byte of every ticket this server issues; a new layout gets a new value.
const TICKET_VERSION: u8 = 1;
const TICKET_SQL: u8 = 0;
const TICKET_PREPARED: u8 = 1;
/// The action that cancels a `FlightInfo` in Arrow Flight 13 and later.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// Settings of the Flight SQL service.
#[derive(Debug, Clone)]
pub struct FlightOptions {
    /// Maximum time a query may run, from `DoGet` to its last batch.
    pub query_timeout: Duration,
}

/// Returns the gRPC server settings, with TLS when `tls` is set.
///
/// Kept apart from [`serve`] so that an invalid TLS identity stops the start
/// instead of ending the spawned Flight SQL task.
pub fn server_builder(
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<tonic::transport::Server> {
    let server = tonic::transport::Server::builder();
    match tls {
        Some(tls) => server
            .tls_config(tls)
            .context("setting up TLS for Flight SQL"),
        None => Ok(server),
    }
}

/// Serves Flight SQL with `server` on `listener` until `shutdown` fires.
pub async fn serve(
    mut server: tonic::transport::Server,
    listener: TcpListener,
    engine: QueryEngine,
    options: FlightOptions,
    auth: crate::auth::Authenticator,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let service = FlightSqlServer::new(engine, options)?;
    let incoming = accept_nodelay(listener);
    server
        .add_service(FlightServiceServer::with_interceptor(
            service,
            auth::AuthInterceptor::new(auth),
        ))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// Connections accepted on `listener`, with Nagle's algorithm off.
///
/// tonic sets `TCP_NODELAY` only on listeners it binds itself. With Nagle on,
/// the last small segment of a response waits for the client's delayed
/// acknowledgement. A Flight SQL query makes two calls (GetFlightInfo, then
/// DoGet): a one-row query took 92 ms with Nagle on and 4.7 ms with it off.
pub(crate) fn accept_nodelay(
    listener: TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|socket| {
            if let Err(error) = socket.set_nodelay(true) {
                tracing::debug!(%error, "could not turn off Nagle's algorithm on a gRPC connection");
            }
        })
    })
}

/// The Flight SQL service over one query engine.
pub struct FlightSqlServer {
    engine: QueryEngine,
    options: FlightOptions,
    prepared: Mutex<PreparedStatements>,
    executions: Arc<Mutex<Executions>>,
    sql_info: SqlInfoData,
    type_info: XdbcTypeInfoData,
}

impl FlightSqlServer {
    /// Builds the service, with its `GetSqlInfo` and `GetXdbcTypeInfo` data encoded once.
    pub fn new(engine: QueryEngine, options: FlightOptions) -> anyhow::Result<Self> {
        Ok(FlightSqlServer {
            sql_info: info::sql_info(engine.context())?,
            engine,
            options,
            prepared: Mutex::new(PreparedStatements::default()),
            executions: Arc::new(Mutex::new(Executions::default())),
            type_info: info::xdbc_type_info()?,
        })
    }

    /// Plans `sql` read-only and returns the plan with its output schema.
    async fn plan(&self, sql: &str) -> Result<LogicalPlan, Status> {
        self.engine
            .plan(sql)
            .await
            .map_err(|e| query_failure("plan", &e))
    }

    /// Builds the `GetFlightInfo` response: one endpoint whose ticket is `ticket`.
    fn flight_info(
        &self,
        schema: &Schema,
        ticket: Ticket,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("encoding the result schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    /// Runs `plans` one after the other under one execution id and streams their batches.
    async fn run(
        &self,
        execution: [u8; 16],
        schema: SchemaRef,
        plans: Vec<LogicalPlan>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let token = self
            .executions
            .lock()
            .expect("the executions lock is never poisoned")
            .start(execution)
            .ok_or_else(|| {
                query_failure(
                    "execute",
                    &QueryError::Cancelled("the client cancelled it before it ran".into()),
                )
            })?;
        let guard = ExecutionGuard {
            executions: Arc::clone(&self.executions),
            execution,
            started: Instant::now(),
        };
        metrics::counter!("apitrail_queries_total", "protocol" => "flight").increment(1);

        let mut streams = Vec::with_capacity(plans.len());
        for plan in plans {
            let stream = self
                .engine
                .execute_plan(plan)
                .await
                .map_err(|e| query_failure("execute", &e))?;
            streams.push(stream);
        }
        // The first stream's schema is the one its batches carry; a plan's
        // logical schema can differ from it in nullability or metadata.
        let schema = streams.first().map(|s| s.schema()).unwrap_or(schema);
        let row_limit = Some(self.engine.limits().max_rows).filter(|limit| *limit > 0);
        let truncated = Arc::new(AtomicBool::new(false));
        let batches = guarded_batches(
            streams,
            token,
            tokio::time::Instant::now() + self.options.query_timeout,
            self.options.query_timeout,
            guard,
            RowCut {
                limit: row_limit,
                truncated: Arc::clone(&truncated),
            },
        );
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(Arc::clone(&schema))
            .build(batches.map_err(FlightError::from))
            .map_err(Status::from);
        // Polled only after the last batch, when the cut is known.
        let marker = futures::stream::once(async move { truncated.load(Ordering::Acquire) })
            .filter_map(move |cut| {
                let schema = Arc::clone(&schema);
                async move {
                    match (cut, row_limit) {
                        (true, Some(limit)) => Some(truncation_message(&schema, limit)),
                        _ => None,
                    }
                }
            });
        Ok(Response::new(Box::pin(flight.chain(marker))))
    }

    /// Streams one metadata batch.
    fn metadata_batch(
        &self,
        batch: Result<RecordBatch, impl std::fmt::Display>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let batch = batch.map_err(|e| Status::internal(format!("building metadata: {e}")))?;
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    /// Lists every table of the session with its catalog, schema, type and Arrow schema.
    async fn tables(&self) -> Result<Vec<TableEntry>, Status> {
        let ctx = self.engine.context();
        let mut entries = Vec::new();
        for catalog_name in ctx.catalog_names() {
            let Some(catalog) = ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in schema_names(ctx, catalog.as_ref()) {
                let Some(schema) = open_schema(ctx, catalog.as_ref(), &schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    let Some(table) = schema
                        .table(&table_name)
                        .await
                        .map_err(|e| Status::internal(format!("opening {table_name}: {e}")))?
                    else {
                        continue;
                    };
                    entries.push(TableEntry {
                        catalog: catalog_name.clone(),
                        schema: schema_name.clone(),
                        table_type: table_type_name(table.table_type()),
                        arrow_schema: table.schema(),
                        name: table_name,
                    });
                }
            }
        }
        entries.sort_by(|a, b| {
            (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name))
        });
        Ok(entries)
    }

    fn prepared(&self, handle: &[u8]) -> Result<Prepared, Status> {
        self.prepared
            .lock()
            .expect("the prepared statement lock is never poisoned")
            .get(handle)
            .ok_or_else(|| {
                Status::not_found(
                    "unknown prepared statement handle: it was closed, evicted after 4096 newer \
                     statements, or created on another apitrail node",
                )
            })
    }

    fn cancel(&self, info: &FlightInfo) -> CancelStatus {
        let mut executions = self
            .executions
            .lock()
            .expect("the executions lock is never poisoned");
        let mut status = CancelStatus::Unspecified;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Ok(decoded) = decode_ticket_bytes(&ticket.ticket) else {
                continue;
            };
            status = executions.cancel(decoded.execution);
        }
        status
    }
}

/// Lists the schemas of `catalog`, with `information_schema` when the session
/// serves it: DataFusion resolves that schema by name without listing it.
fn schema_names(
    ctx: &datafusion::prelude::SessionContext,
    catalog: &dyn datafusion::catalog::CatalogProvider,
) -> Vec<String> {
    let mut names = catalog.schema_names();
    if ctx.copied_config().information_schema() && !names.iter().any(|n| n == INFORMATION_SCHEMA) {
        names.push(INFORMATION_SCHEMA.to_string());
    }
    names.sort();
    names
}

/// Opens one schema of `catalog`, including the session's `information_schema`.
fn open_schema(
    ctx: &datafusion::prelude::SessionContext,
    catalog: &dyn datafusion::catalog::CatalogProvider,
    name: &str,
) -> Option<Arc<dyn datafusion::catalog::SchemaProvider>> {
    if name == INFORMATION_SCHEMA && ctx.copied_config().information_schema() {
        let provider = datafusion::catalog::information_schema::InformationSchemaProvider::new(
            Arc::clone(ctx.state().catalog_list()),
        );
        return Some(Arc::new(provider));
    }
    catalog.schema(name)
}

struct TableEntry {
    catalog: String,
    schema: String,
    name: String,
    table_type: &'static str,
    arrow_schema: SchemaRef,
}

fn table_type_name(table_type: datafusion::datasource::TableType) -> &'static str {
    match table_type {
        datafusion::datasource::TableType::Base => "TABLE",
        datafusion::datasource::TableType::View => "VIEW",
        datafusion::datasource::TableType::Temporary => "LOCAL TEMPORARY",
    }
}

/// The table types `GetTableTypes` lists.
const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

/// Logs a failed query and converts its error to a gRPC status.
fn query_failure(stage: &'static str, error: &QueryError) -> Status {
    if error.is_client_error() {
        tracing::debug!(stage, error = %error, "flight sql query rejected");
    } else {
        tracing::error!(stage, error = %error, "flight sql query failed");
    }
    metrics::counter!("apitrail_query_errors_total", "protocol" => "flight").increment(1);
    grpc_status(error)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlServer {
    type FlightService = FlightSqlServer;

    async fn do_handshake(
        &self,
        request: Request<tonic::Streaming<arrow_flight::HandshakeRequest>>,
    ) -> Result<
        Response<
            std::pin::Pin<
                Box<dyn Stream<Item = Result<arrow_flight::HandshakeResponse, Status>> + Send>,
            >,
        >,
        Status,
    > {
        auth::handshake(&request)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let plan = self.plan(&query.query).await?;
        let schema = plan.schema().as_arrow().clone();
        let ticket = encode_ticket(TICKET_SQL, query.query.as_bytes());
        self.flight_info(&schema, ticket, request.into_inner())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let prepared = self.prepared(&query.prepared_statement_handle)?;
        let ticket = encode_ticket(TICKET_PREPARED, &query.prepared_statement_handle);
        // Bound parameters can give a placeholder column its type, so the
        // schema comes from the bound plan where there is one.
        let schema = match prepared.bound_plans() {
            Ok(plans) if !plans.is_empty() => Arc::new(plans[0].schema().as_arrow().clone()),
            _ => Arc::clone(&prepared.dataset_schema),
        };
        self.flight_info(&schema, ticket, request.into_inner())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = info::primary_keys_schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = info::foreign_keys_schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = info::foreign_keys_schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = info::foreign_keys_schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.type_info).schema();
        self.flight_info(&schema, metadata_ticket(&query), request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let decoded = decode_ticket(&ticket.statement_handle)?;
        match decoded.kind {
            TICKET_SQL => {
                let sql = std::str::from_utf8(&decoded.payload)
                    .map_err(|_| Status::invalid_argument("the ticket's SQL is not UTF-8"))?;
                let plan = self.plan(sql).await?;
                let schema = Arc::new(plan.schema().as_arrow().clone());
                self.run(decoded.execution, schema, vec![plan]).await
            }
            TICKET_PREPARED => {
                let prepared = self.prepared(&decoded.payload)?;
                let plans = prepared.bound_plans()?;
                self.run(decoded.execution, prepared.dataset_schema, plans)
                    .await
            }
            other => Err(Status::invalid_argument(format!(
                "unknown ticket kind {other}; tickets come from GetFlightInfo"
            ))),
        }
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        // Some clients skip GetFlightInfo and send the command itself as the ticket.
        let prepared = self.prepared(&query.prepared_statement_handle)?;
        let plans = prepared.bound_plans()?;
        self.run(new_execution_id(), prepared.dataset_schema, plans)
            .await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for catalog in self.engine.context().catalog_names() {
            builder.append(catalog);
        }
        self.metadata_batch(builder.build())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.engine.context();
        let mut builder = query.into_builder();
        for catalog_name in ctx.catalog_names() {
            if let Some(catalog) = ctx.catalog(&catalog_name) {
                for schema in schema_names(ctx, catalog.as_ref()) {
                    builder.append(&catalog_name, schema);
                }
            }
        }
        self.metadata_batch(builder.build())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder: GetTablesBuilder = query.into_builder();
        for table in self.tables().await? {
            builder
                .append(
                    &table.catalog,
                    &table.schema,
                    &table.name,
                    table.table_type,
                    &table.arrow_schema,
                )
                .map_err(|e| Status::internal(format!("listing {}: {e}", table.name)))?;
        }
        self.metadata_batch(builder.build())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for table_type in TABLE_TYPES {
            builder.append(table_type);
        }
        self.metadata_batch(builder.build())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.metadata_batch(query.into_builder(&self.sql_info).build())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.metadata_batch(Ok::<_, Status>(RecordBatch::new_empty(
            info::primary_keys_schema(),
        )))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.metadata_batch(Ok::<_, Status>(RecordBatch::new_empty(
            info::foreign_keys_schema(),
        )))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.metadata_batch(Ok::<_, Status>(RecordBatch::new_empty(
            info::foreign_keys_schema(),
        )))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.metadata_batch(Ok::<_, Status>(RecordBatch::new_empty(
            info::foreign_keys_schema(),
        )))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.metadata_batch(query.into_builder(&self.type_info).build())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let prepared = self.prepared(&query.prepared_statement_handle)?;
        let stream = request.into_inner();
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                stream.map_err(FlightError::from),
            )
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("reading the bound parameters: {e}")))?;
        let rows = parameter_rows(&batches, prepared.parameter_count)?;
        self.prepared
            .lock()
            .expect("the prepared statement lock is never poisoned")
            .bind(&query.prepared_statement_handle, rows)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let (sql, question_marks) = number_question_marks(&query.query);
        let plan = self.plan(&sql).await?;
        let dataset_schema = Arc::new(plan.schema().as_arrow().clone());
        let parameter_schema = parameter_schema(&plan, question_marks)?;
        let handle = new_execution_id().to_vec();
        let result = ActionCreatePreparedStatementResult {
            prepared_statement_handle: Bytes::from(handle.clone()),
            dataset_schema: schema_ipc(&dataset_schema)?,
            parameter_schema: schema_ipc(&parameter_schema)?,
        };
        self.prepared
            .lock()
            .expect("the prepared statement lock is never poisoned")
            .insert(
                handle,
                Prepared {
                    plan,
                    dataset_schema,
                    parameter_count: parameter_schema.fields().len(),
                    parameters: Vec::new(),
                },
            );
        Ok(result)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        self.prepared
            .lock()
            .expect("the prepared statement lock is never poisoned")
            .remove(&query.prepared_statement_handle);
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info)
            .map_err(|e| Status::invalid_argument(format!("decoding the FlightInfo: {e}")))?;
        // Values of ActionCancelQueryResult.CancelResult, which the crate does not export.
        let result = match self.cancel(&info) {
            CancelStatus::Cancelled => 1,
            CancelStatus::Cancelling => 2,
            _ => 3,
        };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let action = request.into_inner();
        if action.r#type != CANCEL_FLIGHT_INFO {
            return Err(Status::unimplemented(format!(
                "unknown action {:?}; ListActions names the supported ones",
                action.r#type
            )));
        }
        let cancel = CancelFlightInfoRequest::decode(action.body).map_err(|e| {
            Status::invalid_argument(format!("decoding CancelFlightInfoRequest: {e}"))
        })?;
        let info = cancel
            .info
            .ok_or_else(|| Status::invalid_argument("CancelFlightInfoRequest without info"))?;
        let result = CancelFlightInfoResult {
            status: self.cancel(&info) as i32,
        };
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::once(async move {
            Ok(body)
        }))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.to_string(),
            description: "Cancel the query of a FlightInfo: \
                          Request Message: CancelFlightInfoRequest, \
                          Response Message: CancelFlightInfoResult"
                .to_string(),
        })])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// A statement prepared through `CreatePreparedStatement`.
#[derive(Clone)]
struct Prepared {
    /// The read-only plan, with `$1`, `$2`, ... placeholders.
    plan: LogicalPlan,
    dataset_schema: SchemaRef,
    parameter_count: usize,
    /// One list of values per bound parameter row.
    parameters: Vec<Vec<ScalarValue>>,
}

impl Prepared {
    /// Returns one plan per bound parameter row, or the plan itself when it takes none.
    fn bound_plans(&self) -> Result<Vec<LogicalPlan>, Status> {
        if self.parameter_count == 0 {
            return Ok(vec![self.plan.clone()]);
        }
        if self.parameters.is_empty() {
            return Err(Status::invalid_argument(format!(
                "the prepared statement takes {} parameters and none were bound",
                self.parameter_count
            )));
        }
        self.parameters
            .iter()
            .map(|row| {
                self.plan
                    .clone()
                    .with_param_values(row.clone())
                    .map_err(|e| query_failure("bind", &QueryError::from_datafusion(e)))
            })
            .collect()
    }
}

/// Prepared statements by handle, oldest first for eviction.
#[derive(Default)]
struct PreparedStatements {
    by_handle: HashMap<Vec<u8>, Prepared>,
    order: VecDeque<Vec<u8>>,
}

impl PreparedStatements {
    fn insert(&mut self, handle: Vec<u8>, prepared: Prepared) {
        while self.by_handle.len() >= MAX_PREPARED {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.by_handle.remove(&oldest).is_some() {
                tracing::warn!(
                    limit = MAX_PREPARED,
                    "evicted the oldest prepared statement; clients should close theirs"
                );
            }
        }
        self.order.push_back(handle.clone());
        self.by_handle.insert(handle, prepared);
    }

    fn get(&self, handle: &[u8]) -> Option<Prepared> {
        self.by_handle.get(handle).cloned()
    }

    fn bind(&mut self, handle: &[u8], rows: Vec<Vec<ScalarValue>>) -> Result<(), Status> {
        let prepared = self
            .by_handle
            .get_mut(handle)
            .ok_or_else(|| Status::not_found("the prepared statement was closed"))?;
        prepared.parameters = rows;
        Ok(())
    }

    fn remove(&mut self, handle: &[u8]) {
        if self.by_handle.remove(handle).is_some() {
            self.order.retain(|h| h.as_slice() != handle);
        }
    }
}

/// Running executions, and those cancelled before they started.
#[derive(Default)]
struct Executions {
    running: HashMap<[u8; 16], CancellationToken>,
    cancelled: VecDeque<[u8; 16]>,
}

impl Executions {
    /// Registers a starting execution; `None` when it was cancelled already.
    fn start(&mut self, execution: [u8; 16]) -> Option<CancellationToken> {
        if self.cancelled.contains(&execution) {
            return None;
        }
        let token = CancellationToken::new();
        self.running.insert(execution, token.clone());
        Some(token)
    }

    fn finish(&mut self, execution: [u8; 16]) {
        self.running.remove(&execution);
    }

    fn cancel(&mut self, execution: [u8; 16]) -> CancelStatus {
        if let Some(token) = self.running.get(&execution) {
            token.cancel();
            return CancelStatus::Cancelled;
        }
        if self.cancelled.len() >= MAX_CANCELLED {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(execution);
        CancelStatus::Cancelled
    }
}

/// Removes an execution from the running table when its stream ends or is dropped.
struct ExecutionGuard {
    executions: Arc<Mutex<Executions>>,
    execution: [u8; 16],
    started: Instant,
}

impl Drop for ExecutionGuard {
    fn drop(&mut self) {
        if let Ok(mut executions) = self.executions.lock() {
            executions.finish(self.execution);
        }
        metrics::histogram!("apitrail_query_seconds", "protocol" => "flight")
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// The row limit of one `DoGet` result and the flag that records a cut.
struct RowCut {
    limit: Option<u64>,
    /// Set when the result had more rows than `limit` and was cut.
    truncated: Arc<AtomicBool>,
}

/// Builds the message sent after the last batch of a result cut at
/// `row_limit` rows: a record batch of no rows whose `app_metadata` is the
/// JSON object `{"truncated":true,"row_limit":N}`.
///
/// The message carries an empty batch, and not metadata alone, because the
/// Go Arrow IPC reader of the ADBC Flight SQL driver 1.13 fails on a
/// `FlightData` without a data header. pyarrow's `read_chunk()` returns it
/// as a chunk of no rows with the metadata. Dictionary columns are sent
/// with their values, as the `DoGet` encoder sends them.
fn truncation_message(schema: &Schema, row_limit: u64) -> Result<FlightData, Status> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Dictionary(_, value) => field.as_ref().clone().with_data_type(*value.clone()),
            _ => field.as_ref().clone(),
        })
        .collect();
    let batch = RecordBatch::new_empty(Arc::new(Schema::new(fields)));
    let (_, encoded) = IpcDataGenerator::default()
        .encode(
            &batch,
            &mut DictionaryTracker::new(false),
            &IpcWriteOptions::default(),
            &mut IpcWriteContext::default(),
        )
        .map_err(|e| Status::internal(format!("encoding the truncation message: {e}")))?;
    let metadata = serde_json::json!({ "truncated": true, "row_limit": row_limit });
    Ok(FlightData::from(encoded).with_app_metadata(metadata.to_string().into_bytes()))
}

/// Chains the result streams, ending with an error on cancellation or
/// timeout, or early when the rows reach the row limit.
///
/// When the token fires, the deadline passes or the rows are cut, the
/// query streams are dropped, which stops DataFusion's work on them.
fn guarded_batches(
    streams: Vec<SendableRecordBatchStream>,
    token: CancellationToken,
    deadline: tokio::time::Instant,
    timeout: Duration,
    guard: ExecutionGuard,
    cut: RowCut,
) -> impl Stream<Item = Result<RecordBatch, Status>> + Send + 'static {
    struct State {
        streams: VecDeque<SendableRecordBatchStream>,
        token: CancellationToken,
        guard: Option<ExecutionGuard>,
        rows: u64,
        cut: RowCut,
    }
    let state = State {
        streams: streams.into(),
        token,
        guard: Some(guard),
        rows: 0,
        cut,
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            state.guard.as_ref()?;
            let Some(stream) = state.streams.front_mut() else {
                let guard = state.guard.take();
                if let Some(guard) = &guard {
                    tracing::debug!(
                        rows = state.rows,
                        elapsed_ms = guard.started.elapsed().as_millis() as u64,
                        "flight sql query finished"
                    );
                }
                return None;
            };
            let next = tokio::select! {
                biased;
                () = state.token.cancelled() => Err(QueryError::Cancelled(
                    "CancelFlightInfo was called for it".into(),
                )),
                () = tokio::time::sleep_until(deadline) => Err(QueryError::TimedOut(timeout)),
                next = stream.next() => Ok(next),
            };
            match next {
                Ok(Some(Ok(batch))) => {
                    let count = batch.num_rows() as u64;
                    let remaining = state
                        .cut
                        .limit
                        .map_or(u64::MAX, |limit| limit.saturating_sub(state.rows));
                    if count > remaining {
                        // Dropping the streams stops the query; the loop then ends the result.
                        state.streams.clear();
                        state.cut.truncated.store(true, Ordering::Release);
                        metrics::counter!("apitrail_query_truncations_total", "protocol" => "flight")
                            .increment(1);
                        tracing::debug!(
                            row_limit = remaining + state.rows,
                            "flight sql result cut at the row limit"
                        );
                        if remaining == 0 {
                            continue;
                        }
                        state.rows += remaining;
                        return Some((Ok(batch.slice(0, remaining as usize)), state));
                    }
                    state.rows += count;
                    return Some((Ok(batch), state));
                }
                Ok(Some(Err(e))) => {
                    state.streams.clear();
                    state.guard = None;
                    let error = QueryError::from_datafusion(e);
                    return Some((Err(query_failure("stream", &error)), state));
                }
                Ok(None) => {
                    state.streams.pop_front();
                }
                Err(error) => {
                    state.streams.clear();
                    state.guard = None;
                    return Some((Err(query_failure("stream", &error)), state));
                }
            }
        }
    })
}

/// A ticket issued by this server, decoded.
struct DecodedTicket {
    kind: u8,
    execution: [u8; 16],
    payload: Vec<u8>,
}

fn new_execution_id() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Builds a statement ticket: version, kind, a new execution id, then the payload.
fn encode_ticket(kind: u8, payload: &[u8]) -> Ticket {
    let mut handle = Vec::with_capacity(18 + payload.len());
    handle.push(TICKET_VERSION);
    handle.push(kind);
    handle.extend_from_slice(&new_execution_id());
    handle.extend_from_slice(payload);
    let ticket = TicketStatementQuery {
        statement_handle: handle.into(),
    };
    Ticket::new(ticket.as_any().encode_to_vec())
}

fn decode_ticket(handle: &[u8]) -> Result<DecodedTicket, Status> {
    if handle.len() < 18 || handle[0] != TICKET_VERSION {
        return Err(Status::invalid_argument(
            "the ticket was not issued by this apitrail version; call GetFlightInfo again",
        ));
    }
    let mut execution = [0u8; 16];
    execution.copy_from_slice(&handle[2..18]);
    Ok(DecodedTicket {
        kind: handle[1],
        execution,
        payload: handle[18..].to_vec(),
    })
}

/// Decodes the raw bytes of a `Ticket`, as a `FlightInfo` carries them.
fn decode_ticket_bytes(ticket: &[u8]) -> Result<DecodedTicket, Status> {
    let any = prost_types::Any::decode(ticket)
        .map_err(|e| Status::invalid_argument(format!("decoding the ticket: {e}")))?;
    let statement = TicketStatementQuery::decode(any.value.as_slice())
        .map_err(|e| Status::invalid_argument(format!("decoding the ticket: {e}")))?;
    decode_ticket(&statement.statement_handle)
}

/// Encodes a metadata command as its own ticket, which `DoGet` dispatches on.
fn metadata_ticket(command: &impl ProstMessageExt) -> Ticket {
    Ticket::new(command.as_any().encode_to_vec())
}

fn schema_ipc(schema: &Schema) -> Result<Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("encoding a schema: {e}")))?;
    Ok(message.0)
}

/// Rewrites JDBC and ODBC style `?` placeholders as `$1`, `$2`, ..., which
/// DataFusion numbers, and returns how many there were.
///
/// The tokenizer keeps `?` inside string literals and quoted names apart.
fn number_question_marks(sql: &str) -> (String, usize) {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        // The planner reports the syntax error with its position.
        return (sql.to_string(), 0);
    };
    if !tokens
        .iter()
        .any(|t| matches!(t, Token::Placeholder(p) if p == "?"))
    {
        return (sql.to_string(), 0);
    }
    let mut count = 0;
    let mut out = String::with_capacity(sql.len() + 8);
    for token in tokens {
        match token {
            Token::Placeholder(p) if p == "?" => {
                count += 1;
                out.push_str(&format!("${count}"));
            }
            other => out.push_str(&other.to_string()),
        }
    }
    (out, count)
}

/// Builds the schema of the parameters of `plan`: `$1`, `$2`, ... with the types the
/// planner inferred, and text where it could not tell.
fn parameter_schema(plan: &LogicalPlan, question_marks: usize) -> Result<Schema, Status> {
    let fields = plan
        .get_parameter_fields()
        .map_err(|e| query_failure("prepare", &QueryError::from_datafusion(e)))?;
    let mut numbered: Vec<(usize, Field)> = Vec::with_capacity(fields.len());
    for (name, field) in fields {
        let position = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "parameter {name} is named; use ? or $1, $2, ... placeholders"
                ))
            })?;
        let data_type = field
            .map(|f| f.data_type().clone())
            .filter(|t| *t != DataType::Null)
            .unwrap_or(DataType::Utf8);
        numbered.push((position, Field::new(name, data_type, true)));
    }
    numbered.sort_by_key(|(position, _)| *position);
    if let Some(missing) = (1..=numbered.len()).find(|p| numbered[p - 1].0 != *p) {
        return Err(Status::invalid_argument(format!(
            "placeholder ${missing} is missing; number placeholders from $1 without gaps"
        )));
    }
    debug_assert!(question_marks == 0 || question_marks == numbered.len());
    Ok(Schema::new(
        numbered.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
    ))
}

/// Turns bound parameter batches into one value list per row.
fn parameter_rows(
    batches: &[RecordBatch],
    expected: usize,
) -> Result<Vec<Vec<ScalarValue>>, Status> {
    let mut rows = Vec::new();
    for batch in batches {
        if batch.num_columns() != expected {
            return Err(Status::invalid_argument(format!(
                "the prepared statement takes {expected} parameters, {} were bound",
                batch.num_columns()
            )));
        }
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column: &ArrayRef| ScalarValue::try_from_array(column, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Status::invalid_argument(format!("reading a parameter: {e}")))?;
            rows.push(values);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_become_numbered_outside_literals() {
        let (sql, count) =
            number_question_marks("SELECT '?' AS q, \"a?\" FROM t WHERE a = ? AND b > ?");
        assert_eq!(count, 2);
        assert_eq!(
            sql,
            "SELECT '?' AS q, \"a?\" FROM t WHERE a = $1 AND b > $2"
        );
        let (same, none) = number_question_marks("SELECT $1");
        assert_eq!((same.as_str(), none), ("SELECT $1", 0));
    }

    #[test]
    fn tickets_round_trip_and_reject_foreign_bytes() {
        let ticket = encode_ticket(TICKET_SQL, b"SELECT 1");
        let decoded = decode_ticket_bytes(&ticket.ticket).expect("our own ticket decodes");
        assert_eq!(decoded.kind, TICKET_SQL);
        assert_eq!(decoded.payload, b"SELECT 1");
        assert!(decode_ticket(b"\x07short").is_err());
        assert!(decode_ticket_bytes(b"not a protobuf message at all \xff").is_err());
    }

    #[test]
    fn executions_cancelled_before_start() {
        let mut executions = Executions::default();
        let early = [1u8; 16];
        assert_eq!(executions.cancel(early), CancelStatus::Cancelled);
        assert!(
            executions.start(early).is_none(),
            "a cancelled id must not start"
        );
        let running = [2u8; 16];
        let token = executions.start(running).expect("a new id starts");
        executions.cancel(running);
        assert!(token.is_cancelled());
        executions.finish(running);
        assert!(executions.running.is_empty());
    }

    #[test]
    fn prepared_statements_evict_the_oldest_beyond_the_limit() {
        let plan = LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
            produce_one_row: true,
            schema: Arc::new(datafusion::common::DFSchema::empty()),
        });
        let mut table = PreparedStatements::default();
        for i in 0..=MAX_PREPARED {
            table.insert(
                (i as u32).to_be_bytes().to_vec(),
                Prepared {
                    plan: plan.clone(),
                    dataset_schema: Arc::new(Schema::empty()),
                    parameter_count: 0,
                    parameters: Vec::new(),
                },
            );
        }
        assert_eq!(table.by_handle.len(), MAX_PREPARED);
        assert!(
            table.get(&0u32.to_be_bytes()).is_none(),
            "the oldest is evicted"
        );
        assert!(table.get(&(MAX_PREPARED as u32).to_be_bytes()).is_some());
        table.remove(&1u32.to_be_bytes());
        assert_eq!(table.order.len(), MAX_PREPARED - 1);
    }
}
