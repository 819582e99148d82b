//! The token file: named tokens with roles, stored as hashes only.
//!
//! `<data_dir>/tokens.json` contains one record per token: its name, roles,
//! creation time, the SHA-256 of its secret and a SCRAM-SHA-256 verifier.
//! A secret is 32 random bytes, so a plain SHA-256 cannot be reversed by
//! guessing, and the file never contains anything that logs a client in on
//! its own. The `apitrail token` commands write the file under an exclusive
//! lock and replace it atomically. A running server notices a change by the
//! file's modification time and size and reloads it, so a revocation takes
//! effect on the next request or login.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::scram::ScramVerifier;
use super::{Role, RoleSet};

/// File name of the token file inside the data directory.
pub const TOKEN_FILE: &str = "tokens.json";

/// Prefix of every secret, so that a leaked secret is easy to recognise in
/// logs and by secret scanners.
pub const SECRET_PREFIX: &str = "apt_";

const FILE_VERSION: u32 = 1;

/// One token as stored: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub roles: RoleSet,
    /// Creation time, RFC 3339 in UTC.
    pub created_at: String,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// Verifier for PostgreSQL's SCRAM-SHA-256 login.
    pub scram: ScramVerifier,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// The tokens of one data directory, read from disk.
#[derive(Debug, Default, Clone)]
pub struct TokenSet {
    by_name: HashMap<String, TokenRecord>,
    by_hash: HashMap<[u8; 32], String>,
}

impl TokenSet {
    fn from_records(records: Vec<TokenRecord>) -> anyhow::Result<Self> {
        let mut set = TokenSet::default();
        for record in records {
            let digest = decode_digest(&record.secret_sha256)
                .with_context(|| format!("token {:?} has an invalid secret hash", record.name))?;
            set.by_hash.insert(digest, record.name.clone());
            set.by_name.insert(record.name.clone(), record);
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn get(&self, name: &str) -> Option<&TokenRecord> {
        self.by_name.get(name)
    }

    /// Finds the token whose secret is `secret`.
    pub fn find_by_secret(&self, secret: &str) -> Option<&TokenRecord> {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let name = self.by_hash.get(&digest)?;
        self.by_name.get(name)
    }

    /// Finds the token `name` if `secret` is its secret.
    pub fn check_name_and_secret(&self, name: &str, secret: &str) -> Option<&TokenRecord> {
        self.find_by_secret(secret)
            .filter(|record| record.name == name)
    }
}

/// Compares two byte strings in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_digest(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text).context("not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("not 32 bytes"))
}

/// The token file of a data directory, reloaded when it changes on disk.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    cache: Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    /// Modification time and length of the file when it was read; `None`
    /// when the file did not exist.
    stamp: Option<(SystemTime, u64)>,
    tokens: Arc<TokenSet>,
}

impl TokenStore {
    /// Opens the token file of `data_dir`; a missing file means no tokens.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let store = TokenStore {
            path: data_dir.join(TOKEN_FILE),
            cache: Mutex::new(Cached::default()),
        };
        store.reload()?;
        Ok(store)
    }

    /// Returns the current tokens, reading the file again if it changed.
    ///
    /// A file that became unreadable or invalid keeps the last good set in
    /// force and logs the error, so a bad edit cannot open the server up.
    pub fn current(&self) -> Arc<TokenSet> {
        if let Err(error) = self.reload() {
            tracing::error!(path = %self.path.display(), error = %format!("{error:#}"),
                "cannot reload the token file; the tokens read before stay in force");
        }
        let cache = self.cache.lock().expect("token cache poisoned");
        Arc::clone(&cache.tokens)
    }

    fn reload(&self) -> anyhow::Result<()> {
        let stamp = file_stamp(&self.path)?;
        let mut cache = self.cache.lock().expect("token cache poisoned");
        if cache.stamp == stamp && stamp.is_some() {
            return Ok(());
        }
        let tokens = match stamp {
            None => TokenSet::default(),
            Some(_) => TokenSet::from_records(read_file(&self.path)?.tokens)?,
        };
        if stamp.is_some() || !cache.tokens.is_empty() {
            tracing::info!(path = %self.path.display(), tokens = tokens.by_name.len(), "token file loaded");
        }
        cache.tokens = Arc::new(tokens);
        cache.stamp = stamp;
        Ok(())
    }
}

fn file_stamp(path: &Path) -> anyhow::Result<Option<(SystemTime, u64)>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.modified()?, meta.len()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the metadata of {}", path.display())),
    }
}

fn read_file(path: &Path) -> anyhow::Result<TokenFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file: TokenFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid token file", path.display()))?;
    if file.version != FILE_VERSION {
        bail!(
            "{} has version {}, but this apitrail reads version {FILE_VERSION}",
            path.display(),
            file.version
        );
    }
    Ok(file)
}

/// A token just created: the record and the secret, shown once.
pub struct NewToken {
    pub record: TokenRecord,
    pub secret: String,
}

/// Checks a token name: 1 to 64 letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit, so it works as a PostgreSQL user name unquoted.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || !valid_start || !valid_chars {
        bail!(
            "invalid token name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', \
             starting with a letter or digit"
        );
    }
    Ok(())
}

