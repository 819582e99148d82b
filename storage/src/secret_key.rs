//! The key of the keyed hash that replaces secrets.
//!
//! Stored as `<data-dir>/secret.key`: one line `v<version>:<64 hex chars>`,
//! created on first start with 32 random bytes and permissions 0600. All nodes
//! of one store must share the key, so a consumer hashes to the same value
//! everywhere. Configuration can supply it instead of the file.
//!
//! Rotation: a new key goes on the first line with a higher version and the
//! old lines stay below it. The first line hashes from then on; the others
//! are previous keys, under which API keys are hashed too, so that consumer
//! names recorded under an old hash still resolve.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Result, StorageError};

/// A hash key and its version.
#[derive(Clone)]
pub struct SecretKey {
    pub version: u32,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("version", &self.version)
            .field("bytes", &"<hidden>")
            .finish()
    }
}

impl SecretKey {
    /// Parses the `v<version>:<hex>` form used in the key file and in configuration.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let invalid = || {
            StorageError::Config(
                "secret key must look like v1:<at least 32 hex characters>".to_string(),
            )
        };
        let (version, hex_key) = text.split_once(':').ok_or_else(invalid)?;
        let version = version
            .strip_prefix('v')
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(invalid)?;
        let bytes = hex::decode(hex_key).map_err(|_| invalid())?;
        if bytes.len() < 16 {
            return Err(invalid());
        }
        Ok(SecretKey { version, bytes })
    }

    /// Parses a key ring: one key per line, the current key first, blank lines ignored.
    pub fn parse_ring(text: &str) -> Result<(Self, Vec<Self>)> {
        let mut keys = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(Self::parse);
        let current = keys
            .next()
            .ok_or_else(|| StorageError::Config("the secret key file is empty".to_string()))??;
        let previous = keys.collect::<Result<Vec<_>>>()?;
        if let Some(clash) = previous.iter().find(|k| k.version >= current.version) {
            return Err(StorageError::Config(format!(
                "secret key version v{} on a later line is not below the current version v{}; put the newest key on the first line",
                clash.version, current.version
            )));
        }
        Ok((current, previous))
    }

    /// Reads the key ring of a data directory, creating it with a random key if absent.
    pub fn load_ring_or_create(data_dir: &Path) -> Result<(Self, Vec<Self>)> {
        let path = data_dir.join("secret.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| StorageError::io("reading secret key", &path, e))?;
            return Self::parse_ring(&text);
        }
        Ok((Self::load_or_create(data_dir)?, Vec::new()))
    }

    /// Reads the current key of a data directory, creating it with a random key if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => return Self::parse_ring(&text).map(|(current, _)| current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("reading secret key", &path, e)),
        }

        let mut bytes = vec![0u8; 32];
        getrandom_fill(&mut bytes)
            .map_err(|e| StorageError::io("generating secret key", &path, e))?;
        let key = SecretKey { version: 1, bytes };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StorageError::io("creating secret key", &path, e))?;
        writeln!(file, "v{}:{}", key.version, hex::encode(&key.bytes))
            .and_then(|()| file.sync_all())
            .map_err(|e| StorageError::io("writing secret key", &path, e))?;
        tracing::info!(path = %path.display(), version = key.version, "created secret hash key");
        Ok(key)
    }
}

fn getrandom_fill(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_current_first() {
        let text = format!("v2:{}\n\nv1:{}\n", "ab".repeat(32), "cd".repeat(32));
        let (current, previous) = SecretKey::parse_ring(&text).unwrap();
        assert_eq!(current.version, 2);
        assert_eq!(previous.len(), 1);
        assert_eq!(previous[0].version, 1);
    }

    #[test]
    fn ring_rejects_older_first() {
        let text = format!("v1:{}\nv2:{}\n", "ab".repeat(32), "cd".repeat(32));
        let error = SecretKey::parse_ring(&text).unwrap_err().to_string();
        assert!(error.contains("newest key on the first line"), "{error}");
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_created_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "key file must be readable by its owner only"
        );
        let second = SecretKey::load_or_create(dir.path()).unwrap();
        assert_eq!(
            first.bytes, second.bytes,
            "the key must persist across starts"
        );
        assert_eq!(first.bytes.len(), 32);
    }

    #[test]
    fn parse_rejects_short_key() {
        assert!(SecretKey::parse("v1:abcd").is_err());
        assert!(SecretKey::parse("1:00112233445566778899aabbccddeeff").is_err());
        let key = SecretKey::parse("v3:00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(key.version, 3);
    }
}
