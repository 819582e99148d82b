//! The store on an S3-compatible server (moto on 127.0.0.1): conditional
//! writes of Delta commits, and a server that ingests, flushes, restarts and
//! returns the same results from the bucket alone.

use apitrail_storage::AppendTable;
use apitrail_storage::table::TableSpec;
use apitrail_tests::s3::S3Server;
use apitrail_tests::store::{CloudStore, check_store_survives_restart, race_two_commits};
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
    let log_dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&log_dir.path().join("moto.log"));
    s3.create_bucket("apitrail");
    check_store_survives_restart(
        &CloudStore {
            store_url: "s3://apitrail/prod/events/",
            options_toml: &s3.storage_options_toml(),
            list: &|prefix| s3.list("apitrail", prefix),
            secret: apitrail_tests::s3::SECRET_KEY,
        },
        "s3",
    );
}
