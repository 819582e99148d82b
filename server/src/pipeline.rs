//! State shared by every ingest of a process: the keys, the identity rules and the inventory.
//!
//! The inventory's learned state lives on the object store as documents
//! beside the views table (see `apitrail_storage::documents`): the
//! templater, the loaded API descriptions and consumer aliases. It is loaded
//! at start, saved every [`SAVE_INTERVAL`] while it changes and at shutdown.
//! A save merges the templater state found on the store first, so several
//! nodes of one store learn from each other's traffic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apitrail_ingest::spec::LoadOutcome;
use apitrail_ingest::{
    ConsumerMap, FutureTolerance, IdentityConfig, JsonMapping, ParseContext, Redactor, SpecCatalog,
    Templater,
};
use apitrail_query::Inventory;
use apitrail_storage::documents::DocumentStore;
use apitrail_storage::secret_key::SecretKey;
use bytes::Bytes;

use crate::config::ServerConfig;

/// How often the inventory documents are saved while the templater learns.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(30);

const TEMPLATER_DOCUMENT: &str = "templater";
const SPECS_DOCUMENT: &str = "specs";
const ALIASES_DOCUMENT: &str = "consumer_aliases";

/// Parsing state shared by every ingest of a process.
#[derive(Debug)]
pub struct IngestPipeline {
    pub redactor: Redactor,
    pub identity: IdentityConfig,
    /// Mappings of the generic `json` format, by name.
    pub json_mappings: Vec<JsonMapping>,
    /// How far after the clock an event's time may be.
    pub future_tolerance: Duration,
    pub inventory: Arc<Inventory>,
    pub documents: DocumentStore,
}

impl IngestPipeline {
    /// Loads keys, identity rules, consumer map and the stored inventory documents.
    pub async fn load(config: &ServerConfig, documents: DocumentStore) -> anyhow::Result<Self> {
        let redactor = load_redactor(config)?;
        let inventory = load_inventory(config, &documents).await?;
        let json_mappings = config
            .ingest
            .json_mappings
            .iter()
            .cloned()
            .map(JsonMapping::new)
            .collect::<Result<Vec<_>, _>>()
            .context("invalid [[ingest.json_mappings]] in the configuration")?;
        JsonMapping::check_unique_names(&json_mappings)
            .context("invalid [[ingest.json_mappings]] in the configuration")?;
        Ok(IngestPipeline {
            redactor,
            identity: config.identity.clone(),
            json_mappings,
            future_tolerance: Duration::from_secs(config.ingest.future_tolerance_secs),
            inventory,
            documents,
        })
    }

    /// Returns the `json` mapping called `name`; with no name, the only
    /// mapping when exactly one is configured.
    pub fn json_mapping(&self, name: Option<&str>) -> Result<&JsonMapping, String> {
        let names = || {
            let names: Vec<&str> = self.json_mappings.iter().map(JsonMapping::name).collect();
            if names.is_empty() {
                "none is configured; add one under [[ingest.json_mappings]]".to_string()
            } else {
                format!("configured: {}", names.join(", "))
            }
        };
        match name {
            Some(name) => self
                .json_mappings
                .iter()
                .find(|mapping| mapping.name() == name)
                .ok_or_else(|| format!("unknown json mapping {name:?}; {}", names())),
            None => match self.json_mappings.as_slice() {
                [only] => Ok(only),
                _ => Err(format!(
                    "the json format needs a mapping: name it with mapping=NAME (HTTP) or --mapping (CLI); {}",
                    names()
                )),
            },
        }
    }

    /// Builds the parse context of one input.
    pub fn context<'a>(&'a self, sensor: Option<&'a str>) -> ParseContext<'a> {
        ParseContext {
            sensor,
            redactor: &self.redactor,
            identity: Some(&self.identity),
            templater: Some(&self.inventory.templater),
            aliases: Some(&self.inventory.aliases),
            skip_through_line: 0,
            json_mapping: None,
            future_tolerance: Some(FutureTolerance::from_system_clock(self.future_tolerance)),
        }
    }

