"""Measures the storage life cycle: flushes, compaction, bytes on disk and query times.

Usage:
    storage_lifecycle.py --apitrail target/release/apitrail [--weeks 5] [--partners 30]
                         [--flush-secs 2] [--report FILE] [--keep]

The script starts `apitrail serve` on a new data directory with small
flushes (1,000 rows or 2 s by default) and small ingest requests (128 KiB),
so that ingest makes the many small
files that frequent flushes of live traffic make, and with compaction held
back. It sends the server
`apitrail simulate --server` traffic (by default five weeks of 30
partners), waits until every event is queryable, and records:

- flush throughput: rows and Parquet bytes committed per second of flush
  time, from the server's metrics;
- data files per day and bytes per event of the events and views tables;
- the median time of two queries, over one day and over thirty days.

Then it restarts the server with compaction every few seconds and a grace
period of one second, and waits until compaction and vacuum have run on
every closed day. It records the same figures again, with the compaction
throughput (input bytes per second of maintenance time). The queries are
timed on a third start, with maintenance idle as in the first.

The exit code is 0 whenever the measurement completes, whatever the
figures, and 1 with the reason on stderr when a step fails. Only the Python
standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from anomaly_quality import (  # noqa: E402
    BenchError,
    Server,
    child_environment,
    progress,
    query_jsonl,
    simulated_event_count,
    wait_for_count,
)

ONE_DAY_SQL = (
    "SELECT consumer, count(*) AS calls, sum(response_bytes) AS bytes_out FROM events "
    "WHERE time >= TIMESTAMP '{start}' AND time < TIMESTAMP '{end}' "
    "GROUP BY consumer ORDER BY calls DESC LIMIT 20"
)


def metrics(url: str) -> dict[str, float]:
    """Read the unlabelled samples of /metrics, and histogram sums and counts."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
        text = response.read().decode("utf-8")
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if "{" in name:
            continue
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


def parquet_files(table_dir: str) -> dict[str, list[int]]:
    """Return the sizes of the Parquet files under each partition directory."""
    by_partition: dict[str, list[int]] = {}
    for root, _dirs, files in os.walk(table_dir):
        if "_delta_log" in root:
            continue
        partition = os.path.relpath(root, table_dir)
        for name in files:
            if name.endswith(".parquet"):
                size = os.path.getsize(os.path.join(root, name))
                by_partition.setdefault(partition, []).append(size)
    return by_partition


def storage_figures(data_dir: str, events: int) -> dict[str, Any]:
    events_files = parquet_files(os.path.join(data_dir, "table"))
    views_files = parquet_files(os.path.join(data_dir, "views"))
    per_day = [len(sizes) for sizes in events_files.values()]
    events_bytes = sum(sum(sizes) for sizes in events_files.values())
    views_bytes = sum(sum(sizes) for sizes in views_files.values())
    return {
        "days": len(per_day),
        "events_files": sum(per_day),
        "files_per_day_median": statistics.median(per_day) if per_day else 0,
        "files_per_day_max": max(per_day) if per_day else 0,
        "events_bytes": events_bytes,
        "views_files": sum(len(sizes) for sizes in views_files.values()),
        "views_bytes": views_bytes,
        "events_bytes_per_event": events_bytes / events if events else 0.0,
        "views_bytes_per_event": views_bytes / events if events else 0.0,
    }


def time_query(url: str, sql: str, repeats: int) -> dict[str, Any]:
    """Run `sql` once to warm caches, then `repeats` times; return the median and the rows."""
    rows = query_jsonl(url, sql, timeout=600)
    times = []
    for _ in range(repeats):
        started = time.monotonic()
        rows = query_jsonl(url, sql, timeout=600)
        times.append(time.monotonic() - started)
    return {"median_ms": statistics.median(times) * 1000, "rows": len(rows)}


def query_figures(url: str, first_day: date, days: int, repeats: int) -> dict[str, Any]:
    # The last simulated day and the thirty days before the last one.
    last = first_day + timedelta(days=days - 1)
    month_start = last - timedelta(days=29)
    one_day = ONE_DAY_SQL.format(start=last.isoformat(), end=(last + timedelta(days=1)).isoformat())
    month = ONE_DAY_SQL.format(
        start=month_start.isoformat(), end=(last + timedelta(days=1)).isoformat()
    )
    return {
        "one_day": time_query(url, one_day, repeats),
        "thirty_days": time_query(url, month, repeats),
    }


