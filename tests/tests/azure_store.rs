//! The store on Azure Blob Storage, emulated by Azurite on 127.0.0.1:
//! conditional writes of Delta commits, a race of two commits, and servers
//! that ingest, flush, restart and return the same query results from the
//! container alone, configured with the account endpoint or with
//! object_store's emulator mode.

use apitrail_storage::object_stores::open_url;
use apitrail_tests::azure::{ACCOUNT_KEY, AzureServer};
use apitrail_tests::store::{
    CloudStore, assert_endpoints_match_events, check_store_survives_restart, envoy_lines,
    race_two_commits, write_config,
};
use apitrail_tests::{ServerOptions, TestServer};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutPayload};
use url::Url;

/// Azurite rejects a second Put Blob with `If-None-Match: *` on one blob,
/// both when sent by hand and when object_store sends it as a
/// `PutMode::Create`, as Delta commits do.
#[test]
fn azurite_rejects_second_put_if_absent() {
    let scratch = tempfile::tempdir().unwrap();
    let azure = AzureServer::start(&scratch.path().join("azurite.log"));
    azure.create_container("conditional");
    assert!(
        azure.put_if_absent("conditional", "raw/00.json", "first"),
        "the first put creates the blob"
    );
    assert!(
        !azure.put_if_absent("conditional", "raw/00.json", "second"),
        "the second put must be rejected, not overwrite"
    );

    let url = Url::parse("az://conditional/log/").unwrap();
    let (store, prefix) = open_url(&url, &azure.storage_options()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let path = Path::from(format!("{prefix}/00.json"));
        let create = || PutMode::Create.into();
        store
            .put_opts(&path, PutPayload::from_static(b"first"), create())
            .await
            .expect("the first put creates the blob");
        let second = store
            .put_opts(&path, PutPayload::from_static(b"second"), create())
            .await;
        assert!(
            matches!(second, Err(object_store::Error::AlreadyExists { .. })),
            "the second put must fail with AlreadyExists: {second:?}"
        );
        let body = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&body[..], b"first", "the first put's content stays");
    });
}

/// Two writers commit to one table version at the same time on an
/// `abfss://` URL: one commit takes the version, the other is retried at
/// the next one, and both writers' files are in the table.
#[test]
fn azure_commit_race_has_one_winner() {
    let scratch = tempfile::tempdir().unwrap();
    let azure = AzureServer::start(&scratch.path().join("azurite.log"));
    azure.create_container("race");
    let url =
        Url::parse("abfss://race@devstoreaccount1.dfs.core.windows.net/store/events/").unwrap();
    let race = race_two_commits(&url, &azure.storage_options());

    assert_eq!(
        race.transactions,
        (Some(1), Some(1)),
        "both writers' transactions are in the table"
    );
    let (va, vb) = race.versions;
    assert_ne!(va, vb, "two commits took one version");
    assert_eq!(va.min(vb), 1, "one writer took version 1");
    assert_eq!(va.max(vb), 2, "the other was retried at version 2");
    assert_eq!(race.rows, 3, "the table has both writers' rows");

    let log = azure.list("race", "store/events/_delta_log/");
    let commits: Vec<&String> = log.iter().filter(|k| k.ends_with(".json")).collect();
    assert_eq!(commits.len(), 3, "versions 0, 1 and 2: {log:?}");
}

/// A server on an `az://` store ingests and flushes, and after a restart
/// returns the same counts and view rows, read back from the container.
#[test]
fn azure_store_survives_restart() {
    let log_dir = tempfile::tempdir().unwrap();
    let azure = AzureServer::start(&log_dir.path().join("azurite.log"));
    azure.create_container("apitrail");
    check_store_survives_restart(
        &CloudStore {
            store_url: "az://apitrail/prod/events/",
            options_toml: &azure.storage_options_toml(),
            list: &|prefix| azure.list("apitrail", prefix),
            secret: ACCOUNT_KEY,
        },
        "az",
    );
}

/// A server on an `az://` store with only `azure_storage_use_emulator` set
/// finds Azurite through `AZURITE_BLOB_STORAGE_URL`, and after a restart
/// without its WAL returns every row from the container.
#[test]
fn azure_emulator_mode_store() {
    let config_dir = tempfile::tempdir().unwrap();
    let azure = AzureServer::start(&config_dir.path().join("azurite.log"));
    azure.create_container("emulated");
    let config = write_config(
        config_dir.path(),
        "apitrail.toml",
        "az://emulated/trial/events/",
        "[storage_options]\nazure_storage_use_emulator = \"true\"\n",
    );
    let options = ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        env: vec![(
            "AZURITE_BLOB_STORAGE_URL".into(),
            azure.service_url().to_string(),
        )],
        ..ServerOptions::quick_flush()
    };
    let mut server = TestServer::start(options);

    let (status, report) = server.ingest(Some("envoy_json"), envoy_lines("emu", 0..30));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], 30, "{report}");
    server.api().wait_for_flushed_rows(30);

    server.stop();
    std::fs::remove_dir_all(server.data_dir().join("wal")).unwrap();
    server.restart();
    assert_eq!(
        server.count(""),
        30,
        "every row comes back from the container"
    );
    assert_endpoints_match_events(server.api());
    let events = azure.list("emulated", "trial/events/");
    assert!(
        events
            .iter()
            .any(|k| k.starts_with("trial/events/day=") && k.ends_with(".parquet")),
        "{events:?}"
    );
}
