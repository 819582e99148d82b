//! Small JSON documents kept beside the tables on the object store.
//!
//! The inventory state that every node of a store shares (the templater's
//! learned positions, the loaded API descriptions, consumer aliases) is
//! stored as whole JSON objects under `<views table>/_apitrail/<name>.json`.
//! Delta readers ignore directories whose names start with `_`, so the
//! documents do not disturb the table. A put replaces a document
//! atomically; a reader sees the old or the new version, never a mix.
//!
//! NOTE: two nodes that save the same document at once race, and the last
//! put wins. Callers merge what they read before they write, so learned
//! state converges at the next save, but an update can be missing until then.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::{Result, StorageError};
use crate::object_stores::redact_url;

/// Directory of the documents inside the views table.
const DOCUMENTS_DIR: &str = "_apitrail";

/// Reads and writes the shared documents of one store.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    location: String,
}

impl DocumentStore {
    /// Opens the document directory of the views table at `views_url`.
    pub fn open(views_url: &Url, storage_options: &HashMap<String, String>) -> Result<Self> {
        let location = redact_url(views_url);
        let (store, path) = crate::object_stores::open_url(views_url, storage_options)?;
        Ok(DocumentStore {
            store,
            prefix: path.join(DOCUMENTS_DIR),
            location,
        })
    }

    /// Reads a document; `None` when it was never written.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let path = self.prefix.clone().join(format!("{name}.json").as_str());
        match self.store.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(|e| self.error(name, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(name, e)),
        }
    }

    /// Replaces a document.
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<()> {
        let path = self.prefix.clone().join(format!("{name}.json").as_str());
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(name, e))?;
        Ok(())
    }

    fn error(&self, name: &str, source: object_store::Error) -> StorageError {
        StorageError::Document {
            location: format!("{}{DOCUMENTS_DIR}/{name}.json", self.location),
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn documents_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path().join("views")).unwrap();
        std::fs::create_dir_all(dir.path().join("views")).unwrap();
        let documents = DocumentStore::open(&url, &HashMap::new()).unwrap();
        assert_eq!(
            documents.get("templater").await.unwrap(),
            None,
            "absent before the first put"
        );
        documents
            .put("templater", Bytes::from_static(b"{\"a\":1}"))
            .await
            .unwrap();
        documents
            .put("templater", Bytes::from_static(b"{\"a\":2}"))
            .await
            .unwrap();
        assert_eq!(
            documents.get("templater").await.unwrap().as_deref(),
            Some(&b"{\"a\":2}"[..]),
            "the second put replaces the first"
        );
        assert!(dir.path().join("views/_apitrail/templater.json").is_file());
    }
}
