//! `s3://bucket/key` inputs: listing and reading objects of Amazon S3 and
//! S3-compatible servers.
//!
//! A URL that ends with `/` names a prefix: every object under it, in key
//! order, without keys that have a hidden part (a segment starting with `.`)
//! below the prefix. A URL without the trailing slash names that object if
//! it exists, else the prefix.
//!
//! Credentials come from these sources, in this order:
//!
//! 1. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with
//!    `AWS_SESSION_TOKEN` for temporary credentials;
//! 2. a web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, which
//!    are exchanged at the STS endpoint of the region;
//! 3. the profile `AWS_PROFILE` (default `default`) of the shared credentials
//!    file, `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`.
//!
//! `AWS_SKIP_SIGNATURE=true` sends unsigned requests, for public buckets,
//! whatever else is set.
//!
//! apitrail never requests credentials from an instance metadata service
//! (EC2, ECS or EKS). Without one of the sources above, an `s3://` input
//! fails with a message that lists them. `AWS_REGION` or `AWS_DEFAULT_REGION` sets
//! the region (default `us-east-1`), and `--s3-endpoint` or
//! `AWS_ENDPOINT_URL` an S3-compatible server, addressed path-style.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncRead;

/// A parsed `s3://bucket/key` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Url {
    pub bucket: String,
    /// The key or prefix, without the leading `/`; empty for a whole bucket.
    pub key: String,
}

impl S3Url {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let rest = text
            .strip_prefix("s3://")
            .with_context(|| format!("{text:?} is not an s3:// URL"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("the S3 URL {text:?} has no bucket; write it as s3://BUCKET/PREFIX/");
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Returns whether the URL names a prefix only, with a trailing `/` or no key.
    fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// One listed object, read at the version it was listed with.
pub(crate) struct S3Object {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    meta: ObjectMeta,
}

impl S3Object {
    pub(crate) fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.meta.location)
    }

    pub(crate) fn file_name(&self) -> String {
        self.meta
            .location
            .filename()
            .unwrap_or(self.meta.location.as_ref())
            .to_string()
    }

    pub(crate) fn size(&self) -> u64 {
        self.meta.size
    }

    /// Entity tag of the listed version; `None` when the server sent none.
    pub(crate) fn e_tag(&self) -> Option<&str> {
        self.meta.e_tag.as_deref()
    }

    /// Streams the object's bytes; fails if it changed since it was listed.
    pub(crate) async fn open(&self) -> anyhow::Result<Pin<Box<dyn AsyncRead + Send>>> {
        let options = GetOptions {
            if_match: self.meta.e_tag.clone(),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.meta.location, options)
            .await
            .map_err(|e| match e {
                object_store::Error::Precondition { .. } => anyhow::anyhow!(
                    "{} changed while it was imported; import it again",
                    self.url()
                ),
                other => anyhow::Error::new(other).context(format!("cannot read {}", self.url())),
            })?;
        let stream = result.into_stream().map_err(std::io::Error::other);
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }
}

/// Builds one client per bucket, on first use.
pub(crate) struct S3Client {
    endpoint: Option<String>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl S3Client {
    /// `endpoint` is the URL of an S3-compatible server, `None` for Amazon S3.
    pub(crate) fn new(endpoint: Option<String>) -> Self {
        S3Client {
            endpoint,
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// Lists the objects `url` names, in key order.
    pub(crate) async fn list(&self, url: &S3Url) -> anyhow::Result<Vec<S3Object>> {
        let store = self.store(&url.bucket)?;
        if !url.is_prefix() {
            let location = ObjectPath::from(url.key.as_str());
            match store.head(&location).await {
                Ok(meta) => {
                    return Ok(vec![S3Object {
                        store,
                        bucket: url.bucket.clone(),
                        meta,
                    }]);
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.describe(e, url)),
            }
        }
        let prefix = ObjectPath::from(url.key.as_str());
        let prefix_parts = prefix.parts().count();
        let prefix = (prefix_parts > 0).then_some(prefix);
        let mut listing = store.list(prefix.as_ref());
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.describe(e, url))?;
            let hidden = meta
                .location
                .parts()
                .skip(prefix_parts)
                .any(|part| part.as_ref().starts_with('.'));
            if !hidden {
                objects.push(S3Object {
                    store: Arc::clone(&store),
                    bucket: url.bucket.clone(),
                    meta,
                });
            }
        }
        objects.sort_by(|a, b| a.meta.location.cmp(&b.meta.location));
        Ok(objects)
    }

    fn describe(&self, error: object_store::Error, url: &S3Url) -> anyhow::Error {
        let server = self.endpoint.as_deref().unwrap_or("Amazon S3");
        anyhow::Error::new(error).context(format!(
            "listing {url} at {server} failed; check the bucket name, the credentials and --s3-endpoint"
        ))
    }

    fn store(&self, bucket: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
        let mut stores = self.stores.lock().expect("S3 client map lock poisoned");
        if let Some(store) = stores.get(bucket) {
            return Ok(Arc::clone(store));
        }
        let store: Arc<dyn ObjectStore> = Arc::new(self.build(bucket)?);
        stores.insert(bucket.to_string(), Arc::clone(&store));
        Ok(store)
    }

    fn build(&self, bucket: &str) -> anyhow::Result<object_store::aws::AmazonS3> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);

        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let has_keys = env("AWS_ACCESS_KEY_ID").is_some() || env("AWS_SECRET_ACCESS_KEY").is_some();
        let has_web_identity =
            env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && env("AWS_ROLE_ARN").is_some();
        let skip_signature =
            env("AWS_SKIP_SIGNATURE").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        if !has_keys && !has_web_identity && !skip_signature {
            // Without credentials here, object_store would request them from the
            // instance metadata service.
            let profile = shared_credentials()?.with_context(|| {
                format!(
                    "no AWS credentials for s3://{bucket}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                     AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, a profile in ~/.aws/credentials \
                     (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE), or AWS_SKIP_SIGNATURE=true for a public bucket; \
                     apitrail does not ask an instance metadata service"
                )
            })?;
            builder = builder
                .with_config(AmazonS3ConfigKey::AccessKeyId, profile.access_key_id)
                .with_config(
                    AmazonS3ConfigKey::SecretAccessKey,
                    profile.secret_access_key,
                );
            if let Some(token) = profile.session_token {
                builder = builder.with_config(AmazonS3ConfigKey::Token, token);
            }
        }

        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let allow_http = self
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .is_some_and(|e| e.starts_with("http://"));
        // Objects stream to the ingest pipeline for as long as they take, so
        // only connecting has a time limit.
        let client = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout_disabled()
            .with_connect_timeout(Duration::from_secs(10));
        builder
            .with_client_options(client)
            .build()
            .with_context(|| format!("configuring the S3 client for bucket {bucket}"))
    }
}

