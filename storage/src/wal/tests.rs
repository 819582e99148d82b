use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tempfile::TempDir;

use super::format::{self, SEGMENT_HEADER_LEN};
use super::replay::CORRUPT_DIR_NAME;
use super::*;

/// Segment limit of most tests: a handful of records per segment.
const SMALL_SEGMENT_BYTES: u64 = 256;

fn small_config(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_max_bytes: SMALL_SEGMENT_BYTES,
        ..WalConfig::default()
    }
}

/// Returns the payload that the tests append as record `lsn`. Lengths vary
/// from 0 to 40 bytes so that records of different sizes meet the segment limit.
fn payload(lsn: Lsn) -> Bytes {
    let len = (lsn * 7 % 41) as usize;
    let bytes: Vec<u8> = (0..len)
        .map(|i| (lsn as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    Bytes::from(bytes)
}

fn open_small(dir: &Path) -> (Wal, Vec<WalRecord>, ReplayReport) {
    Wal::open(small_config(dir)).expect("open WAL")
}

async fn append_range(wal: &Wal, lsns: std::ops::RangeInclusive<Lsn>) {
    for lsn in lsns {
        let appended = wal.append(payload(lsn)).await.expect("append");
        assert_eq!(appended, lsn);
    }
}

/// Writes records 1..=`count` with a large segment limit, rotating after each
/// LSN in `rotate_after`.
async fn write_wal(dir: &Path, count: Lsn, rotate_after: &[Lsn]) {
    let (wal, records, _) = Wal::open(WalConfig::new(dir)).expect("open WAL");
    assert!(records.is_empty());
    for lsn in 1..=count {
        assert_eq!(wal.append(payload(lsn)).await.expect("append"), lsn);
        if rotate_after.contains(&lsn) {
            assert_eq!(wal.rotate().await.expect("rotate"), lsn);
        }
    }
    wal.close().await.expect("close");
}

fn assert_records(records: &[WalRecord], count: Lsn) {
    assert_eq!(records.len() as u64, count, "number of records");
    for (record, lsn) in records.iter().zip(1..) {
        assert_eq!(record.lsn, lsn);
        assert_eq!(record.payload, payload(lsn), "payload of LSN {lsn}");
    }
}

fn segment_path(dir: &Path, first_lsn: Lsn) -> PathBuf {
    dir.join(format::segment_file_name(first_lsn))
}

/// Returns the first LSNs of the segment files in `dir`, sorted.
fn segment_lsns(dir: &Path) -> Vec<Lsn> {
    let mut lsns: Vec<Lsn> = fs::read_dir(dir)
        .expect("list WAL directory")
        .filter_map(|entry| {
            let name = entry.expect("directory entry").file_name();
            format::parse_segment_file_name(name.to_str()?)
        })
        .collect();
    lsns.sort_unstable();
    lsns
}

fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir.join(CORRUPT_DIR_NAME)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

fn corrupt_file_names(dir: &Path) -> Vec<String> {
    corrupt_files(dir)
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("file metadata").len()
}

/// Returns the start offsets of the records of a segment written by
/// `write_wal`, and the segment length.
fn record_offsets(lsns: std::ops::RangeInclusive<Lsn>) -> (Vec<u64>, u64) {
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_HEADER_LEN as u64;
    for lsn in lsns {
        offsets.push(offset);
        offset += format::record_len(payload(lsn).len());
    }
    (offsets, offset)
}

fn truncate_file(path: &Path, len: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    file.set_len(len).expect("truncate segment");
}

fn flip_byte(path: &Path, offset: u64, mask: u8) {
    let mut bytes = fs::read(path).expect("read segment");
    bytes[offset as usize] ^= mask;
    fs::write(path, bytes).expect("write segment");
}

fn copy_dir_files(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("list directory") {
        let entry = entry.expect("directory entry");
        if entry.file_type().expect("file type").is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// Returns every file and folder under `dir` with the bytes of each file.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).expect("list directory") {
            let path = entry.expect("directory entry").path();
            let relative = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                entries.insert(relative, None);
                pending.push(path);
            } else {
                entries.insert(relative, Some(fs::read(&path).expect("read file")));
            }
        }
    }
    entries
}