/// Generates a new secret: the prefix and 32 random bytes in unpadded base64url.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Edits the token file of `data_dir` under an exclusive lock.
///
/// The lock is a separate file so that readers, which never lock, always see
/// either the old or the new token file, never a partly written one.
fn edit<T>(
    data_dir: &Path,
    change: impl FnOnce(&mut Vec<TokenRecord>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let lock_path = data_dir.join("tokens.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;

    let path = data_dir.join(TOKEN_FILE);
    let mut file = read_file(&path)?;
    let result = change(&mut file.tokens)?;
    file.version = FILE_VERSION;
    let text = serde_json::to_string_pretty(&file).context("encoding the token file")?;
    write_private(&path, text.as_bytes())?;
    Ok(result)
}

/// Writes `bytes` to `path` through a temporary file that only the owner may
/// read, then renames it into place.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("replacing {} with {}", path.display(), tmp.display()))?;
    Ok(())
}

/// Creates a token named `name` with `roles` in the token file of `data_dir`.
pub fn create(data_dir: &Path, name: &str, roles: &[Role]) -> anyhow::Result<NewToken> {
    validate_name(name)?;
    if roles.is_empty() {
        bail!("a token needs at least one role: read, ingest or admin");
    }
    let roles = RoleSet::from_roles(roles);
    edit(data_dir, |tokens| {
        if tokens.iter().any(|t| t.name == name) {
            bail!("a token named {name:?} exists; revoke it first or pick another name");
        }
        let secret = generate_secret();
        let record = TokenRecord {
            name: name.to_owned(),
            roles,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            scram: ScramVerifier::generate(&secret),
        };
        tokens.push(record.clone());
        Ok(NewToken { record, secret })
    })
}

/// Removes the token `name`; an unknown name is an error.
pub fn revoke(data_dir: &Path, name: &str) -> anyhow::Result<TokenRecord> {
    edit(data_dir, |tokens| {
        let Some(index) = tokens.iter().position(|t| t.name == name) else {
            bail!("no token is named {name:?}; `apitrail token list` shows the names");
        };
        Ok(tokens.remove(index))
    })
}

/// Lists the tokens of `data_dir` in creation order.
pub fn list(data_dir: &Path) -> anyhow::Result<Vec<TokenRecord>> {
    Ok(read_file(&data_dir.join(TOKEN_FILE))?.tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_stores_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), "grafana", &[Role::Read]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap();
        assert!(token.secret.starts_with(SECRET_PREFIX));
        let random_part = &token.secret[SECRET_PREFIX.len()..];
        assert!(
            !text.contains(random_part),
            "the token file contains the secret: {text}"
        );
        assert!(text.contains("grafana"));
    }

    #[test]
    fn token_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), "a", &[Role::Read]).unwrap();
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    #[test]
    fn lookups_by_secret_and_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), "shipper", &[Role::Ingest]).unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let tokens = store.current();
        assert_eq!(
            tokens
                .find_by_secret(&token.secret)
                .map(|t| t.name.as_str()),
            Some("shipper")
        );
        assert!(tokens.find_by_secret("apt_wrong").is_none());
        assert!(
            tokens
                .check_name_and_secret("shipper", &token.secret)
                .is_some()
        );
        assert!(
            tokens
                .check_name_and_secret("other", &token.secret)
                .is_none()
        );
        assert!(
            tokens
                .check_name_and_secret("shipper", "apt_wrong")
                .is_none()
        );
    }

    #[test]
    fn duplicate_name_rejected() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), "a", &[Role::Read]).unwrap();
        let error = create(dir.path(), "a", &[Role::Admin]).err().unwrap();
        assert!(error.to_string().contains("exists"), "{error}");
    }

    #[test]
    fn invalid_names_rejected() {
        for name in ["", "-a", "a b", "a:b", "é", &"x".repeat(65)] {
            assert!(validate_name(name).is_err(), "{name:?} was accepted");
        }
        for name in ["a", "grafana-prod", "ci.bot_1", &"x".repeat(64)] {
            assert!(validate_name(name).is_ok(), "{name:?} was rejected");
        }
    }

    #[test]
    fn store_reloads_after_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), "a", &[Role::Read]).unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        assert!(store.current().find_by_secret(&token.secret).is_some());
        revoke(dir.path(), "a").unwrap();
        assert!(
            store.current().find_by_secret(&token.secret).is_none(),
            "a revoked token still works"
        );
        assert!(store.current().is_empty());
    }

    #[test]
    fn revoke_unknown_name_fails() {
        let dir = tempfile::tempdir().unwrap();
        let error = revoke(dir.path(), "ghost").err().unwrap();
        assert!(error.to_string().contains("no token is named"), "{error}");
    }

    #[test]
    fn invalid_file_keeps_last_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), "a", &[Role::Read]).unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        std::fs::write(
            dir.path().join(TOKEN_FILE),
            "{ not json, longer than before }",
        )
        .unwrap();
        assert!(
            store.current().find_by_secret(&token.secret).is_some(),
            "a broken file dropped the tokens read before"
        );
    }
}
