//! Object stores by URL: local paths, Amazon S3 and S3-compatible servers,
//! Google Cloud Storage and Azure Blob Storage / ADLS Gen2.
//!
//! deltalake resolves a table URL through two process-wide registries keyed
//! by URL scheme: one builds the object store, the other the log store that
//! writes commits. Out of the box they know only `file://` and `memory://`.
//! [`register_cloud_schemes`] adds `s3://`, `s3a://`, `gs://`, `az://`,
//! `abfs://` and `abfss://`, with stores built by object_store's own builders
//! and deltalake's default log store on top.
//!
//! The default log store commits version `N` by writing
//! `_delta_log/<N>.json` with `PutMode::Create`, a put-if-absent. object_store
//! sends it to S3 as `PUT` with `If-None-Match: *`, to GCS with
//! `x-goog-if-generation-match: 0` and to Azure with `If-None-Match: *`. Of two
//! writers that race for one version, exactly one put succeeds. The other
//! gets `AlreadyExists`, so deltalake checks the winner's commit for
//! conflicts and retries at the next version. An S3-compatible server must therefore
//! support conditional writes: one that ignores `If-None-Match` lets the
//! second writer overwrite the first one's commit.
//!
//! Each builder first reads the usual environment variables of its cloud
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), then the store's options, which take
//! precedence. Option keys are object_store's configuration keys, such as
//! `aws_endpoint`, `aws_region` or `aws_allow_http`. Where neither gives
//! credentials, object_store falls back to its defaults (profiles, instance
//! metadata); apitrail itself never calls a metadata address.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Once};

use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;
use url::Url;

use crate::error::{Result, StorageError};

/// URL schemes that [`register_cloud_schemes`] adds to deltalake.
pub const CLOUD_SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "abfs", "abfss"];

/// Text that replaces the value of an option that may be a secret.
const REDACTED: &str = "<redacted>";

/// Option names, without their `aws_`, `google_` or `azure_` prefix, whose
/// values are shown in logs. Every other value is redacted.
const PUBLIC_OPTIONS: &[&str] = &[
    "endpoint",
    "endpoint_url",
    "base_url",
    "region",
    "default_region",
    "allow_http",
    "bucket",
    "bucket_name",
    "container_name",
    "account_name",
    "storage_account_name",
    "virtual_hosted_style_request",
    "conditional_put",
    "use_emulator",
    "use_fabric_endpoint",
    "skip_signature",
    "timeout",
    "connect_timeout",
];

/// Cloud of a URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    S3,
    Gcs,
    Azure,
}

impl Cloud {
    fn of(scheme: &str) -> Option<Self> {
        match scheme {
            "s3" | "s3a" => Some(Cloud::S3),
            "gs" => Some(Cloud::Gcs),
            "az" | "abfs" | "abfss" => Some(Cloud::Azure),
            _ => None,
        }
    }

    /// Checks that `key` is one of object_store's configuration keys for this cloud.
    fn accepts(self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        match self {
            Cloud::S3 => key.parse::<AmazonS3ConfigKey>().is_ok(),
            Cloud::Gcs => key.parse::<GoogleConfigKey>().is_ok(),
            Cloud::Azure => key.parse::<AzureConfigKey>().is_ok(),
        }
    }

    /// Configuration keys named as examples in error messages.
    fn example_keys(self) -> &'static str {
        match self {
            Cloud::S3 => "aws_endpoint, aws_region or aws_allow_http",
            Cloud::Gcs => "google_service_account, google_service_account_key or google_base_url",
            Cloud::Azure => {
                "azure_storage_account_name, azure_storage_endpoint or azure_storage_use_emulator"
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cloud::S3 => "Amazon S3",
            Cloud::Gcs => "Google Cloud Storage",
            Cloud::Azure => "Azure Blob Storage",
        }
    }
}

/// Checks whether deltalake can open tables at URLs with this scheme once
/// [`register_cloud_schemes`] has run.
pub fn is_supported_scheme(scheme: &str) -> bool {
    matches!(scheme, "file" | "memory") || Cloud::of(scheme).is_some()
}

/// Adds the cloud schemes to deltalake's object store and log store
/// registries. Only the first call changes anything.
pub fn register_cloud_schemes() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        let object_stores = object_store_factories();
        let log_stores = logstore_factories();
        for scheme in CLOUD_SCHEMES {
            let Ok(url) = Url::parse(&format!("{scheme}://")) else {
                continue;
            };
            object_stores.insert(url.clone(), Arc::new(CloudObjectStoreFactory));
            log_stores.insert(url, Arc::new(CloudLogStoreFactory));
        }
    });
}

