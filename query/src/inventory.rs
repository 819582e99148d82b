//! Shared inventory state and the SQL functions that read it.
//!
//! [`Inventory`] contains what the views need beyond the partials: the learning
//! path templater, the loaded API descriptions, the consumer map and the
//! aliases that consumers acquired through key rotation. Ingest writes to it
//! (the templater learns, aliases are recorded) and queries read it through
//! these functions:
//!
//! | function | result |
//! |---|---|
//! | `path_template(path)`, `path_template(host, path)` | the current endpoint template of a path or of an older template |
//! | `spec_status(host, method, endpoint)` | `documented`, `shadow` or `zombie` against the loaded specs |
//! | `spec_operation(host, method, endpoint)` | `spec METHOD path` of the documented operation it matches, else NULL |
//! | `consumer_name(consumer)`, `consumer_tier(consumer)`, `consumer_timezone(consumer)` | from the consumer map, NULL when unnamed |
//!
//! The table `spec_operations` lists every operation of the latest revision
//! of each loaded spec.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apitrail_ingest::parse::ConsumerAliases;
use apitrail_ingest::spec::{DocumentedOperation, SpecMatch};
use apitrail_ingest::{ConsumerInfo, ConsumerMap, SpecCatalog, SpecStatus, Templater};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result, exec_err};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

/// State shared by ingest and queries of one server.
#[derive(Debug, Default)]
pub struct Inventory {
    pub templater: RwLock<Templater>,
    pub specs: RwLock<SpecCatalog>,
    pub consumers: RwLock<ConsumerMap>,
    pub aliases: ConsumerAliases,
}

impl Inventory {
    pub fn new(templater: Templater, specs: SpecCatalog, consumers: ConsumerMap) -> Self {
        Inventory {
            templater: RwLock::new(templater),
            specs: RwLock::new(specs),
            consumers: RwLock::new(consumers),
            aliases: ConsumerAliases::default(),
        }
    }

    /// Anchors the templater on the documented paths of every loaded spec.
    pub fn anchor_documented_paths(&self) -> Result<(), apitrail_ingest::TemplaterError> {
        let by_host = self
            .specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .path_templates_by_host();
        let mut templater = self.templater.write().unwrap_or_else(|e| e.into_inner());
        for (host, templates) in by_host {
            templater.set_documented(host.as_deref(), &templates)?;
        }
        Ok(())
    }

    /// Looks a consumer up in the map, through its aliases if needed.
    pub fn consumer_info(&self, consumer: &str) -> Option<ConsumerInfo> {
        let map = self.consumers.read().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return None;
        }
        let aliases = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        let known = aliases.get(consumer).map(Vec::as_slice).unwrap_or_default();
        map.lookup(consumer, known).cloned()
    }

    /// Aliases recorded so far, for persistence.
    pub fn aliases_snapshot(&self) -> HashMap<String, Vec<String>> {
        self.aliases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Key of a documented operation in `spec_operation` results: `spec METHOD path`.
fn operation_key(operation: &DocumentedOperation) -> String {
    format!("{} {} {}", operation.spec, operation.method, operation.path)
}

/// Registers the inventory functions and `spec_operations` in `ctx`.
pub fn register_inventory(ctx: &SessionContext, inventory: &Arc<Inventory>) -> Result<()> {
    let functions = [
        InventoryFunction::new("path_template", Lookup::PathTemplate, inventory),
        InventoryFunction::new("spec_status", Lookup::SpecStatus, inventory),
        InventoryFunction::new("spec_operation", Lookup::SpecOperation, inventory),
        InventoryFunction::new("consumer_name", Lookup::ConsumerName, inventory),
        InventoryFunction::new("consumer_tier", Lookup::ConsumerTier, inventory),
        InventoryFunction::new("consumer_timezone", Lookup::ConsumerTimezone, inventory),
    ];
    for function in functions {
        ctx.register_udf(ScalarUDF::new_from_impl(function));
    }
    ctx.register_table(
        "spec_operations",
        Arc::new(SpecOperationsTable {
            inventory: Arc::clone(inventory),
        }),
    )?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lookup {
    PathTemplate,
    SpecStatus,
    SpecOperation,
    ConsumerName,
    ConsumerTier,
    ConsumerTimezone,
}

/// One text function over the inventory; all take and return `Utf8`.
#[derive(Debug)]
struct InventoryFunction {
    name: &'static str,
    lookup: Lookup,
    signature: Signature,
    inventory: Arc<Inventory>,
}

impl PartialEq for InventoryFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.inventory, &other.inventory)
    }
}

impl Eq for InventoryFunction {}