    /// Saves the templater (merged with the stored state) and the consumer aliases.
    pub async fn save_learned(&self) -> anyhow::Result<()> {
        if let Some(bytes) = self.documents.get(TEMPLATER_DOCUMENT).await? {
            let text = std::str::from_utf8(&bytes).context("templater state is not UTF-8")?;
            match Templater::from_json(text) {
                Ok(stored) => self
                    .inventory
                    .templater
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .merge(&stored),
                Err(e) => {
                    tracing::warn!(error = %e, "stored templater state is invalid; it is replaced")
                }
            }
        }
        let json = self
            .inventory
            .templater
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .to_json();
        self.documents
            .put(TEMPLATER_DOCUMENT, Bytes::from(json))
            .await?;
        let aliases = serde_json::to_vec(&self.inventory.aliases_snapshot())?;
        self.documents
            .put(ALIASES_DOCUMENT, Bytes::from(aliases))
            .await?;
        Ok(())
    }

    /// Saves the spec catalog after a load.
    pub async fn save_specs(&self) -> anyhow::Result<()> {
        let json = self
            .inventory
            .specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .to_json();
        self.documents
            .put(SPECS_DOCUMENT, Bytes::from(json))
            .await?;
        Ok(())
    }

    /// Saves the learned state every [`SAVE_INTERVAL`] when the templater changed.
    pub fn spawn_saver(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let pipeline = Arc::clone(self);
        tokio::spawn(async move {
            let mut saved_generation = None;
            loop {
                tokio::time::sleep(SAVE_INTERVAL).await;
                let generation = pipeline
                    .inventory
                    .templater
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .generation();
                if saved_generation == Some(generation) {
                    continue;
                }
                match pipeline.save_learned().await {
                    Ok(()) => saved_generation = Some(generation),
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "saving the templater state failed; retrying later"
                        )
                    }
                }
            }
        })
    }
}

/// Loads the consumer map from configuration and the templater, specs and
/// aliases stored on the object store.
pub async fn load_inventory(
    config: &ServerConfig,
    documents: &DocumentStore,
) -> anyhow::Result<Arc<Inventory>> {
    let consumers = match &config.consumer_map {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading consumer map {}", path.display()))?;
            ConsumerMap::parse(&text)
                .with_context(|| format!("invalid consumer map {}", path.display()))?
        }
        None => ConsumerMap::default(),
    };
    let mut templater = match documents.get(TEMPLATER_DOCUMENT).await? {
        Some(bytes) => {
            let text = std::str::from_utf8(&bytes).context("templater state is not UTF-8")?;
            Templater::from_json(text).context("invalid stored templater state")?
        }
        None => Templater::default(),
    };
    templater
        .set_config(config.templater.clone())
        .context("invalid [templater] configuration")?;
    let specs = match documents.get(SPECS_DOCUMENT).await? {
        Some(bytes) => SpecCatalog::from_json(&bytes).context("invalid stored spec catalog")?,
        None => SpecCatalog::new(),
    };

    let inventory = Arc::new(Inventory::new(templater, specs, consumers));
    if let Some(bytes) = documents.get(ALIASES_DOCUMENT).await? {
        let aliases: HashMap<String, Vec<String>> =
            serde_json::from_slice(&bytes).context("invalid stored consumer aliases")?;
        *inventory.aliases.lock().unwrap_or_else(|e| e.into_inner()) = aliases;
    }
    inventory
        .anchor_documented_paths()
        .context("anchoring the templater on the loaded specs")?;
    Ok(inventory)
}

/// Builds the JSON result of a spec load, shared by the HTTP API and the CLI.
pub fn load_outcome_json(name: &str, outcome: &LoadOutcome) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "outcome": outcome.kind.as_str(),
        "revision": outcome.revision,
        "operations": outcome.operations,
        "deprecated_operations": outcome.deprecated_operations,
        "added_operations": outcome.added_operations,
        "removed_operations": outcome.removed_operations,
    })
}

/// Loads the hash key ring from configuration or the data directory.
pub fn load_redactor(config: &ServerConfig) -> anyhow::Result<Redactor> {
    let (current, mut previous) = match &config.secret_key {
        Some(text) => SecretKey::parse_ring(text)?,
        None => SecretKey::load_ring_or_create(&config.data_dir)?,
    };
    for text in &config.previous_secret_keys {
        previous.push(SecretKey::parse(text)?);
    }
    let mut redactor = Redactor::new(current.bytes, current.version);
    for key in previous {
        redactor = redactor
            .with_previous_key(key.bytes, key.version)
            .context("two previous secret keys share a version")?;
    }
    Ok(redactor)
}