/// Opens a damaged WAL and checks that it recovers records 1..=`expected`,
/// moves the rest to `corrupt/`, accepts a new append and reopens cleanly.
/// Returns the report of the first open.
async fn assert_recovers(dir: &Path, expected: Lsn) -> ReplayReport {
    let (wal, records, report) = open_small(dir);
    assert_records(&records, expected);
    assert_eq!(report.records, expected);
    assert_eq!(report.last_lsn, expected);
    assert_eq!(report.corrupt_tails, 1);
    assert!(!report.set_aside_files.is_empty());
    assert_eq!(report.set_aside_files, corrupt_files(dir));
    let set_aside_bytes: u64 = corrupt_files(dir).iter().map(|path| file_len(path)).sum();
    assert_eq!(report.bytes_set_aside, set_aside_bytes);

    assert_eq!(wal.last_lsn(), expected);
    assert_eq!(
        wal.append(payload(expected + 1)).await.expect("append"),
        expected + 1
    );
    wal.close().await.expect("close");

    let (wal, records, clean_report) = open_small(dir);
    assert_records(&records, expected + 1);
    assert_eq!(clean_report.corrupt_tails, 0);
    assert!(clean_report.set_aside_files.is_empty());
    wal.close().await.expect("close");
    report
}

/// Deterministic pseudo-random numbers (SplitMix64) for the randomized loops.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

#[tokio::test]
async fn round_trip_across_rollover_and_reopen() {
    let temp = TempDir::new().unwrap();
    let config = WalConfig {
        max_batch_bytes: 64,
        ..small_config(temp.path())
    };
    let (wal, records, report) = Wal::open(config.clone()).expect("open WAL");
    assert!(records.is_empty());
    assert_eq!(report, ReplayReport::default());
    append_range(&wal, 1..=60).await;
    assert_eq!(wal.last_lsn(), 60);
    wal.close().await.expect("close");

    let segments = segment_lsns(temp.path());
    assert!(
        segments.len() > 3,
        "expected several segments, found {segments:?}"
    );
    for first_lsn in &segments {
        let len = file_len(&segment_path(temp.path(), *first_lsn));
        assert!(
            len <= SMALL_SEGMENT_BYTES,
            "segment {first_lsn} has {len} bytes"
        );
    }

    let (wal, records, report) = Wal::open(config).expect("reopen WAL");
    assert_records(&records, 60);
    assert_eq!(report.records, 60);
    assert_eq!(report.segments, segments.len() as u64);
    assert_eq!(report.corrupt_tails, 0);
    assert_eq!(report.bytes_set_aside, 0);
    assert!(report.set_aside_files.is_empty());
    assert_eq!(report.last_lsn, 60);
    assert_eq!(wal.last_lsn(), 60);
    wal.close().await.expect("close");
}

#[test]
fn wal_handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Wal>();
}

#[tokio::test]
async fn sync_mode_all_round_trip() {
    let temp = TempDir::new().unwrap();
    let config = WalConfig {
        sync_mode: SyncMode::All,
        ..small_config(temp.path())
    };
    let (wal, _, _) = Wal::open(config.clone()).unwrap();
    append_range(&wal, 1..=10).await;
    wal.close().await.unwrap();

    let (wal, records, _) = Wal::open(config).unwrap();
    assert_records(&records, 10);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn oversized_record_gets_own_segment() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());
    let large = Bytes::from(vec![0xAB; 1000]);
    assert_eq!(wal.append(payload(1)).await.unwrap(), 1);
    assert_eq!(wal.append(large.clone()).await.unwrap(), 2);
    assert_eq!(wal.append(payload(3)).await.unwrap(), 3);
    wal.close().await.unwrap();

    assert_eq!(segment_lsns(temp.path()), vec![1, 2, 3]);
    let large_segment_len = SEGMENT_HEADER_LEN as u64 + format::record_len(large.len());
    assert_eq!(file_len(&segment_path(temp.path(), 2)), large_segment_len);

    let (wal, records, _) = open_small(temp.path());
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].payload, large);
    assert_eq!(records[2].payload, payload(3));
    wal.close().await.unwrap();
}