/// Checks the options of a store before anything is opened, so that a
/// misspelt key fails at start-up instead of being ignored.
pub fn check_options(url: &Url, options: &HashMap<String, String>) -> Result<()> {
    let scheme = url.scheme();
    let Some(cloud) = Cloud::of(scheme) else {
        if is_supported_scheme(scheme) {
            return match options.keys().next() {
                None => Ok(()),
                Some(key) => Err(StorageError::Config(format!(
                    "storage option {key:?} is set, but the store {} is local; \
                     storage options apply to s3://, gs:// and az:// stores",
                    redact_url(url)
                ))),
            };
        }
        return Err(StorageError::Config(format!(
            "store URL scheme {scheme:?} is not supported; use a local path, file://, {}",
            CLOUD_SCHEMES
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let mut unknown: Vec<&str> = options
        .keys()
        .map(String::as_str)
        .filter(|key| !cloud.accepts(key))
        .collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        return Err(StorageError::Config(format!(
            "unknown storage option {} for {} ({scheme}://); use object_store's configuration keys, such as {}",
            unknown
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            cloud.name(),
            cloud.example_keys()
        )));
    }
    Ok(())
}

/// Opens the object store of `url`; returns it, rooted at the bucket or
/// container, with the path of `url` inside it.
pub fn open_url(
    url: &Url,
    options: &HashMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let location = redact_url(url);
    let fail = |e: object_store::Error| {
        StorageError::Config(format!("cannot open the object store at {location}: {e}"))
    };
    match Cloud::of(url.scheme()) {
        Some(cloud) => {
            let store = build_cloud_store(cloud, url, options).map_err(fail)?;
            let path = Path::from_url_path(url.path()).map_err(|e| fail(e.into()))?;
            Ok((store, path))
        }
        None => {
            let (store, path) = object_store::parse_url_opts(url, options.iter()).map_err(fail)?;
            Ok((Arc::from(store), path))
        }
    }
}

/// Sets on `$builder` every option whose key parses as `$key`, and builds
/// the store. The three builders share no trait, hence a macro.
macro_rules! configured {
    ($builder:expr, $key:ty, $keys:expr) => {{
        let mut builder = $builder;
        for (key, value) in $keys {
            if let Ok(key) = key.parse::<$key>() {
                builder = builder.with_config(key, value);
            }
        }
        Arc::new(builder.build()?) as Arc<dyn ObjectStore>
    }};
}

/// Builds the store of a cloud URL's bucket or container: environment
/// variables first, then `options` over them.
///
/// The tests write to S3 through moto and to Azure through Azurite.
/// NOTE: `gs://` stores are built and their options checked, but no test
/// writes to GCS, because the GCS emulator tried lacks the XML API listing
/// and conditional puts that object_store uses.
fn build_cloud_store(
    cloud: Cloud,
    url: &Url,
    options: &HashMap<String, String>,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    // Keys that are not object_store's, such as deltalake's own, are left
    // out here; `check_options` rejects them in the server's configuration.
    let keys = options
        .iter()
        .map(|(key, value)| (key.to_ascii_lowercase(), value));
    let url = url.as_str();
    let store = match cloud {
        Cloud::S3 => {
            configured!(
                AmazonS3Builder::from_env().with_url(url),
                AmazonS3ConfigKey,
                keys
            )
        }
        Cloud::Gcs => configured!(
            GoogleCloudStorageBuilder::from_env().with_url(url),
            GoogleConfigKey,
            keys
        ),
        Cloud::Azure => configured!(
            MicrosoftAzureBuilder::from_env().with_url(url),
            AzureConfigKey,
            keys
        ),
    };
    Ok(store)
}

/// Builds object stores for deltalake from a cloud table URL.
#[derive(Debug, Default)]
struct CloudObjectStoreFactory;

impl ObjectStoreFactory for CloudObjectStoreFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let cloud = Cloud::of(url.scheme())
            .ok_or_else(|| DeltaTableError::InvalidTableLocation(redact_url(url)))?;
        let store = build_cloud_store(cloud, url, &config.raw)?;
        let path = Path::from_url_path(url.path()).map_err(object_store::Error::from)?;
        Ok((store, path))
    }
}

/// Builds deltalake's default log store, which commits with put-if-absent.
#[derive(Debug, Default)]
struct CloudLogStoreFactory;

impl LogStoreFactory for CloudLogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Returns the options with every value that may be a secret replaced, for logs.
pub fn redact_options(options: &HashMap<String, String>) -> BTreeMap<String, String> {
    options
        .iter()
        .map(|(key, value)| {
            let lower = key.to_ascii_lowercase();
            let name = ["aws_", "google_", "azure_storage_", "azure_"]
                .iter()
                .find_map(|prefix| lower.strip_prefix(prefix))
                .unwrap_or(&lower);
            let shown = if PUBLIC_OPTIONS.contains(&name) {
                value.clone()
            } else {
                REDACTED.to_string()
            };
            (key.clone(), shown)
        })
        .collect()
}

/// Removes credentials and the query from a URL, for logs and error messages.
///
/// The user part of an `abfs://` or `abfss://` URL names the container, not
/// a user, so it stays.
pub fn redact_url(url: &Url) -> String {
    let mut redacted = url.clone();
    let _ = redacted.set_password(None);
    if !matches!(url.scheme(), "abfs" | "abfss") {
        let _ = redacted.set_username("");
    }
    redacted.set_query(None);
    redacted.set_fragment(None);
    redacted.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_checked_per_cloud() {
        let s3 = Url::parse("s3://bucket/events/").unwrap();
        let good = options(&[
            ("aws_endpoint", "http://127.0.0.1:9000"),
            ("aws_region", "us-east-1"),
            ("aws_allow_http", "true"),
            ("AWS_ACCESS_KEY_ID", "id"),
        ]);
        assert!(check_options(&s3, &good).is_ok());

        let typo = options(&[("aws_endpoitn", "http://127.0.0.1:9000")]);
        let message = check_options(&s3, &typo).unwrap_err().to_string();
        assert!(message.contains("\"aws_endpoitn\""), "{message}");

        let gs = Url::parse("gs://bucket/events/").unwrap();
        assert!(check_options(&gs, &options(&[("google_service_account", "/key.json")])).is_ok());
        assert!(
            check_options(&gs, &good).is_err(),
            "S3 keys do not configure GCS"
        );

        let az = Url::parse("abfss://data@account.dfs.core.windows.net/events/").unwrap();
        assert!(check_options(&az, &options(&[("azure_storage_account_key", "k")])).is_ok());

        // Settings that point the stores at local emulators.
        let azurite = options(&[
            ("azure_storage_use_emulator", "true"),
            (
                "azure_storage_endpoint",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
            ("azure_allow_http", "true"),
        ]);
        assert!(check_options(&az, &azurite).is_ok());
        let message = check_options(&az, &options(&[("azure_use_emulator", "true")]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("\"azure_use_emulator\""), "{message}");
        assert!(message.contains("azure_storage_use_emulator"), "{message}");
        let gcs_emulator = options(&[
            ("google_base_url", "http://127.0.0.1:4443"),
            ("google_allow_http", "true"),
        ]);
        assert!(check_options(&gs, &gcs_emulator).is_ok());
    }

    #[test]
    fn local_store_rejects_options() {
        let url = Url::parse("file:///tmp/events/").unwrap();
        assert!(check_options(&url, &HashMap::new()).is_ok());
        assert!(check_options(&url, &options(&[("aws_region", "x")])).is_err());
        let ftp = Url::parse("ftp://host/events/").unwrap();
        assert!(check_options(&ftp, &HashMap::new()).is_err());
    }

    #[test]
    fn secrets_redacted_in_options() {
        let redacted = redact_options(&options(&[
            ("aws_endpoint", "http://127.0.0.1:9000"),
            ("aws_region", "eu-west-1"),
            ("aws_secret_access_key", "very-secret"),
            ("aws_access_key_id", "AKIAEXAMPLE"),
            ("aws_session_token", "token"),
            ("azure_storage_sas_key", "sig=abc"),
            ("google_service_account_key", "{...}"),
            ("google_base_url", "http://127.0.0.1:4443"),
            (
                "azure_storage_endpoint",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
            ("azure_storage_account_key", "a2V5"),
        ]));
        assert_eq!(redacted["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(redacted["google_base_url"], "http://127.0.0.1:4443");
        assert_eq!(
            redacted["azure_storage_endpoint"],
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(redacted["aws_region"], "eu-west-1");
        for key in [
            "aws_secret_access_key",
            "aws_access_key_id",
            "aws_session_token",
            "azure_storage_sas_key",
            "google_service_account_key",
            "azure_storage_account_key",
        ] {
            assert_eq!(redacted[key], REDACTED, "{key}");
        }
    }

    #[test]
    fn url_credentials_redacted() {
        let url = Url::parse("s3://user:pass@bucket/events/?sig=abc").unwrap();
        assert_eq!(redact_url(&url), "s3://bucket/events/");
        let url = Url::parse("abfss://data:key@account.dfs.core.windows.net/events/").unwrap();
        assert_eq!(
            redact_url(&url),
            "abfss://data@account.dfs.core.windows.net/events/"
        );
    }

    #[test]
    fn s3_store_from_options_only() {
        let url = Url::parse("s3://bucket/prefix/events/").unwrap();
        let opts = options(&[
            ("aws_endpoint", "http://127.0.0.1:1"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "testing"),
            ("aws_secret_access_key", "testing"),
            ("aws_allow_http", "true"),
        ]);
        let (_store, path) = open_url(&url, &opts).unwrap();
        assert_eq!(path.as_ref(), "prefix/events");
    }

    #[test]
    fn azure_store_from_abfss_url() {
        let url = Url::parse("abfss://data@account.dfs.core.windows.net/apitrail/events/").unwrap();
        let opts = options(&[("azure_storage_account_key", "a2V5")]);
        let (_store, path) = open_url(&url, &opts).unwrap();
        assert_eq!(path.as_ref(), "apitrail/events");
    }

    #[test]
    fn registration_makes_cloud_urls_resolvable() {
        register_cloud_schemes();
        let url = Url::parse("s3://bucket/prefix/events/").unwrap();
        let opts = options(&[
            ("aws_endpoint", "http://127.0.0.1:1"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "testing"),
            ("aws_secret_access_key", "testing"),
            ("aws_allow_http", "true"),
        ]);
        let table = deltalake::DeltaTableBuilder::from_url(url)
            .unwrap()
            .with_storage_options(opts)
            .build();
        assert!(table.is_ok(), "{:?}", table.err());
    }
}