def write_config(path: str, flush_secs: float, flush_rows: int, compaction: bool) -> None:
    lines = [f"flush_max_age_secs = {flush_secs}", f"flush_max_rows = {flush_rows}", "", "[lifecycle]"]
    if compaction:
        lines += ["interval_secs = 2", "grace_period_secs = 1", "compaction_min_files = 2"]
    else:
        # A day between maintenance runs: nothing is compacted during ingest.
        lines += ["interval_secs = 86400"]
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


def simulate(args: argparse.Namespace, url: str, workdir: str) -> tuple[int, float]:
    command = [
        args.apitrail, "simulate",
        "--seed", str(args.seed),
        "--partners", str(args.partners),
        "--weeks", str(args.weeks),
        "--start", args.start,
        "--server", url,
        "--batch-bytes", str(args.batch_bytes),
        "--truth", os.path.join(workdir, "truth.jsonl"),
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, env=child_environment(), stdin=subprocess.DEVNULL
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise BenchError(
            f"apitrail simulate failed with code {result.returncode}:\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return simulated_event_count(result.stderr + result.stdout), elapsed


def wait_for_compaction(url: str, data_dir: str, timeout: float) -> float:
    """Wait until every closed day has at most two data files on disk and vacuum is done."""
    started = time.monotonic()
    stable_since = None
    last = None
    while time.monotonic() - started < timeout:
        files = parquet_files(os.path.join(data_dir, "table"))
        worst = max((len(sizes) for sizes in files.values()), default=0)
        current = (worst, sum(len(s) for s in files.values()))
        if worst <= 2 and current == last:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 6:
                return time.monotonic() - started
        else:
            stable_since = None
        last = current
        time.sleep(1)
    raise BenchError(
        f"timed out: compaction left {last} (largest files per day, files) after {timeout:.0f} s"
    )


def format_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def report(result: dict[str, Any]) -> str:
    before, after = result["before"], result["after"]
    flush = result["flush"]
    compaction = result["compaction"]
    lines = [
        f"Events: {result['events']:,} over {before['storage']['days']} days; ingest through "
        f"`simulate --server` took {result['ingest_secs']:.1f} s "
        f"({result['events'] / result['ingest_secs']:,.0f} events/s).",
        "",
        f"Flushes: {flush['flushes']:.0f}, {flush['rows_per_sec']:,.0f} rows/s and "
        f"{format_bytes(flush['bytes_per_sec'])}/s of Parquet per second of flush time "
        f"({flush['seconds']:.1f} s in all).",
        "",
        f"Compaction: {compaction['days']:.0f} days, {compaction['files_before']:.0f} files "
        f"({format_bytes(compaction['bytes_before'])}) into {compaction['files_after']:.0f} "
        f"({format_bytes(compaction['bytes_after'])}), "
        f"{format_bytes(compaction['bytes_per_sec'])}/s of input per second of maintenance "
        f"time ({compaction['seconds']:.1f} s, vacuum included).",
        "",
        "| | before compaction | after compaction and vacuum |",
        "|---|---|---|",
    ]
    rows = [
        ("events data files", "events_files", "{:,.0f}"),
        ("files per day, median", "files_per_day_median", "{:,.0f}"),
        ("files per day, max", "files_per_day_max", "{:,.0f}"),
        ("events bytes per event", "events_bytes_per_event", "{:.1f}"),
        ("views data files", "views_files", "{:,.0f}"),
        ("views bytes per event", "views_bytes_per_event", "{:.1f}"),
    ]
    for label, key, pattern in rows:
        lines.append(
            f"| {label} | {pattern.format(before['storage'][key])} | "
            f"{pattern.format(after['storage'][key])} |"
        )
    for label, key in (("query over one day", "one_day"), ("query over 30 days", "thirty_days")):
        lines.append(
            f"| {label}, median ms | {before['queries'][key]['median_ms']:.0f} | "
            f"{after['queries'][key]['median_ms']:.0f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="apitrail-storage-bench-")
    data_dir = os.path.join(workdir, "data")
    config = os.path.join(workdir, "apitrail.toml")
    try:
        write_config(config, args.flush_secs, args.flush_rows, compaction=False)
        server = Server(
            args.apitrail, data_dir, os.path.join(workdir, "serve-1.log"), 60, ["--config", config]
        )
        server.start()
        try:
            progress(f"simulating {args.weeks} weeks of {args.partners} partners into {server.url}")
            events, ingest_secs = simulate(args, server.url, workdir)
            wait_for_count(server.url, events, timeout=600)
            server_metrics = metrics(server.url)
            before_queries = query_figures(
                server.url, date.fromisoformat(args.start), args.weeks * 7, args.repeats
            )
        finally:
            server.stop(timeout=300)
        # The final flush at shutdown is in the metrics of no run, so the
        # storage figures are read after it.
        before_storage = storage_figures(data_dir, events)
        flush_seconds = server_metrics.get("apitrail_flush_duration_seconds_sum", 0.0)
        flushed_rows = server_metrics.get("apitrail_flushed_rows_total", 0.0)
        flush = {
            "flushes": server_metrics.get("apitrail_flushes_total", 0.0),
            "seconds": flush_seconds,
            "rows_per_sec": flushed_rows / flush_seconds if flush_seconds else 0.0,
            "bytes_per_sec": (
                before_storage["events_bytes"] * flushed_rows / events / flush_seconds
                if flush_seconds and events
                else 0.0
            ),
        }

        write_config(config, args.flush_secs, args.flush_rows, compaction=True)
        server = Server(
            args.apitrail, data_dir, os.path.join(workdir, "serve-2.log"), 60, ["--config", config]
        )
        server.start()
        try:
            progress("waiting for compaction and vacuum of every closed day")
            wait_for_compaction(server.url, data_dir, timeout=args.compaction_timeout)
            after_metrics = metrics(server.url)
        finally:
            server.stop(timeout=300)

        # Queries are timed on a server whose maintenance task is idle, as
        # before compaction.
        write_config(config, args.flush_secs, args.flush_rows, compaction=False)
        server = Server(
            args.apitrail, data_dir, os.path.join(workdir, "serve-3.log"), 60, ["--config", config]
        )
        server.start()
        try:
            after_queries = query_figures(
                server.url, date.fromisoformat(args.start), args.weeks * 7, args.repeats
            )
            count = query_jsonl(server.url, "SELECT count(*) AS n FROM events", timeout=600)
            if count[0]["n"] != events:
                raise BenchError(f"after compaction the table has {count[0]['n']} events, not {events}")
        finally:
            server.stop(timeout=300)
        after_storage = storage_figures(data_dir, events)
        maintenance = after_metrics.get("apitrail_lifecycle_duration_seconds_sum", 0.0)
        bytes_before = after_metrics.get("apitrail_compaction_bytes_before_total", 0.0)
        compaction = {
            "days": after_metrics.get("apitrail_compactions_total", 0.0),
            "files_before": after_metrics.get("apitrail_compaction_files_before_total", 0.0),
            "files_after": after_metrics.get("apitrail_compaction_files_after_total", 0.0),
            "bytes_before": bytes_before,
            "bytes_after": after_metrics.get("apitrail_compaction_bytes_after_total", 0.0),
            "seconds": maintenance,
            "bytes_per_sec": bytes_before / maintenance if maintenance else 0.0,
        }
        return {
            "events": events,
            "ingest_secs": ingest_secs,
            "flush": flush,
            "compaction": compaction,
            "before": {"storage": before_storage, "queries": before_queries},
            "after": {"storage": after_storage, "queries": after_queries},
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        }
    finally:
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apitrail", required=True, help="the apitrail binary (a release build)")
    parser.add_argument("--weeks", type=int, default=5)
    parser.add_argument("--partners", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2025-04-07", help="first simulated day")
    parser.add_argument("--flush-secs", type=float, default=2.0, help="flush_max_age_secs")
    parser.add_argument(
        "--flush-rows", type=int, default=1000, help="flush_max_rows: small, for many small files"
    )
    parser.add_argument(
        "--batch-bytes", type=int, default=131072, help="largest ingest request of simulate"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each query")
    parser.add_argument("--compaction-timeout", type=float, default=900)
    parser.add_argument("--report", help="also write the result as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    args = parser.parse_args()
    try:
        result = run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report(result))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
