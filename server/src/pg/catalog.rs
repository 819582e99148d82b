//! Columns that datafusion-pg-catalog's `pg_catalog` tables lack or type
//! differently from PostgreSQL, where client catalog queries need them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlanBuilder, lit};

/// The `pg_catalog` schema of datafusion-pg-catalog, with two changes:
///
/// - `pg_class` has `reloptions` (`text[]`, always NULL because apitrail
///   tables have no storage options). psql 15's `\d+` header query reads it.
/// - `pg_type.typreceive` is the OID of the receive function, as in
///   PostgreSQL, where the library stores its name. Npgsql's type-loading
///   query joins `pg_proc ON proc.oid = typ.typreceive`.
#[derive(Debug)]
pub struct PgCatalogCompat {
    inner: Arc<dyn SchemaProvider>,
}

impl PgCatalogCompat {
    pub fn new(inner: Arc<dyn SchemaProvider>) -> Self {
        PgCatalogCompat { inner }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogCompat {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        let Some(table) = table else {
            return Ok(None);
        };
        if name.eq_ignore_ascii_case("pg_class") {
            return Ok(Some(with_reloptions(table)?));
        }
        if name.eq_ignore_ascii_case("pg_type")
            && let Some(pg_proc) = self.inner.table("pg_proc").await?
        {
            return Ok(Some(with_receive_oids(table, pg_proc)?));
        }
        Ok(Some(table))
    }

    // The table type of the library's table, so that pg_class still lists
    // itself as a table and not as a view.
    async fn table_type(&self, name: &str) -> Result<Option<TableType>> {
        self.inner.table_type(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// Wraps `pg_class` in a view that appends a NULL `reloptions` column.
fn with_reloptions(pg_class: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let schema = pg_class.schema();
    let list_type = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    let mut columns: Vec<_> = schema
        .fields()
        .iter()
        .map(|field| Expr::Column(Column::new(Some("pg_class"), field.name())))
        .collect();
    columns.push(lit(ScalarValue::try_from(&list_type)?).alias("reloptions"));
    let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Wraps `pg_type` in a view whose `typreceive` is the OID of the
/// `pg_proc` row with that name, or 0 where the type has no receive
/// function (`-`), as PostgreSQL stores it. Receive function names are
/// unique in the library's `pg_proc`, so the join adds no rows.
fn with_receive_oids(
    pg_type: Arc<dyn TableProvider>,
    pg_proc: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>> {
    let schema = pg_type.schema();
    let columns: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|field| {
            if field.name() == "typreceive" {
                coalesce(vec![
                    Expr::Column(Column::new(Some("receive"), "oid")),
                    lit(0i32),
                ])
                .alias("typreceive")
            } else {
                Expr::Column(Column::new(Some("pg_type"), field.name()))
            }
        })
        .collect();
    let receive = LogicalPlanBuilder::scan("receive", provider_as_source(pg_proc), None)?
        .project(vec![
            Expr::Column(Column::new(Some("receive"), "oid")),
            Expr::Column(Column::new(Some("receive"), "proname")),
        ])?
        .build()?;
    let plan = LogicalPlanBuilder::scan("pg_type", provider_as_source(pg_type), None)?
        .join_on(
            receive,
            JoinType::Left,
            vec![
                Expr::Column(Column::new(Some("pg_type"), "typreceive"))
                    .eq(Expr::Column(Column::new(Some("receive"), "proname"))),
            ],
        )?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