impl std::hash::Hash for InventoryFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl InventoryFunction {
    fn new(name: &'static str, lookup: Lookup, inventory: &Arc<Inventory>) -> Self {
        let text = |n: usize| TypeSignature::Exact(vec![DataType::Utf8; n]);
        let arities = match lookup {
            Lookup::PathTemplate => vec![text(1), text(2)],
            Lookup::SpecStatus | Lookup::SpecOperation => vec![text(3)],
            Lookup::ConsumerName | Lookup::ConsumerTier | Lookup::ConsumerTimezone => {
                vec![text(1)]
            }
        };
        // Results depend on state that changes while the server runs, so
        // they must not be folded into constants at planning time.
        InventoryFunction {
            name,
            lookup,
            signature: Signature::one_of(arities, Volatility::Volatile),
            inventory: Arc::clone(inventory),
        }
    }

    fn evaluate(&self, args: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
        let columns: Vec<&StringArray> = args.iter().map(|a| a.as_string::<i32>()).collect();
        let get = |column: usize, row: usize| -> Option<&str> {
            let array = columns[column];
            array.is_valid(row).then(|| array.value(row))
        };
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        match self.lookup {
            Lookup::PathTemplate => {
                let templater = self
                    .inventory
                    .templater
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                let (host, path) = if columns.len() == 2 {
                    (Some(0), 1)
                } else {
                    (None, 0)
                };
                for row in 0..rows {
                    let host = host.and_then(|c| get(c, row));
                    match get(path, row) {
                        Some(path) => out.append_value(templater.template(host, path).endpoint),
                        None => out.append_null(),
                    }
                }
            }
            Lookup::SpecStatus | Lookup::SpecOperation => {
                let specs = self
                    .inventory
                    .specs
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                for row in 0..rows {
                    let (Some(method), Some(endpoint)) = (get(1, row), get(2, row)) else {
                        out.append_null();
                        continue;
                    };
                    let matched: SpecMatch = if specs.is_empty() {
                        SpecMatch::shadow()
                    } else {
                        specs.status_of(get(0, row), method, endpoint)
                    };
                    if self.lookup == Lookup::SpecStatus {
                        out.append_value(matched.status.as_str());
                    } else {
                        match (&matched.status, &matched.operation) {
                            (SpecStatus::Shadow, _) | (_, None) => out.append_null(),
                            (_, Some(operation)) => out.append_value(operation_key(operation)),
                        }
                    }
                }
            }
            Lookup::ConsumerName | Lookup::ConsumerTier | Lookup::ConsumerTimezone => {
                for row in 0..rows {
                    let info = get(0, row).and_then(|c| self.inventory.consumer_info(c));
                    let value = info.and_then(|info| match self.lookup {
                        Lookup::ConsumerName => Some(info.name),
                        Lookup::ConsumerTier => info.tier,
                        _ => info.timezone.map(|tz| tz.name().to_string()),
                    });
                    out.append_option(value);
                }
            }
        }
        Ok(std::sync::Arc::new(out.finish()))
    }
}

impl ScalarUDFImpl for InventoryFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        if arrays.iter().any(|a| a.data_type() != &DataType::Utf8) {
            return exec_err!("{} takes text arguments", self.name);
        }
        Ok(ColumnarValue::Array(self.evaluate(&arrays, rows)?))
    }
}

fn spec_operations_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("spec", DataType::Utf8, false),
        Field::new("spec_version", DataType::Utf8, true),
        Field::new("host", DataType::Utf8, true),
        Field::new("method", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("deprecated", DataType::Boolean, false),
        Field::new("operation", DataType::Utf8, false),
    ]))
}

/// `spec_operations`: the operations of the latest revision of every loaded spec.
#[derive(Debug)]
struct SpecOperationsTable {
    inventory: Arc<Inventory>,
}

#[async_trait]
impl TableProvider for SpecOperationsTable {
    fn schema(&self) -> SchemaRef {
        spec_operations_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let operations = self
            .inventory
            .specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .documented_operations();
        let mut text: Vec<StringBuilder> = (0..5).map(|_| StringBuilder::new()).collect();
        let mut deprecated = BooleanBuilder::new();
        let mut key = StringBuilder::new();
        for operation in &operations {
            text[0].append_value(&operation.spec);
            text[1].append_option(operation.version.as_deref());
            text[2].append_option(operation.host.as_deref());
            text[3].append_value(&operation.method);
            text[4].append_value(&operation.path);
            deprecated.append_value(operation.deprecated);
            key.append_value(operation_key(operation));
        }
        let mut columns: Vec<ArrayRef> = text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        columns.push(Arc::new(deprecated.finish()));
        columns.push(Arc::new(key.finish()));
        let batch = RecordBatch::try_new(spec_operations_schema(), columns)?;
        let schema = spec_operations_schema();
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            projection.cloned(),
        )?)
    }
}