#[tokio::test]
async fn lsn_continuity_after_reopen() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());
    append_range(&wal, 1..=3).await;
    wal.close().await.unwrap();

    let (wal, records, report) = open_small(temp.path());
    assert_records(&records, 3);
    assert_eq!(report.last_lsn, 3);
    assert_eq!(wal.last_lsn(), 3);
    append_range(&wal, 4..=5).await;
    wal.close().await.unwrap();

    // Appends after a reopen go to a new segment named by their first LSN.
    assert_eq!(segment_lsns(temp.path()), vec![1, 4]);
    let (wal, records, _) = open_small(temp.path());
    assert_records(&records, 5);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn rotate_returns_last_lsn_of_closed_segment() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());
    assert_eq!(wal.rotate().await.unwrap(), 0, "rotate of an empty segment");
    append_range(&wal, 1..=2).await;
    assert_eq!(wal.rotate().await.unwrap(), 2);
    assert_eq!(wal.rotate().await.unwrap(), 0, "rotate right after rotate");
    append_range(&wal, 3..=3).await;
    wal.close().await.unwrap();

    assert_eq!(segment_lsns(temp.path()), vec![1, 3]);
}

#[tokio::test]
async fn truncate_through_removes_only_covered_closed_segments() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = Wal::open(WalConfig::new(temp.path())).unwrap();
    append_range(&wal, 1..=3).await;
    wal.rotate().await.unwrap();
    append_range(&wal, 4..=6).await;
    wal.rotate().await.unwrap();
    append_range(&wal, 7..=8).await;
    assert_eq!(segment_lsns(temp.path()), vec![1, 4, 7]);

    assert_eq!(wal.truncate_through(0).await.unwrap(), 0);
    assert_eq!(wal.truncate_through(2).await.unwrap(), 0);
    assert_eq!(segment_lsns(temp.path()), vec![1, 4, 7]);

    assert_eq!(wal.truncate_through(3).await.unwrap(), 1);
    assert_eq!(segment_lsns(temp.path()), vec![4, 7]);

    assert_eq!(wal.truncate_through(5).await.unwrap(), 0);
    assert_eq!(wal.truncate_through(100).await.unwrap(), 1);
    assert_eq!(
        segment_lsns(temp.path()),
        vec![7],
        "the active segment stays"
    );
    assert_eq!(wal.truncate_through(100).await.unwrap(), 0);
    wal.close().await.unwrap();

    let (wal, records, report) = Wal::open(WalConfig::new(temp.path())).unwrap();
    let lsns: Vec<Lsn> = records.iter().map(|record| record.lsn).collect();
    assert_eq!(lsns, vec![7, 8]);
    assert_eq!(records[0].payload, payload(7));
    assert_eq!(report.records, 2);
    assert_eq!(wal.append(payload(9)).await.unwrap(), 9);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn truncate_through_all_keeps_lsn_sequence() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());
    append_range(&wal, 1..=3).await;
    assert_eq!(wal.rotate().await.unwrap(), 3);
    assert_eq!(wal.truncate_through(3).await.unwrap(), 1);
    wal.close().await.unwrap();
    assert_eq!(segment_lsns(temp.path()), vec![4]);

    let (wal, records, report) = open_small(temp.path());
    assert!(records.is_empty());
    assert_eq!(report.segments, 1);
    assert_eq!(report.last_lsn, 3);
    assert_eq!(wal.last_lsn(), 3);
    assert_eq!(wal.append(payload(4)).await.unwrap(), 4);
    wal.close().await.unwrap();
    assert_eq!(
        segment_lsns(temp.path()),
        vec![4],
        "the header-only segment is reused"
    );
}

#[tokio::test]
async fn header_only_segment_is_valid() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 3, &[3]).await;
    assert_eq!(
        file_len(&segment_path(temp.path(), 4)),
        SEGMENT_HEADER_LEN as u64
    );

    let (wal, records, report) = open_small(temp.path());
    assert_records(&records, 3);
    assert_eq!(report.segments, 2);
    assert_eq!(report.corrupt_tails, 0);
    append_range(&wal, 4..=4).await;
    wal.close().await.unwrap();
    assert_eq!(segment_lsns(temp.path()), vec![1, 4]);
    assert!(corrupt_files(temp.path()).is_empty());
}