/// Keys of one profile of the shared credentials file.
struct ProfileCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// Reads the profile `AWS_PROFILE` (default `default`) from the shared
/// credentials file; `None` if the file or the profile does not exist.
fn shared_credentials() -> anyhow::Result<Option<ProfileCredentials>> {
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => std::path::PathBuf::from(path),
        None => match std::env::var_os("HOME") {
            Some(home) => std::path::Path::new(&home).join(".aws/credentials"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    let keys = profile_keys(&text, &profile);
    let (Some(access_key_id), Some(secret_access_key)) = (
        keys.get("aws_access_key_id"),
        keys.get("aws_secret_access_key"),
    ) else {
        return Ok(None);
    };
    Ok(Some(ProfileCredentials {
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
        session_token: keys.get("aws_session_token").cloned(),
    }))
}

/// Returns the `key = value` pairs of section `[profile]` of an INI text.
fn profile_keys(text: &str, profile: &str) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    let mut in_profile = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        if in_profile && let Some((key, value)) = line.split_once('=') {
            keys.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let url = S3Url::parse("s3://logs/alb/2024/").unwrap();
        assert_eq!(url.bucket, "logs");
        assert_eq!(url.key, "alb/2024/");
        assert!(url.is_prefix());
        assert!(!S3Url::parse("s3://logs/a.log").unwrap().is_prefix());
        assert!(S3Url::parse("s3://logs").unwrap().is_prefix());
        assert_eq!(S3Url::parse("s3://logs").unwrap().to_string(), "s3://logs/");
        assert!(S3Url::parse("s3://").is_err());
    }

    #[test]
    fn profile_section_is_read() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=B\n\n\
                    [other]\naws_access_key_id = C\naws_secret_access_key = D\naws_session_token = T\n";
        let other = profile_keys(text, "other");
        assert_eq!(other["aws_access_key_id"], "C");
        assert_eq!(other["aws_session_token"], "T");
        assert_eq!(profile_keys(text, "default")["aws_secret_access_key"], "B");
        assert!(profile_keys(text, "missing").is_empty());
    }
}
