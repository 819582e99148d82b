//! The store on an S3-compatible server (moto on 127.0.0.1): conditional
//! writes of Delta commits, and a server that ingests, flushes, restarts and
//! returns the same results from the bucket alone.

use apitrail_storage::AppendTable;
use apitrail_storage::table::TableSpec;
use apitrail_tests::s3::S3Server;
use apitrail_tests::store::{
    assert_endpoints_match_events, envoy_lines, race_two_commits, store_answers, write_config,
};
use apitrail_tests::{ServerOptions, TestServer};
use url::Url;

/// moto rejects a second `PutObject` with `If-None-Match: *` on one key with 412.
#[test]
fn moto_rejects_second_put_if_absent() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&scratch.path().join("moto.log"));
    s3.create_bucket("conditional");
    assert!(
        s3.put_if_absent("conditional", "log/00.json", "first"),
        "the first put creates the object"
    );
    assert!(
        !s3.put_if_absent("conditional", "log/00.json", "second"),
        "the second put must fail with 412, not overwrite"
    );
}

/// Two writers commit to one table version at the same time: one commit
/// takes the version, the other is retried at the next one, and both
/// writers' files are in the table.
#[test]
fn commit_race_has_one_winner() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&scratch.path().join("moto.log"));
    s3.create_bucket("race");
    let url = Url::parse("s3://race/store/events/").unwrap();
    let race = race_two_commits(&url, &s3.storage_options());

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

    let log = s3.list("race", "store/events/_delta_log/");
    let commits: Vec<&String> = log.iter().filter(|k| k.ends_with(".json")).collect();
    assert_eq!(commits.len(), 3, "versions 0, 1 and 2: {log:?}");
}

/// Two processes that start on an empty prefix at once both create the
/// table. One creation wins version 0. deltalake commits the other one's
/// protocol and metadata again as version 1 when it loses the race, so the
/// table may have one commit or two, and both processes then use it.
#[test]
fn concurrent_creation_joins_one_table() {
    let scratch = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&scratch.path().join("moto.log"));
    s3.create_bucket("create");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = Url::parse("s3://create/store/views/").unwrap();
    let options = s3.storage_options();

    let (a, b) = runtime.block_on(async {
        tokio::join!(
            AppendTable::open_or_create(&url, options.clone(), TableSpec::views()),
            AppendTable::open_or_create(&url, options.clone(), TableSpec::views()),
        )
    });
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    runtime.block_on(async {
        a.refresh().await.unwrap();
        b.refresh().await.unwrap();
    });
    assert_eq!(a.version(), b.version(), "both use one table version");
    assert!(
        a.version().is_some_and(|v| v <= 1),
        "at most the two creations were committed: {:?}",
        a.version()
    );
    let partitions = a
        .delta()
        .snapshot()
        .unwrap()
        .metadata()
        .partition_columns()
        .to_vec();
    assert_eq!(partitions, vec!["grain".to_string()]);

    let log = s3.list("create", "store/views/_delta_log/");
    assert!(
        log.contains(&"store/views/_delta_log/00000000000000000000.json".to_string()),
        "{log:?}"
    );
    assert!(log.len() <= 2, "{log:?}");
}

/// A server on an `s3://` store ingests and flushes, and after a restart
/// returns the same counts and view rows, read back from the bucket.
#[test]
fn s3_store_survives_restart() {
    let config_dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&config_dir.path().join("moto.log"));
    s3.create_bucket("apitrail");
    let config = write_config(
        config_dir.path(),
        "apitrail.toml",
        "s3://apitrail/prod/events/",
        &s3.storage_options_toml(),
    );
    let options = ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::quick_flush()
    };
    let mut server = TestServer::start(options);

    for batch in 0..3 {
        let (status, report) = server.ingest(
            Some("envoy_json"),
            envoy_lines("s3", batch * 40..batch * 40 + 40),
        );
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["accepted"], 40, "{report}");
    }
    server.api().wait_for_flushed_rows(120);
    assert_eq!(server.count(""), 120);
    let before = store_answers(server.api());
    assert_eq!(before.0.len(), 3, "three days: {:?}", before.0);
    assert_endpoints_match_events(server.api());

    server.stop();
    let wal = server.data_dir().join("wal");
    std::fs::remove_dir_all(&wal).unwrap();
    server.restart();
    assert_eq!(
        server.count(""),
        120,
        "every row comes back from the bucket"
    );
    assert_eq!(store_answers(server.api()), before);
    assert_endpoints_match_events(server.api());

    let events = s3.list("apitrail", "prod/events/");
    assert!(
        events
            .iter()
            .any(|k| k.starts_with("prod/events/_delta_log/") && k.ends_with(".json")),
        "{events:?}"
    );
    for day in apitrail_tests::store::DAYS {
        assert!(
            events
                .iter()
                .any(|k| k.starts_with(&format!("prod/events/day={day}/"))
                    && k.ends_with(".parquet")),
            "no Parquet file of {day}: {events:?}"
        );
    }
    let views = s3.list("apitrail", "prod/views/");
    assert!(
        views
            .iter()
            .any(|k| k.starts_with("prod/views/_delta_log/")),
        "{views:?}"
    );
    assert!(
        views.iter().any(|k| k.starts_with("prod/views/grain=all/")),
        "{views:?}"
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("opening the store"),
        "the store is logged at start-up"
    );
    assert!(
        !stderr.contains(apitrail_tests::s3::SECRET_KEY),
        "the server logged the secret access key"
    );
}