#[tokio::test]
async fn torn_tail_is_set_aside() {
    let pristine = TempDir::new().unwrap();
    write_wal(pristine.path(), 6, &[3]).await;
    let (offsets, full_len) = record_offsets(4..=6);
    assert_eq!(file_len(&segment_path(pristine.path(), 4)), full_len);

    // (length of segment 4 after the cut, records expected back, offset of the damage)
    let cases = [
        (0, 3, 0),
        (10, 3, 0),
        (SEGMENT_HEADER_LEN as u64 - 1, 3, 0),
        (offsets[0] + 2, 3, offsets[0]),
        (offsets[0] + 10, 3, offsets[0]),
        (offsets[1] + 1, 4, offsets[1]),
        (offsets[2] - 1, 4, offsets[1]),
        (offsets[2] + 16, 5, offsets[2]),
        (full_len - 1, 5, offsets[2]),
    ];
    for (len, expected, damage_offset) in cases {
        let temp = TempDir::new().unwrap();
        copy_dir_files(pristine.path(), temp.path());
        truncate_file(&segment_path(temp.path(), 4), len);

        let report = assert_recovers(temp.path(), expected).await;
        let tail_name = format!("00000000000000000004.wal.{damage_offset}.tail");
        assert_eq!(
            corrupt_file_names(temp.path()),
            vec![tail_name],
            "cut at {len}"
        );
        assert_eq!(report.bytes_set_aside, len - damage_offset, "cut at {len}");
    }
}

#[tokio::test]
async fn flipped_payload_byte_is_set_aside() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 5, &[]).await;
    let (offsets, full_len) = record_offsets(1..=5);
    let segment = segment_path(temp.path(), 1);
    flip_byte(&segment, offsets[2] + 16 + 3, 0x01);

    let report = assert_recovers(temp.path(), 2).await;
    let tail_name = format!("00000000000000000001.wal.{}.tail", offsets[2]);
    assert_eq!(corrupt_file_names(temp.path()), vec![tail_name]);
    assert_eq!(report.bytes_set_aside, full_len - offsets[2]);
    assert_eq!(
        file_len(&segment),
        offsets[2],
        "segment truncated to its last good record"
    );
    // Segment 3 received the new append, and the reopen created segment 4.
    assert_eq!(segment_lsns(temp.path()), vec![1, 3, 4]);
}

#[tokio::test]
async fn garbage_after_last_record_is_set_aside() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 5, &[]).await;
    let (_, full_len) = record_offsets(1..=5);
    let mut random = SplitMix64(7);
    let garbage: Vec<u8> = (0..100).map(|_| random.next_u64() as u8).collect();
    let segment = segment_path(temp.path(), 1);
    let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&garbage).unwrap();
    drop(file);

    let report = assert_recovers(temp.path(), 5).await;
    assert_eq!(report.bytes_set_aside, 100);
    let tail_name = format!("00000000000000000001.wal.{full_len}.tail");
    assert_eq!(corrupt_file_names(temp.path()), vec![tail_name]);
    assert_eq!(fs::read(&corrupt_files(temp.path())[0]).unwrap(), garbage);
}

#[tokio::test]
async fn bad_middle_segment_sets_aside_later_segments() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 9, &[3, 6]).await;
    assert_eq!(segment_lsns(temp.path()), vec![1, 4, 7]);
    let (offsets, _) = record_offsets(4..=6);
    flip_byte(&segment_path(temp.path(), 4), offsets[1] + 16, 0x80);

    assert_recovers(temp.path(), 4).await;
    let expected_names = vec![
        format!("00000000000000000004.wal.{}.tail", offsets[1]),
        "00000000000000000007.wal.0.tail".to_owned(),
    ];
    assert_eq!(corrupt_file_names(temp.path()), expected_names);
    assert_eq!(segment_lsns(temp.path()), vec![1, 4, 5, 6]);
}

#[tokio::test]
async fn empty_segment_file_is_set_aside() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 5, &[]).await;
    fs::write(segment_path(temp.path(), 6), b"").unwrap();

    let report = assert_recovers(temp.path(), 5).await;
    assert_eq!(report.bytes_set_aside, 0);
    assert_eq!(
        corrupt_file_names(temp.path()),
        vec!["00000000000000000006.wal.0.tail".to_owned()]
    );
}

#[tokio::test]
async fn sole_empty_segment_is_set_aside() {
    let temp = TempDir::new().unwrap();
    fs::write(segment_path(temp.path(), 1), b"").unwrap();

    let report = assert_recovers(temp.path(), 0).await;
    assert_eq!(report.segments, 0);
    assert_eq!(segment_lsns(temp.path()), vec![1, 2]);
}

#[tokio::test]
async fn repeated_damage_gets_unique_names() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 5, &[]).await;
    let segment = segment_path(temp.path(), 1);
    let (_, full_len) = record_offsets(1..=5);
    fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(b"first garbage")
        .unwrap();
    assert_recovers(temp.path(), 5).await;

    fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(b"second garbage")
        .unwrap();
    let (wal, records, report) = open_small(temp.path());
    assert_records(&records, 5);
    assert_eq!(report.corrupt_tails, 1);
    wal.close().await.unwrap();

    let tail_name = format!("00000000000000000001.wal.{full_len}.tail");
    let expected_names = vec![
        tail_name.clone(),
        format!("{tail_name}.1"),
        "00000000000000000006.wal.0.tail".to_owned(),
        "00000000000000000007.wal.0.tail".to_owned(),
    ];
    assert_eq!(corrupt_file_names(temp.path()), expected_names);
    let second_tail = temp
        .path()
        .join(CORRUPT_DIR_NAME)
        .join(format!("{tail_name}.1"));
    assert_eq!(fs::read(second_tail).unwrap(), b"second garbage");
}

#[tokio::test]
async fn every_truncation_point_recovers_prefix() {
    let pristine = TempDir::new().unwrap();
    write_wal(pristine.path(), 6, &[3]).await;
    // Per segment: first LSN, record start offsets, full length, whether it is the last segment.
    let (first_offsets, first_len) = record_offsets(1..=3);
    let (second_offsets, second_len) = record_offsets(4..=6);
    let segments = [
        (1, first_offsets, first_len, false),
        (4, second_offsets, second_len, true),
    ];

    for (first_lsn, offsets, full_len, is_last) in &segments {
        for len in 0..*full_len {
            let temp = TempDir::new().unwrap();
            copy_dir_files(pristine.path(), temp.path());
            truncate_file(&segment_path(temp.path(), *first_lsn), len);

            let complete = offsets
                .iter()
                .skip(1)
                .chain([full_len])
                .filter(|end| **end <= len);
            let kept_in_segment = complete.count() as u64;
            let expected = first_lsn - 1 + kept_in_segment;
            let at_boundary = len == SEGMENT_HEADER_LEN as u64 || offsets.contains(&len);
            let damaged = !at_boundary || !is_last;

            let (wal, records, report) = open_small(temp.path());
            assert_records(&records, expected);
            assert_eq!(
                report.corrupt_tails,
                u64::from(damaged),
                "segment {first_lsn} cut at {len}"
            );
            let set_aside_bytes: u64 = corrupt_files(temp.path())
                .iter()
                .map(|path| file_len(path))
                .sum();
            assert_eq!(
                report.bytes_set_aside, set_aside_bytes,
                "segment {first_lsn} cut at {len}"
            );
            assert_eq!(
                wal.append(payload(expected + 1)).await.unwrap(),
                expected + 1
            );
            wal.close().await.unwrap();

            let (wal, records, report) = open_small(temp.path());
            assert_records(&records, expected + 1);
            assert_eq!(
                report.corrupt_tails, 0,
                "segment {first_lsn} cut at {len}, reopened"
            );
            wal.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn random_byte_flips_recover_prefix() {
    let pristine = TempDir::new().unwrap();
    write_wal(pristine.path(), 6, &[3]).await;
    let (first_offsets, first_len) = record_offsets(1..=3);
    let (second_offsets, second_len) = record_offsets(4..=6);
    let segments = [
        (1, first_offsets, first_len),
        (4, second_offsets, second_len),
    ];
    let mut random = SplitMix64(0x5EED);

    for _ in 0..40 {
        let (first_lsn, offsets, full_len) = &segments[random.below(2) as usize];
        let offset = random.below(*full_len);
        let mask = 1u8 << random.below(8);
        let temp = TempDir::new().unwrap();
        copy_dir_files(pristine.path(), temp.path());
        flip_byte(&segment_path(temp.path(), *first_lsn), offset, mask);

        // Every header and record byte is covered by a check, so the record
        // containing the flipped byte and everything after it is lost.
        let intact_in_segment = offsets.iter().filter(|start| **start <= offset).count();
        let kept_in_segment = intact_in_segment.saturating_sub(1) as u64;
        let expected = first_lsn - 1 + kept_in_segment;
        let report = assert_recovers(temp.path(), expected).await;
        assert_eq!(
            report.corrupt_tails, 1,
            "segment {first_lsn} flipped at {offset}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_fsyncs() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = Wal::open(WalConfig::new(temp.path())).unwrap();
    let syncs_before = wal.sync_count();

    let tasks: Vec<_> = (1..=64)
        .map(|i| {
            let wal = wal.clone();
            tokio::spawn(async move { wal.append(payload(i)).await })
        })
        .collect();
    let mut lsns = Vec::new();
    for task in tasks {
        lsns.push(task.await.unwrap().expect("append"));
    }

    let syncs = wal.sync_count() - syncs_before;
    lsns.sort_unstable();
    assert_eq!(lsns, (1..=64).collect::<Vec<Lsn>>());
    assert!(syncs >= 1);
    assert!(syncs < 64, "64 concurrent appends took {syncs} fsyncs");
    assert_eq!(wal.last_lsn(), 64);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn read_only_modifies_nothing() {
    let temp = TempDir::new().unwrap();
    write_wal(temp.path(), 9, &[3, 6]).await;
    let (offsets, second_len) = record_offsets(4..=6);
    flip_byte(&segment_path(temp.path(), 4), offsets[1] + 16, 0x80);
    let later_len = file_len(&segment_path(temp.path(), 7));
    let before = snapshot(temp.path());

    let (records, report) = Wal::read_only(temp.path()).expect("read WAL");
    assert_eq!(snapshot(temp.path()), before);
    assert_records(&records, 4);
    assert_eq!(report.records, 4);
    assert_eq!(report.segments, 2);
    assert_eq!(report.corrupt_tails, 1);
    assert_eq!(report.bytes_set_aside, second_len - offsets[1] + later_len);
    assert!(report.set_aside_files.is_empty());
    assert_eq!(report.last_lsn, 4);

    let (wal, repaired, _) = open_small(temp.path());
    assert_eq!(repaired, records, "open recovers what read_only reported");
    wal.close().await.unwrap();
}

#[tokio::test]
async fn read_only_reads_while_writer_runs() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());
    append_range(&wal, 1..=20).await;
    let before = snapshot(temp.path());

    let (records, report) = Wal::read_only(temp.path()).expect("read WAL");
    assert_records(&records, 20);
    assert_eq!(report.corrupt_tails, 0);
    assert_eq!(snapshot(temp.path()), before);

    append_range(&wal, 21..=21).await;
    wal.close().await.unwrap();
}

#[tokio::test]
async fn read_only_of_missing_directory_fails() {
    let temp = TempDir::new().unwrap();
    let missing = temp.path().join("missing");

    let error = Wal::read_only(&missing).unwrap_err();
    assert!(matches!(error, WalError::Io { .. }), "{error}");
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn append_failure_rejects_later_appends() {
    let temp = TempDir::new().unwrap();
    // Room for the header and exactly one record of payload(1).
    let config = WalConfig {
        segment_max_bytes: SEGMENT_HEADER_LEN as u64 + format::record_len(payload(1).len()),
        ..small_config(temp.path())
    };
    let (wal, _, _) = Wal::open(config.clone()).unwrap();
    append_range(&wal, 1..=1).await;

    // A folder where the next segment file goes makes the rollover fail.
    let blocker = segment_path(temp.path(), 2);
    fs::create_dir(&blocker).unwrap();
    let tasks: Vec<_> = (2..=9)
        .map(|i| {
            let wal = wal.clone();
            tokio::spawn(async move { wal.append(payload(i)).await })
        })
        .collect();
    let mut write_errors = 0;
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        match error {
            WalError::Write {
                ref path, offset, ..
            } => {
                assert_eq!(path, &blocker);
                assert_eq!(offset, 0);
                assert!(
                    error.to_string().contains("00000000000000000002.wal"),
                    "{error}"
                );
                write_errors += 1;
            }
            WalError::Poisoned { .. } => {}
            other => panic!("unexpected error: {other}"),
        }
    }
    assert!(write_errors >= 1);

    let error = wal.append(payload(10)).await.unwrap_err();
    assert!(matches!(error, WalError::Poisoned { .. }), "{error}");
    let error = wal.rotate().await.unwrap_err();
    assert!(matches!(error, WalError::Poisoned { .. }), "{error}");
    assert_eq!(wal.last_lsn(), 1);
    wal.close().await.unwrap();

    fs::remove_dir(&blocker).unwrap();
    let (wal, records, report) = Wal::open(config).unwrap();
    assert_records(&records, 1);
    assert_eq!(report.corrupt_tails, 0);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn second_open_is_rejected_while_locked() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());

    let error = Wal::open(small_config(temp.path())).unwrap_err();
    assert!(matches!(error, WalError::Locked { .. }), "{error}");

    wal.close().await.unwrap();
    let (wal, _, _) = open_small(temp.path());
    wal.close().await.unwrap();
}

#[tokio::test]
async fn closed_wal_rejects_appends() {
    let temp = TempDir::new().unwrap();
    let (wal, _, _) = open_small(temp.path());
    append_range(&wal, 1..=1).await;
    wal.close().await.unwrap();

    let error = wal.append(payload(2)).await.unwrap_err();
    assert!(matches!(error, WalError::Closed { .. }), "{error}");
    let error = wal.truncate_through(1).await.unwrap_err();
    assert!(matches!(error, WalError::Closed { .. }), "{error}");
    wal.close().await.expect("second close");
}

#[tokio::test]
async fn unsupported_version_is_rejected_untouched() {
    let temp = TempDir::new().unwrap();
    let mut header = format::encode_segment_header(1);
    header[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32fast::hash(&header[..24]);
    header[24..].copy_from_slice(&crc.to_le_bytes());
    let segment = segment_path(temp.path(), 1);
    fs::write(&segment, header).unwrap();

    let error = Wal::open(small_config(temp.path())).unwrap_err();
    assert!(
        matches!(error, WalError::UnsupportedVersion { version: 2, .. }),
        "{error}"
    );
    assert_eq!(fs::read(&segment).unwrap(), header);
    assert!(!temp.path().join(CORRUPT_DIR_NAME).exists());
    assert_eq!(segment_lsns(temp.path()), vec![1]);
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let temp = TempDir::new().unwrap();
    let configs = [
        WalConfig::default(),
        WalConfig {
            segment_max_bytes: 10,
            ..WalConfig::new(temp.path())
        },
        WalConfig {
            max_batch_bytes: 0,
            ..WalConfig::new(temp.path())
        },
    ];
    for config in configs {
        let error = Wal::open(config.clone()).unwrap_err();
        assert!(
            matches!(error, WalError::InvalidConfig { .. }),
            "{config:?}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_skips_covered_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    {
        let (wal, _, _) = Wal::open(WalConfig::new(&wal_dir)).unwrap();
        for _ in 0..3 {
            wal.append(Bytes::from_static(b"covered")).await.unwrap();
        }
        wal.rotate().await.unwrap();
        wal.close().await.unwrap();
    }

    let config = WalConfig {
        min_next_lsn: 100,
        ..WalConfig::new(&wal_dir)
    };
    let (wal, records, _) = Wal::open(config).unwrap();
    assert_eq!(records.len(), 3, "replay still returns the records on disk");
    assert_eq!(wal.last_lsn(), 99, "numbering resumes below the floor");
    let lsn = wal.append(Bytes::from_static(b"new")).await.unwrap();
    assert_eq!(lsn, 100, "the first new record gets the floor");
    wal.close().await.unwrap();

    let (_wal, records, report) = Wal::open(WalConfig::new(&wal_dir)).unwrap();
    let lsns: Vec<u64> = records.iter().map(|r| r.lsn).collect();
    assert_eq!(
        lsns,
        vec![100],
        "covered segments were removed, the new record kept"
    );
    assert_eq!(
        report.corrupt_tails, 0,
        "the jump in numbering is not damage"
    );
}
