"""Measures how well a findings query detects the abuse that `apitrail simulate` injects.

Usage:
    anomaly_quality.py --apitrail target/release/apitrail [--runs 1:30:1,2:30:1] [--quick]
                       [--sql TEMPLATE] [--options k=v,...] [--report FILE]
                       [--dump-findings DIR] [--keep]
    anomaly_quality.py --self-test

For each run (seed, partners, scale), the script starts `apitrail serve` on a
new temporary data directory, with every listener on a free port of
127.0.0.1. It sends the server the events of `apitrail simulate --server` and
waits until `SELECT count(*) FROM events` equals the event count that
simulate printed. Then it runs the findings query over the attack period,
the last 7 days of the simulation, and stops the server with SIGTERM.

Each finding row is scored against the simulator's ground truth: it is true
when its consumer carried a scenario's calls and its hours overlap the
scenario's window, extended by a slack for detectors that look back over a
trailing window. The script prints markdown tables of recall, precision,
time to detect and false findings per partner-week, and can write every
finding with its verdict as JSON.

The exit code is 0 whenever the measurement completes, whatever the
figures. It is 1 when a step fails (the server does not start, simulate
fails, the event count never matches, the query fails), with the reason on
stderr. `--self-test` runs the unit tests of the scoring functions.

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

# Kinds of finding that count as detecting each scenario in "recall with
# expected kind", and that count against the scenario's precision when false.
EXPECTED_KINDS: dict[str, frozenset[str]] = {
    "data_harvesting": frozenset({"data_harvesting"}),
    "object_enumeration": frozenset({"object_enumeration", "error_rate"}),
    "leaked_key": frozenset({"new_network", "new_user_agent", "new_consumer"}),
    "credential_stuffing": frozenset({"auth_failures", "new_consumer"}),
    "off_hours_export": frozenset({"off_hours"}),
    "volume_spike": frozenset({"volume_spike"}),
    "endpoint_probing": frozenset({"new_endpoint", "error_rate"}),
    "unusual_method": frozenset({"unusual_method"}),
    "low_and_slow_exfiltration": frozenset({"bytes_out"}),
}

# Scenarios whose detectors compare trailing 24-hour windows, so their
# findings go on after the scenario ends and take up to a day to appear.
SLOW_SCENARIOS = frozenset({"data_harvesting", "low_and_slow_exfiltration"})

SLOW_SLACK = timedelta(hours=24)
SUDDEN_SLACK = timedelta(hours=1)
SLOW_TARGET = timedelta(hours=24)
SUDDEN_TARGET = timedelta(hours=1)

# A finding's last hour must end before a detector can report it.
FINDING_HOUR = timedelta(hours=1)

ATTACK_PERIOD = timedelta(days=7)

REQUIRED_COLUMNS = ("bucket_start", "bucket_end", "consumer", "kind")

DEFAULT_SQL = "SELECT * FROM anomalies(TIMESTAMP '{start}', TIMESTAMP '{end}'{options})"

SIMULATE_DEFAULT_START = "2025-04-07"
SIMULATE_DEFAULT_WEEKS = 5


@dataclass(frozen=True)
class RunSpec:
    """One simulated world: the seed, the number of partners and the volume multiplier."""

    seed: int
    partners: int
    scale: str

    def label(self) -> str:
        partners = "partner" if self.partners == 1 else "partners"
        return f"seed {self.seed}, {self.partners} {partners}, scale {self.scale}"

    def spec(self) -> str:
        return f"{self.seed}:{self.partners}:{self.scale}"

    def slug(self) -> str:
        return f"seed{self.seed}-p{self.partners}-x{self.scale}"


DEFAULT_RUNS = [
    RunSpec(1, 30, "1"),
    RunSpec(2, 30, "1"),
    RunSpec(3, 30, "1"),
    RunSpec(4, 10, "0.5"),
    RunSpec(5, 60, "1"),
]

# About 250,000 events, which a release build simulates and ingests in seconds.
QUICK_RUNS = [RunSpec(1, 10, "0.25")]


class BenchError(Exception):
    """A step of a run failed, so the measurement is incomplete."""


@dataclass(frozen=True)
class Scenario:
    """One line of the ground truth: an injected scenario instance."""

    index: int
    name: str
    consumers: frozenset[str]
    start: datetime
    end: datetime
    # Time of the scenario's first call, when the truth gives it. Detection
    # time counts from here, since no detector can see a scenario before it.
    first_event: datetime | None = None

    @property
    def visible_from(self) -> datetime:
        return self.first_event if self.first_event is not None else self.start


@dataclass(frozen=True)
class Finding:
    """One row of the findings query: a run of flagged hours of one consumer."""

    bucket_start: datetime
    bucket_end: datetime
    consumer: str | None
    kind: str


# ---------------------------------------------------------------------------
# Scoring. Plain functions over findings and truth, tested by --self-test.
# ---------------------------------------------------------------------------


def parse_time(text: Any, field: str) -> datetime:
    """Parse an RFC 3339 timestamp, taking a value without an offset as UTC.

    `field` names the value in the error message.
    """
    if not isinstance(text, str):
        raise BenchError(f"{field} is {text!r}, expected an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise BenchError(f"{field} is {text!r}, not an RFC 3339 timestamp: {error}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scenario_from_line(index: int, line: dict[str, Any]) -> Scenario:
    """Build a Scenario from one parsed truth line, whose position in the file is `index`."""
    name = line.get("scenario")
    if not isinstance(name, str) or not name:
        raise BenchError(f"truth line {index + 1} has no scenario name: {line!r}")
    consumers = line.get("consumers", [])
    if not isinstance(consumers, list) or not all(isinstance(c, str) for c in consumers):
        raise BenchError(f"truth line {index + 1} ({name}) has invalid consumers: {consumers!r}")
    if isinstance(line.get("consumer"), str):
        consumers = consumers + [line["consumer"]]
    if not consumers:
        raise BenchError(f"truth line {index + 1} ({name}) names no consumer")
    start = parse_time(line.get("start"), f"start of truth line {index + 1} ({name})")
    end = parse_time(line.get("end"), f"end of truth line {index + 1} ({name})")
    first_event = None
    if line.get("first_event") is not None:
        first_event = parse_time(
            line["first_event"], f"first_event of truth line {index + 1} ({name})"
        )
    return Scenario(index, name, frozenset(consumers), start, end, first_event)


def finding_from_row(number: int, row: dict[str, Any]) -> Finding:
    """Build a Finding from one result row, whose number (from 1) goes into error messages."""
    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        raise BenchError(
            f"row {number} of the findings query has no column {', '.join(missing)}; "
            f"the query must return {', '.join(REQUIRED_COLUMNS)}: {row!r}"
        )
    consumer = row["consumer"]
    if consumer is not None and not isinstance(consumer, str):
        consumer = str(consumer)
    return Finding(
        bucket_start=parse_time(row["bucket_start"], f"bucket_start of finding row {number}"),
        bucket_end=parse_time(row["bucket_end"], f"bucket_end of finding row {number}"),
        consumer=consumer,
        kind=str(row["kind"]),
    )


def slack(scenario_name: str) -> timedelta:
    """Return the time after a scenario's end during which its findings still count as true."""
    return SLOW_SLACK if scenario_name in SLOW_SCENARIOS else SUDDEN_SLACK


def detection_target(scenario_name: str) -> timedelta:
    return SLOW_TARGET if scenario_name in SLOW_SCENARIOS else SUDDEN_TARGET


def overlaps(start_a: datetime, end_a: datetime, start_b: datetime, end_b: datetime) -> bool:
    """Tell whether the half-open intervals [start_a, end_a) and [start_b, end_b) share a moment."""
    return start_a < end_b and start_b < end_a


def matching_scenarios(finding: Finding, truth: Iterable[Scenario]) -> list[Scenario]:
    """List the scenarios a finding detects: same consumer, overlapping the window plus slack."""
    if finding.consumer is None:
        return []
    return [
        scenario
        for scenario in truth
        if finding.consumer in scenario.consumers
        and overlaps(
            finding.bucket_start,
            finding.bucket_end,
            scenario.start,
            scenario.end + slack(scenario.name),
        )
    ]


def time_to_detect(first_bucket_start: datetime, scenario_start: datetime) -> timedelta:
    """Time from a scenario's first call (else its start) to the end of the first hour flagged for it, at least 0.

    A finding can be reported only once its hour is over, hence the added hour.
    A finding that starts before the scenario (it overlaps through a long
    bucket) gives 0.
    """
    return max(first_bucket_start + FINDING_HOUR - scenario_start, timedelta(0))


def judge_findings(findings: list[Finding], truth: list[Scenario]) -> list[dict[str, Any]]:
    """Give each finding its verdict and the scenario instances it is attributed to.

    Returns one dict per finding, in order, with `true`, `kind` and `matches`
    (a list of {"index", "scenario"}, the truth lines it matched).
    """
    verdicts = []
    for finding in findings:
        matched = matching_scenarios(finding, truth)
        verdicts.append(
            {
                "true": bool(matched),
                "kind": finding.kind,
                "matches": [{"index": s.index, "scenario": s.name} for s in matched],
            }
        )
    return verdicts


def score_instances(
    findings: list[Finding], verdicts: list[dict[str, Any]], truth: list[Scenario]
) -> list[dict[str, Any]]:
    """Describe each scenario instance: detected or not, with which kinds, and how fast."""
    instances = []
    for scenario in truth:
        mine = [
            finding
            for finding, verdict in zip(findings, verdicts)
            if any(match["index"] == scenario.index for match in verdict["matches"])
        ]
        expected = EXPECTED_KINDS.get(scenario.name)
        detected = bool(mine)
        ttd = None
        if detected:
            first = min(finding.bucket_start for finding in mine)
            ttd = time_to_detect(first, scenario.visible_from)
        instances.append(
            {
                "index": scenario.index,
                "scenario": scenario.name,
                "consumers": sorted(scenario.consumers),
                "start": format_time(scenario.start),
                "end": format_time(scenario.end),
                "first_event": None
                if scenario.first_event is None
                else format_time(scenario.first_event),
                "findings": len(mine),
                "kinds": sorted({finding.kind for finding in mine}),
                "detected": detected,
                # None when the scenario name is unknown, so no kinds are expected.
                "detected_with_expected_kind": None
                if expected is None
                else any(finding.kind in expected for finding in mine),
                "ttd_seconds": None if ttd is None else ttd.total_seconds(),
                "met_target": ttd is not None and ttd <= detection_target(scenario.name),
            }
        )
    return instances


def ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def summarize_scenarios(
    instances: list[dict[str, Any]], verdicts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Compute the per-scenario figures over instances and findings of one or more runs.

    Every known scenario gets a row, with 0 instances when the truth lacks it.
    Unknown scenario names in the truth get rows after the known ones.
    """
    names = list(EXPECTED_KINDS)
    names += sorted({i["scenario"] for i in instances} - set(names))
    rows = []
    for name in names:
        mine = [i for i in instances if i["scenario"] == name]
        expected = EXPECTED_KINDS.get(name, frozenset())
        detected = [i for i in mine if i["detected"]]
        with_kind = [i for i in mine if i["detected_with_expected_kind"]]
        true_findings = sum(
            1 for v in verdicts if any(m["scenario"] == name for m in v["matches"])
        )
        false_of_kind = sum(1 for v in verdicts if not v["true"] and v["kind"] in expected)
        ttds = [i["ttd_seconds"] for i in detected]
        rows.append(
            {
                "scenario": name,
                "instances": len(mine),
                "detected": len(detected),
                "recall": ratio(len(detected), len(mine)),
                "recall_expected_kind": None
                if name not in EXPECTED_KINDS
                else ratio(len(with_kind), len(mine)),
                "true_findings": true_findings,
                "false_findings_of_expected_kinds": false_of_kind,
                "precision": ratio(true_findings, true_findings + false_of_kind),
                "ttd_median_seconds": statistics.median(ttds) if ttds else None,
                "ttd_max_seconds": max(ttds) if ttds else None,
                "met_target": sum(1 for i in mine if i["met_target"]),
                "target_seconds": detection_target(name).total_seconds(),
            }
        )
    return rows


def summarize_totals(
    instances: list[dict[str, Any]], verdicts: list[dict[str, Any]], partner_weeks: float
) -> dict[str, Any]:
    """Compute the figures over all scenarios: recall, precision and false findings."""
    true_count = sum(1 for v in verdicts if v["true"])
    false_count = len(verdicts) - true_count
    detected = sum(1 for i in instances if i["detected"])
    with_kind = sum(1 for i in instances if i["detected_with_expected_kind"])
    return {
        "instances": len(instances),
        "detected": detected,
        "recall": ratio(detected, len(instances)),
        "recall_expected_kind": ratio(with_kind, len(instances)),
        "findings": len(verdicts),
        "true": true_count,
        "false": false_count,
        "precision": ratio(true_count, len(verdicts)),
        "partner_weeks": partner_weeks,
        "false_per_partner_week": false_count / partner_weeks if partner_weeks else None,
        "met_target": sum(1 for i in instances if i["met_target"]),
    }


def false_by_kind(verdicts: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for verdict in verdicts:
        if not verdict["true"]:
            counts[verdict["kind"]] = counts.get(verdict["kind"], 0) + 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------------------
# Inputs: run lists, the attack period, the query text, simulate's output.
# ---------------------------------------------------------------------------


def parse_runs(text: str) -> list[RunSpec]:
    """Parse `seed:partners:scale,...`, such as `1:30:1,4:10:0.5`."""
    runs = []
    for item in text.split(","):
        parts = [part.strip() for part in item.split(":")]
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(
                f"invalid run {item!r}: expected seed:partners:scale, such as 1:30:1"
            )
        seed_text, partners_text, scale_text = parts
        try:
            seed = int(seed_text)
            partners = int(partners_text)
            scale = float(scale_text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid run {item!r}: seed and partners must be integers and scale a number"
            ) from None
        if not 0 <= seed < 2**64:
            raise argparse.ArgumentTypeError(f"invalid seed {seed} in {item!r}: 0 to 2^64 - 1")
        if not 1 <= partners <= 150:
            raise argparse.ArgumentTypeError(f"invalid partners {partners} in {item!r}: 1 to 150")
        if not 0 < scale <= 100:
            raise argparse.ArgumentTypeError(
                f"invalid scale {scale_text} in {item!r}: above 0 and at most 100"
            )
        runs.append(RunSpec(seed, partners, scale_text))
    return runs


def attack_period(start_day: str, weeks: int) -> tuple[datetime, datetime]:
    """Return the last 7 days of a simulation that starts at 00:00 UTC on `start_day`.

    A simulation of one week is the attack period as a whole. Its scenarios use only
    the last four days, which lie inside that period.
    """
    try:
        first = date.fromisoformat(start_day)
    except ValueError:
        raise BenchError(f"invalid --start {start_day!r}: expected YYYY-MM-DD") from None
    begin = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    end = begin + timedelta(weeks=weeks)
    return max(begin, end - ATTACK_PERIOD), end


def build_query(template: str, start: datetime, end: datetime, options: str | None) -> str:
    """Fill `{start}`, `{end}` and `{options}` in the findings query template.

    Only these three placeholders are replaced, so other braces, such as the
    `{id}` of endpoint templates, stay as written. `{options}` becomes
    `, 'k=v,...'` when options are given and nothing otherwise.
    """
    if options is not None and "{options}" not in template:
        raise BenchError(
            "--options was given, but the query template has no {options} placeholder "
            "to put the third argument in"
        )
    argument = "" if options is None else ", '" + options.replace("'", "''") + "'"
    return (
        template.replace("{start}", format_time(start))
        .replace("{end}", format_time(end))
        .replace("{options}", argument)
    )


def simulated_event_count(output: str) -> int:
    """Read N from simulate's summary line `simulated N events in ...`."""
    found = re.search(r"^simulated (\d+) events\b", output, re.MULTILINE)
    if found is None:
        raise BenchError(
            "apitrail simulate printed no 'simulated N events' line; its output was:\n" + output
        )
    return int(found.group(1))


# ---------------------------------------------------------------------------
# The server and the HTTP API.
# ---------------------------------------------------------------------------

LISTENER_FLAGS = (
    "--http-addr",
    "--flight-addr",
    "--pg-addr",
    "--otlp-grpc-addr",
    "--otlp-http-addr",
)
HTTP_LISTENING = re.compile(r"^apitrail listening on (https?://\S+)$")


def child_environment() -> dict[str, str]:
    """Return this process's environment without APITRAIL_* variables.

    The server must start fresh, so a configuration file, a token, TLS or a
    store URL set for another server must not reach it or simulate.
    """
    return {name: value for name, value in os.environ.items() if not name.startswith("APITRAIL_")}


class Server:
    """An `apitrail serve` child process on a data directory, with its log file."""

    def __init__(
        self,
        binary: str,
        data_dir: str,
        log_path: str,
        start_timeout: float,
        extra_args: list[str] | None = None,
    ):
        self.binary = binary
        self.extra_args = list(extra_args or [])
        self.data_dir = data_dir
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[str] | None = None
        self.listening: list[str] = []
        self.url = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._log = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start the server with every listener on port 0 and wait until /health returns ok."""
        command = [self.binary, "serve", "--data-dir", self.data_dir]
        for flag in LISTENER_FLAGS:
            command += [flag, "127.0.0.1:0"]
        command += self.extra_args
        self._log = open(self.log_path, "w", encoding="utf-8")
        try:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=self._log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=child_environment(),
            )
        except OSError as error:
            raise BenchError(f"could not start {self.binary}: {error}") from None
        self._reader = threading.Thread(target=self._copy_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        self.url = self._wait_for_http_line(deadline)
        self._wait_for_health(deadline)

    def _copy_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_for_http_line(self, deadline: float) -> str:
        # The server prints one line per listener, the HTTP one last.
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(
                    f"timed out: apitrail serve printed no HTTP listening line within "
                    f"{self.start_timeout:.0f} s; see {self.log_path} or raise --start-timeout"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise BenchError(
                    f"apitrail serve exited during start with code {self.exit_code()}; "
                    f"its log is {self.log_path}:\n{tail(self.log_path)}"
                )
            self.listening.append(line)
            found = HTTP_LISTENING.match(line)
            if found:
                return found.group(1)

    def _wait_for_health(self, deadline: float) -> None:
        last_error = "no request sent"
        while time.monotonic() < deadline:
            if self.exit_code() is not None:
                raise BenchError(
                    f"apitrail serve exited with code {self.exit_code()}; "
                    f"its log is {self.log_path}:\n{tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                    body = json.loads(response.read())
                if body.get("status") == "ok":
                    return
                last_error = f"body {body!r}"
            except (OSError, ValueError) as error:
                last_error = str(error)
            time.sleep(0.2)
        raise BenchError(
            f"timed out: {self.url}/health did not return ok within {self.start_timeout:.0f} s "
            f"(last error: {last_error}); see {self.log_path} or raise --start-timeout"
        )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float) -> None:
        """Send SIGTERM, which flushes the write buffer, and wait for the exit.

        If the server is still running after `timeout` seconds, it is killed
        and BenchError is raised.
        """
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                    raise BenchError(
                        f"apitrail serve did not exit within {timeout:.0f} s of SIGTERM and was "
                        f"killed; see {self.log_path}"
                    ) from None
                if self.process.returncode != 0:
                    # The findings are already read, so the run still counts.
                    progress(
                        f"  warning: apitrail serve exited with code {self.process.returncode} "
                        f"after SIGTERM; see {self.log_path}"
                    )
        finally:
            if self._reader is not None:
                self._reader.join(timeout=5)
            if self._log is not None:
                self._log.close()
                self._log = None


def tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return "".join(file.readlines()[-lines:])
    except OSError as error:
        return f"(log not readable: {error})"


def query_jsonl(url: str, sql: str, timeout: float) -> list[dict[str, Any]]:
    """Run one SQL statement through POST /api/v1/query and return its rows.

    A JSON-lines body that does not end with a line feed failed after the
    result had started, and its last line contains the error.
    """
    request = urllib.request.Request(
        url + "/api/v1/query?output=jsonl",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", errors="replace")
        raise BenchError(f"query failed with HTTP {error.code}: {detail}\nSQL: {sql}") from None
    except (OSError, ValueError) as error:
        raise BenchError(f"query failed: {error}\nSQL: {sql}") from None
    if body and not body.endswith("\n"):
        last = body.rsplit("\n", 1)[-1]
        raise BenchError(f"query failed after the result started: {last}\nSQL: {sql}")
    rows = []
    for number, line in enumerate(body.splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except ValueError as error:
            raise BenchError(f"line {number} of the query result is not JSON: {error}") from None
    return rows


def wait_for_count(url: str, expected: int, timeout: float) -> float:
    """Wait until the events table contains `expected` rows, and return the seconds waited."""
    started = time.monotonic()
    count = None
    while True:
        rows = query_jsonl(url, "SELECT count(*) AS n FROM events", timeout=60)
        count = rows[0]["n"] if rows and "n" in rows[0] else None
        if count == expected:
            return time.monotonic() - started
        if isinstance(count, int) and count > expected:
            raise BenchError(
                f"the server contains {count} events, more than the {expected} simulated; "
                "the data directory must be new"
            )
        if time.monotonic() - started > timeout:
            raise BenchError(
                f"timed out: the server contained {count} events after {timeout:.0f} s, "
                f"not the {expected} that simulate sent; raise --count-timeout or see the "
                "server log (--keep keeps it)"
            )
        time.sleep(0.5)


# ---------------------------------------------------------------------------
# One run and the whole benchmark.
# ---------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def simulate(
    args: argparse.Namespace, run: RunSpec, url: str, truth_path: str, log_path: str
) -> int:
    """Send one simulated world to the server, and return the event count simulate printed."""
    command = [
        args.apitrail, "simulate",
        "--seed", str(run.seed),
        "--partners", str(run.partners),
        "--scale", run.scale,
        "--weeks", str(args.weeks),
        "--start", args.start,
        "--format", args.format,
        "--server", url,
        "--truth", truth_path,
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, env=child_environment(), stdin=subprocess.DEVNULL
    )
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(result.stdout)
        log.write(result.stderr)
    if result.returncode != 0:
        raise BenchError(
            f"apitrail simulate failed with code {result.returncode}:\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    # simulate prints its summary on stderr, since stdout may carry the events.
    events = simulated_event_count(result.stderr + result.stdout)
    progress(f"  simulated {events:,} events in {time.monotonic() - started:.1f} s")
    return events


def read_truth(path: str) -> tuple[list[dict[str, Any]], list[Scenario]]:
    lines = []
    with open(path, encoding="utf-8") as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                lines.append(json.loads(text))
            except ValueError as error:
                raise BenchError(f"line {number} of {path} is not JSON: {error}") from None
    return lines, [scenario_from_line(index, line) for index, line in enumerate(lines)]


def execute_run(
    args: argparse.Namespace, number: int, run: RunSpec, workdir: str
) -> dict[str, Any]:
    """Start a server, simulate into it, run the findings query, stop the server, score.

    `number` counts runs from 1 and prefixes the run's file names, so a run
    listed twice gets files of its own.
    """
    name = f"{number}-{run.slug()}"
    run_dir = os.path.join(workdir, name)
    os.makedirs(run_dir)
    data_dir = os.path.join(run_dir, "data")
    truth_path = os.path.join(run_dir, "truth.jsonl")
    server_log = os.path.join(run_dir, "server.log")
    server = Server(args.apitrail, data_dir, server_log, args.start_timeout)
    start, end = attack_period(args.start, args.weeks)
    sql = build_query(args.sql, start, end, args.options)

    try:
        server.start()
        progress(f"  server on {server.url}, data in {data_dir}")
        events = simulate(args, run, server.url, truth_path, os.path.join(run_dir, "simulate.log"))
        waited = wait_for_count(server.url, events, args.count_timeout)
        progress(f"  events table complete after {waited:.1f} s")

        started = time.perf_counter()
        rows = query_jsonl(server.url, sql, args.query_timeout)
        query_seconds = time.perf_counter() - started
        progress(f"  findings query: {len(rows)} rows in {query_seconds:.2f} s")
    except BaseException:
        # Report the first failure, not a failure to stop after it.
        try:
            server.stop(args.stop_timeout)
        except BenchError as error:
            progress(f"  {error}")
        raise
    server.stop(args.stop_timeout)

    truth_lines, truth = read_truth(truth_path)
    findings = [finding_from_row(index, row) for index, row in enumerate(rows, start=1)]
    verdicts = judge_findings(findings, truth)
    instances = score_instances(findings, verdicts, truth)

    if args.dump_findings:
        dump_run(args.dump_findings, name, rows, verdicts, truth_lines)

    return {
        "seed": run.seed,
        "partners": run.partners,
        "scale": run.scale,
        "label": run.label(),
        "spec": run.spec(),
        "events": events,
        "query_seconds": query_seconds,
        "listening": server.listening,
        "run_dir": run_dir if args.keep else None,
        "truth": truth_lines,
        "findings": [finding_record(row, verdict) for row, verdict in zip(rows, verdicts)],
        "instances": instances,
        "scenarios": summarize_scenarios(instances, verdicts),
        "totals": summarize_totals(instances, verdicts, run.partners * 1.0),
        "false_by_kind": false_by_kind(verdicts),
        "_verdicts": verdicts,
    }


def finding_record(row: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """Return a result row with its verdict (`"true"` or `"false"`) and matched truth lines."""
    return dict(row, verdict="true" if verdict["true"] else "false", matches=verdict["matches"])


def dump_run(
    directory: str,
    name: str,
    rows: list[dict[str, Any]],
    verdicts: list[dict[str, Any]],
    truth_lines: list[dict[str, Any]],
) -> None:
    os.makedirs(directory, exist_ok=True)
    findings_path = os.path.join(directory, f"{name}-findings.jsonl")
    with open(findings_path, "w", encoding="utf-8") as out:
        for row, verdict in zip(rows, verdicts):
            out.write(json.dumps(finding_record(row, verdict)) + "\n")
    truth_path = os.path.join(directory, f"{name}-truth.jsonl")
    with open(truth_path, "w", encoding="utf-8") as out:
        for line in truth_lines:
            out.write(json.dumps(line) + "\n")


def combine_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool the instances and findings of every run and score them as one set."""
    instances = [i for result in results for i in result["instances"]]
    verdicts = [v for result in results for v in result["_verdicts"]]
    partner_weeks = sum(result["partners"] for result in results) * 1.0
    totals = summarize_totals(instances, verdicts, partner_weeks)
    totals["events"] = sum(result["events"] for result in results)
    totals["query_seconds"] = sum(result["query_seconds"] for result in results)
    return {
        "scenarios": summarize_scenarios(instances, verdicts),
        "totals": totals,
        "false_by_kind": false_by_kind(verdicts),
    }


# ---------------------------------------------------------------------------
# Markdown output.
# ---------------------------------------------------------------------------


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_duration(seconds: float | None) -> str:
    """Format seconds as hours and minutes, such as `2 h 05 min`, rounded to the minute."""
    if seconds is None:
        return "n/a"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def scenario_table(rows: list[dict[str, Any]], totals: dict[str, Any]) -> str:
    lines = [
        "| scenario | instances | detected | recall | recall with expected kind | precision "
        "| median TTD | max TTD | met target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        target = format_duration(row["target_seconds"])
        lines.append(
            f"| {row['scenario']} | {row['instances']} | {row['detected']} "
            f"| {format_ratio(row['recall'])} | {format_ratio(row['recall_expected_kind'])} "
            f"| {format_ratio(row['precision'])} | {format_duration(row['ttd_median_seconds'])} "
            f"| {format_duration(row['ttd_max_seconds'])} "
            f"| {row['met_target']} of {row['instances']} (≤ {target}) |"
        )
    lines.append(
        f"| all | {totals['instances']} | {totals['detected']} | {format_ratio(totals['recall'])} "
        f"| {format_ratio(totals['recall_expected_kind'])} | {format_ratio(totals['precision'])} "
        f"| | | {totals['met_target']} of {totals['instances']} |"
    )
    return "\n".join(lines)


def runs_table(results: list[dict[str, Any]], overall: dict[str, Any]) -> str:
    lines = [
        "| run | events | findings | true | false | precision | false per partner-week "
        "| query seconds |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def line(label: str, events: int, totals: dict[str, Any], seconds: float) -> str:
        per_week = totals["false_per_partner_week"]
        return (
            f"| {label} | {events:,} | {totals['findings']} | {totals['true']} | {totals['false']} "
            f"| {format_ratio(totals['precision'])} "
            f"| {'n/a' if per_week is None else f'{per_week:.2f}'} | {seconds:.2f} |"
        )

    for result in results:
        seconds = result["query_seconds"]
        lines.append(line(result["label"], result["events"], result["totals"], seconds))
    totals = overall["totals"]
    lines.append(line("all runs", totals["events"], totals, totals["query_seconds"]))
    return "\n".join(lines)


def false_kind_table(results: list[dict[str, Any]], overall: dict[str, Any]) -> str:
    kinds = list(overall["false_by_kind"])
    header = "| kind | " + " | ".join(r["spec"] for r in results) + " | all runs |"
    lines = [header, "|---|" + "--:|" * (len(results) + 1)]
    if not kinds:
        lines.append("| (none) |" + " 0 |" * (len(results) + 1))
    for kind in kinds:
        cells = " | ".join(str(r["false_by_kind"].get(kind, 0)) for r in results)
        lines.append(f"| {kind} | {cells} | {overall['false_by_kind'][kind]} |")
    return "\n".join(lines)


def print_report(
    args: argparse.Namespace, results: list[dict[str, Any]], overall: dict[str, Any]
) -> None:
    start, end = attack_period(args.start, args.weeks)
    print("# Anomaly detection quality")
    print()
    print(
        f"{len(results)} run(s), format {args.format}, {args.weeks} weeks from {args.start}, "
        f"attack period {format_time(start)} to {format_time(end)}."
    )
    print()
    print("## Per scenario, all runs")
    print()
    print(scenario_table(overall["scenarios"], overall["totals"]))
    print()
    print("## Per run")
    print()
    print(runs_table(results, overall))
    print()
    print("## False findings by kind")
    print()
    print(false_kind_table(results, overall))
    if len(results) > 1:
        for result in results:
            print()
            print(f"## Per scenario, {result['label']}")
            print()
            print(scenario_table(result["scenarios"], result["totals"]))


def write_report(
    path: str, args: argparse.Namespace, results: list[dict[str, Any]], overall: dict[str, Any]
) -> None:
    start, end = attack_period(args.start, args.weeks)
    report = {
        "parameters": {
            "apitrail": args.apitrail,
            "format": args.format,
            "start": args.start,
            "weeks": args.weeks,
            "attack_period": [format_time(start), format_time(end)],
            "sql": build_query(args.sql, start, end, args.options),
            "options": args.options,
        },
        "machine": {
            "apitrail_version": apitrail_version(args.apitrail),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "overall": overall,
        "runs": [{k: v for k, v in result.items() if not k.startswith("_")} for result in results],
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)
        out.write("\n")


def apitrail_version(binary: str) -> str | None:
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def run_benchmark(args: argparse.Namespace) -> None:
    runs = QUICK_RUNS if args.quick else args.runs
    workdir = tempfile.mkdtemp(prefix="apitrail-anomaly-quality-")
    results = []
    try:
        for number, run in enumerate(runs, start=1):
            progress(f"run {number} of {len(runs)}: {run.label()}")
            results.append(execute_run(args, number, run, workdir))
    finally:
        if args.keep:
            progress(f"kept the data directories, truth and logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    overall = combine_runs(results)
    print_report(args, results, overall)
    if args.report:
        write_report(args.report, args, results, overall)
        progress(f"wrote {args.report}")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser.add_argument_group("runs"))
    add_query_arguments(parser.add_argument_group("findings query"))
    add_output_arguments(parser.add_argument_group("output"))
    add_timeout_arguments(parser.add_argument_group("timeouts, in seconds"))
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="run the unit tests of the scoring functions and exit",
    )

    args = parser.parse_args(argv)
    if not 1 <= args.weeks <= 52:
        parser.error(f"invalid --weeks {args.weeks}: 1 to 52")
    return args


def add_run_arguments(group: argparse._ArgumentGroup) -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    group.add_argument(
        "--apitrail",
        default=os.path.join(root, "target", "release", "apitrail"),
        help="apitrail binary to run (default: target/release/apitrail of this repository)",
    )
    group.add_argument(
        "--runs",
        type=parse_runs,
        default=DEFAULT_RUNS,
        help="comma-separated runs as seed:partners:scale "
        "(default: 1:30:1,2:30:1,3:30:1,4:10:0.5,5:60:1)",
    )
    group.add_argument(
        "--quick",
        action="store_true",
        help="one small run (seed 1, 10 partners, scale 0.25) instead of --runs",
    )
    group.add_argument(
        "--format",
        default="aws_apigateway",
        help="event format passed to simulate: aws_apigateway (default), kong, otlp or aws_alb",
    )
    group.add_argument(
        "--start",
        default=SIMULATE_DEFAULT_START,
        help="first simulated day, YYYY-MM-DD, passed to simulate "
        f"(default: {SIMULATE_DEFAULT_START})",
    )
    group.add_argument(
        "--weeks",
        type=int,
        default=SIMULATE_DEFAULT_WEEKS,
        help=f"simulated weeks, passed to simulate (default: {SIMULATE_DEFAULT_WEEKS}); "
        "the attack period is the last 7 days",
    )


def add_query_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--sql",
        default=DEFAULT_SQL,
        help="findings query template; {start} and {end} become the attack period as RFC 3339 "
        "timestamps and {options} the third argument of --options "
        f"(default: {DEFAULT_SQL.replace('%', '%%')})",
    )
    group.add_argument(
        "--options",
        help="options string k=v,... passed as a quoted third argument through {options}",
    )


def add_output_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--report", help="write every figure and finding as JSON to this file")
    group.add_argument(
        "--dump-findings",
        metavar="DIR",
        help="write each run's findings (with verdicts) and truth as JSON lines to DIR",
    )
    group.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary data directories, truth files and logs",
    )


def add_timeout_arguments(group: argparse._ArgumentGroup) -> None:
    timeouts = [
        ("--start-timeout", 60, "for the server to start"),
        ("--count-timeout", 600, "for the events table to reach the simulated count"),
        ("--query-timeout", 900, "for the findings query"),
        ("--stop-timeout", 120, "for the server to exit after SIGTERM"),
    ]
    for flag, default, purpose in timeouts:
        group.add_argument(
            flag,
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"seconds to wait {purpose} (default: {default})",
        )


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if args.self_test:
        suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        return 0 if result.wasSuccessful() else 1
    try:
        # Check the period and the template before any server starts.
        build_query(args.sql, *attack_period(args.start, args.weeks), args.options)
        run_benchmark(args)
    except BenchError as error:
        print(f"anomaly_quality: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        # A report, dump or temporary file that cannot be written.
        print(f"anomaly_quality: error: {error}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------
# Self test: the scoring functions on hand-made findings and truth.
# ---------------------------------------------------------------------------


def at(text: str) -> datetime:
    return parse_time(text, "test time")


def make_truth(*lines: tuple[str, str, str, str]) -> list[Scenario]:
    """Build truth from (scenario, consumer, start, end) tuples."""
    truth = []
    for index, (name, consumer, start, end) in enumerate(lines):
        line = {"scenario": name, "consumer": consumer, "consumers": [consumer]}
        truth.append(scenario_from_line(index, dict(line, start=start, end=end)))
    return truth


def make_finding(consumer: str | None, start: str, end: str, kind: str = "volume_spike") -> Finding:
    return Finding(at(start), at(end), consumer, kind)


def score(findings: list[Finding], truth: list[Scenario]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score findings, and return the per-scenario rows by name and the totals."""
    verdicts = judge_findings(findings, truth)
    instances = score_instances(findings, verdicts, truth)
    rows = {row["scenario"]: row for row in summarize_scenarios(instances, verdicts)}
    return rows, summarize_totals(instances, verdicts, 1.0)


class OverlapTest(unittest.TestCase):
    truth = make_truth(("volume_spike", "k1", "2025-05-06T10:20:00Z", "2025-05-06T11:40:00Z"))

    def test_ending_at_start_is_false(self):
        finding = make_finding("k1", "2025-05-06T09:20:00Z", "2025-05-06T10:20:00Z")
        self.assertEqual(matching_scenarios(finding, self.truth), [])

    def test_one_minute_inside_is_true(self):
        finding = make_finding("k1", "2025-05-06T09:21:00Z", "2025-05-06T10:21:00Z")
        self.assertEqual([s.index for s in matching_scenarios(finding, self.truth)], [0])

    def test_other_consumer_is_false(self):
        finding = make_finding("k2", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z")
        self.assertEqual(matching_scenarios(finding, self.truth), [])

    def test_null_consumer_is_false(self):
        finding = make_finding(None, "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z")
        self.assertEqual(matching_scenarios(finding, self.truth), [])

    def test_any_listed_consumer_matches(self):
        truth = [
            scenario_from_line(
                0,
                {
                    "scenario": "credential_stuffing",
                    "consumer": "198.18.4.7",
                    "consumers": ["198.18.4.7", "198.18.9.1"],
                    "start": "2025-05-06T10:00:00Z",
                    "end": "2025-05-06T12:00:00Z",
                },
            )
        ]
        finding = make_finding("198.18.9.1", "2025-05-06T11:00:00Z", "2025-05-06T12:00:00Z")
        self.assertEqual(len(matching_scenarios(finding, truth)), 1)

    def test_offset_and_naive_times_are_utc(self):
        self.assertEqual(at("2025-05-06T12:20:00+02:00"), at("2025-05-06T10:20:00Z"))
        self.assertEqual(at("2025-05-06T10:20:00"), at("2025-05-06T10:20:00.000000Z"))


class SlackTest(unittest.TestCase):
    def test_sudden_slack_is_one_hour(self):
        truth = make_truth(("volume_spike", "k1", "2025-05-06T10:00:00Z", "2025-05-06T12:00:00Z"))
        inside = make_finding("k1", "2025-05-06T12:59:00Z", "2025-05-06T13:59:00Z")
        at_edge = make_finding("k1", "2025-05-06T13:00:00Z", "2025-05-06T14:00:00Z")
        self.assertEqual(len(matching_scenarios(inside, truth)), 1)
        self.assertEqual(matching_scenarios(at_edge, truth), [])

    def test_slow_slack_is_one_day(self):
        for name in ("data_harvesting", "low_and_slow_exfiltration"):
            truth = make_truth((name, "k1", "2025-05-05T00:00:00Z", "2025-05-10T00:00:00Z"))
            late = make_finding("k1", "2025-05-10T23:00:00Z", "2025-05-11T00:00:00Z", "bytes_out")
            too_late = make_finding(
                "k1", "2025-05-11T00:00:00Z", "2025-05-11T01:00:00Z", "bytes_out"
            )
            self.assertEqual(len(matching_scenarios(late, truth)), 1, name)
            self.assertEqual(matching_scenarios(too_late, truth), [], name)

    def test_sudden_finding_a_day_late_is_false(self):
        truth = make_truth(("leaked_key", "k1", "2025-05-05T00:00:00Z", "2025-05-06T00:00:00Z"))
        late = make_finding("k1", "2025-05-06T20:00:00Z", "2025-05-06T21:00:00Z", "new_network")
        rows, totals = score([late], truth)
        self.assertEqual(totals["false"], 1)
        self.assertEqual(rows["leaked_key"]["detected"], 0)


class AttributionTest(unittest.TestCase):
    def test_finding_counts_for_two_scenarios(self):
        truth = make_truth(
            ("leaked_key", "k1", "2025-05-05T05:00:00Z", "2025-05-06T20:00:00Z"),
            ("credential_stuffing", "k1", "2025-05-05T13:00:00Z", "2025-05-05T17:00:00Z"),
        )
        finding = make_finding(
            "k1", "2025-05-05T14:00:00Z", "2025-05-05T16:00:00Z", "auth_failures"
        )
        verdicts = judge_findings([finding], truth)
        self.assertTrue(verdicts[0]["true"])
        self.assertEqual([m["index"] for m in verdicts[0]["matches"]], [0, 1])

        rows, totals = score([finding], truth)
        self.assertEqual(rows["leaked_key"]["detected"], 1)
        self.assertEqual(rows["credential_stuffing"]["detected"], 1)
        self.assertEqual(rows["leaked_key"]["true_findings"], 1)
        self.assertEqual(rows["credential_stuffing"]["true_findings"], 1)
        self.assertEqual(totals["findings"], 1)
        self.assertEqual(totals["true"], 1)

    def test_recall_with_expected_kind(self):
        truth = make_truth(("leaked_key", "k1", "2025-05-05T05:00:00Z", "2025-05-06T20:00:00Z"))
        finding = make_finding("k1", "2025-05-05T06:00:00Z", "2025-05-05T07:00:00Z", "volume_spike")
        rows, _ = score([finding], truth)
        self.assertEqual(rows["leaked_key"]["recall"], 1.0)
        self.assertEqual(rows["leaked_key"]["recall_expected_kind"], 0.0)

        right_kind = make_finding(
            "k1", "2025-05-05T06:00:00Z", "2025-05-05T07:00:00Z", "new_user_agent"
        )
        rows, _ = score([finding, right_kind], truth)
        self.assertEqual(rows["leaked_key"]["recall_expected_kind"], 1.0)

    def test_two_instances_one_detected(self):
        truth = make_truth(
            ("volume_spike", "k1", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z"),
            ("volume_spike", "k2", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z"),
        )
        finding = make_finding("k2", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z")
        rows, _ = score([finding], truth)
        self.assertEqual(rows["volume_spike"]["instances"], 2)
        self.assertEqual(rows["volume_spike"]["detected"], 1)
        self.assertEqual(rows["volume_spike"]["recall"], 0.5)


class PrecisionTest(unittest.TestCase):
    truth = make_truth(
        ("object_enumeration", "k1", "2025-05-07T08:00:00Z", "2025-05-07T11:00:00Z"),
        ("credential_stuffing", "k2", "2025-05-05T13:00:00Z", "2025-05-05T17:00:00Z"),
    )

    def test_false_findings_count_by_kind(self):
        findings = [
            make_finding(
                "k1", "2025-05-07T09:00:00Z", "2025-05-07T10:00:00Z", "object_enumeration"
            ),
            make_finding("k2", "2025-05-05T14:00:00Z", "2025-05-05T15:00:00Z", "auth_failures"),
            # False: k9 carries no scenario.
            make_finding("k9", "2025-05-07T09:00:00Z", "2025-05-07T10:00:00Z", "error_rate"),
            make_finding("k9", "2025-05-08T09:00:00Z", "2025-05-08T10:00:00Z", "auth_failures"),
            make_finding("k9", "2025-05-08T09:00:00Z", "2025-05-08T10:00:00Z", "auth_failures"),
            make_finding("k9", "2025-05-09T09:00:00Z", "2025-05-09T10:00:00Z", "off_hours"),
        ]
        rows, totals = score(findings, self.truth)

        # object_enumeration expects object_enumeration and error_rate.
        self.assertEqual(rows["object_enumeration"]["true_findings"], 1)
        self.assertEqual(rows["object_enumeration"]["false_findings_of_expected_kinds"], 1)
        self.assertEqual(rows["object_enumeration"]["precision"], 0.5)
        # endpoint_probing has no instance but shares error_rate.
        self.assertEqual(rows["endpoint_probing"]["precision"], 0.0)
        self.assertEqual(rows["credential_stuffing"]["precision"], 1 / 3)
        self.assertEqual(rows["off_hours_export"]["precision"], 0.0)
        # No finding of kind volume_spike at all.
        self.assertIsNone(rows["volume_spike"]["precision"])

        self.assertEqual(totals["findings"], 6)
        self.assertEqual(totals["true"], 2)
        self.assertEqual(totals["false"], 4)
        self.assertEqual(totals["precision"], 2 / 6)

    def test_false_by_kind_and_per_partner_week(self):
        findings = [
            make_finding("k9", "2025-05-08T09:00:00Z", "2025-05-08T10:00:00Z", "auth_failures"),
            make_finding("k9", "2025-05-08T11:00:00Z", "2025-05-08T12:00:00Z", "auth_failures"),
            make_finding("k9", "2025-05-09T09:00:00Z", "2025-05-09T10:00:00Z", "off_hours"),
        ]
        verdicts = judge_findings(findings, self.truth)
        instances = score_instances(findings, verdicts, self.truth)
        self.assertEqual(false_by_kind(verdicts), {"auth_failures": 2, "off_hours": 1})
        totals = summarize_totals(instances, verdicts, partner_weeks=30.0)
        self.assertEqual(totals["false_per_partner_week"], 3 / 30)


class TimeToDetectTest(unittest.TestCase):
    def test_floor_at_zero(self):
        self.assertEqual(
            time_to_detect(at("2025-05-06T08:00:00Z"), at("2025-05-06T10:20:00Z")), timedelta(0)
        )

    def test_hour_end_counts(self):
        self.assertEqual(
            time_to_detect(at("2025-05-06T10:00:00Z"), at("2025-05-06T10:20:00Z")),
            timedelta(minutes=40),
        )

    def test_earliest_true_finding_wins(self):
        truth = make_truth(("volume_spike", "k1", "2025-05-06T10:20:00Z", "2025-05-06T12:00:00Z"))
        findings = [
            make_finding("k1", "2025-05-06T11:00:00Z", "2025-05-06T12:00:00Z"),
            make_finding("k1", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z"),
            # Earlier, but of another consumer, so it must not count.
            make_finding("k2", "2025-05-06T08:00:00Z", "2025-05-06T09:00:00Z"),
        ]
        rows, _ = score(findings, truth)
        self.assertEqual(rows["volume_spike"]["ttd_median_seconds"], 40 * 60)
        self.assertEqual(rows["volume_spike"]["ttd_max_seconds"], 40 * 60)
        self.assertEqual(rows["volume_spike"]["met_target"], 1)

    def test_first_event_starts_the_clock(self):
        line = {
            "scenario": "credential_stuffing",
            "consumer": "k1",
            "consumers": ["k1"],
            "start": "2025-05-06T10:00:00Z",
            "end": "2025-05-06T14:00:00Z",
            "first_event": "2025-05-06T11:50:00Z",
        }
        truth = [scenario_from_line(0, line)]
        findings = [make_finding("k1", "2025-05-06T11:00:00Z", "2025-05-06T12:00:00Z")]
        rows, _ = score(findings, truth)
        self.assertEqual(rows["credential_stuffing"]["ttd_median_seconds"], 10 * 60)

    def test_targets_and_median(self):
        truth = make_truth(
            ("volume_spike", "k1", "2025-05-06T10:00:00Z", "2025-05-06T12:00:00Z"),
            ("volume_spike", "k2", "2025-05-06T10:00:00Z", "2025-05-06T12:00:00Z"),
            ("data_harvesting", "k3", "2025-05-05T00:00:00Z", "2025-05-10T00:00:00Z"),
        )
        findings = [
            make_finding("k1", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z"),
            make_finding("k2", "2025-05-06T11:00:00Z", "2025-05-06T12:00:00Z"),
            make_finding("k3", "2025-05-06T05:00:00Z", "2025-05-06T06:00:00Z", "data_harvesting"),
        ]
        rows, totals = score(findings, truth)
        spike = rows["volume_spike"]
        self.assertEqual(spike["ttd_median_seconds"], 90 * 60)
        self.assertEqual(spike["ttd_max_seconds"], 2 * 3600)
        self.assertEqual(spike["met_target"], 1)
        harvest = rows["data_harvesting"]
        self.assertEqual(harvest["ttd_max_seconds"], 30 * 3600)
        self.assertEqual(harvest["met_target"], 0)
        self.assertEqual(totals["met_target"], 1)

    def test_duration_format(self):
        self.assertEqual(format_duration(0), "0 h 00 min")
        self.assertEqual(format_duration(40 * 60), "0 h 40 min")
        self.assertEqual(format_duration(30 * 3600 + 5 * 60 + 20), "30 h 05 min")
        self.assertEqual(format_duration(None), "n/a")


class MissingScenarioTest(unittest.TestCase):
    def test_absent_scenario_has_no_recall(self):
        truth = make_truth(("volume_spike", "k1", "2025-05-06T10:00:00Z", "2025-05-06T12:00:00Z"))
        rows, _ = score([], truth)
        self.assertEqual(set(rows), set(EXPECTED_KINDS))
        absent = rows["unusual_method"]
        self.assertEqual(absent["instances"], 0)
        self.assertIsNone(absent["recall"])
        self.assertIsNone(absent["recall_expected_kind"])
        self.assertIsNone(absent["precision"])
        self.assertIsNone(absent["ttd_median_seconds"])
        self.assertEqual(rows["volume_spike"]["recall"], 0.0)

    def test_unknown_scenario_gets_a_row(self):
        truth = make_truth(("session_hijack", "k1", "2025-05-06T10:00:00Z", "2025-05-06T12:00:00Z"))
        finding = make_finding("k1", "2025-05-06T12:00:00Z", "2025-05-06T13:00:00Z")
        rows, _ = score([finding], truth)
        self.assertEqual(rows["session_hijack"]["recall"], 1.0)
        self.assertIsNone(rows["session_hijack"]["recall_expected_kind"])

    def test_empty_truth_makes_every_finding_false(self):
        finding = make_finding("k1", "2025-05-06T10:00:00Z", "2025-05-06T11:00:00Z")
        rows, totals = score([finding], [])
        self.assertEqual(totals["false"], 1)
        self.assertIsNone(totals["recall"])
        self.assertEqual(rows["volume_spike"]["precision"], 0.0)

    def test_truth_line_without_consumer_is_rejected(self):
        line = {"scenario": "volume_spike", "consumers": [], "start": "2025-05-06T10:00:00Z"}
        with self.assertRaises(BenchError):
            scenario_from_line(0, dict(line, end="2025-05-06T12:00:00Z"))

    def test_truth_line_without_start_is_rejected(self):
        with self.assertRaises(BenchError):
            scenario_from_line(
                0, {"scenario": "volume_spike", "consumers": ["k1"], "end": "2025-05-06T12:00:00Z"}
            )


class InputTest(unittest.TestCase):
    def test_attack_period_of_defaults(self):
        start, end = attack_period("2025-04-07", 5)
        self.assertEqual(start, at("2025-05-05T00:00:00Z"))
        self.assertEqual(end, at("2025-05-12T00:00:00Z"))

    def test_attack_period_of_one_week(self):
        start, end = attack_period("2025-04-07", 1)
        self.assertEqual(start, at("2025-04-07T00:00:00Z"))
        self.assertEqual(end, at("2025-04-14T00:00:00Z"))

    def test_query_placeholders(self):
        start, end = attack_period("2025-04-07", 5)
        self.assertEqual(
            build_query(DEFAULT_SQL, start, end, None),
            "SELECT * FROM anomalies(TIMESTAMP '2025-05-05T00:00:00Z', "
            "TIMESTAMP '2025-05-12T00:00:00Z')",
        )
        self.assertEqual(
            build_query(DEFAULT_SQL, start, end, "min_score=3,kinds=it's"),
            "SELECT * FROM anomalies(TIMESTAMP '2025-05-05T00:00:00Z', "
            "TIMESTAMP '2025-05-12T00:00:00Z', 'min_score=3,kinds=it''s')",
        )
        self.assertEqual(
            build_query("SELECT '/v1/orders/{id}' WHERE t >= '{start}'", start, end, None),
            "SELECT '/v1/orders/{id}' WHERE t >= '2025-05-05T00:00:00Z'",
        )

    def test_options_need_placeholder(self):
        start, end = attack_period("2025-04-07", 5)
        with self.assertRaises(BenchError):
            build_query("SELECT 1", start, end, "a=b")

    def test_runs_parse(self):
        self.assertEqual(
            parse_runs("1:30:1,4:10:0.5"), [RunSpec(1, 30, "1"), RunSpec(4, 10, "0.5")]
        )
        for bad in ("1:30", "1:0:1", "1:30:0", "x:30:1", "1:151:1", "1:30:101"):
            with self.assertRaises(argparse.ArgumentTypeError, msg=bad):
                parse_runs(bad)

    def test_event_count_from_simulate(self):
        output = (
            "sent 29 batches to http://127.0.0.1:1: 245254 accepted, 0 rejected\n"
            "simulated 245254 events in 245254 records, 117827025 bytes of aws_apigateway, to x\n"
        )
        self.assertEqual(simulated_event_count(output), 245254)
        with self.assertRaises(BenchError):
            simulated_event_count("sent 1 batches\n")

    def test_finding_row_needs_columns(self):
        with self.assertRaises(BenchError):
            finding_from_row(1, {"bucket_start": "2025-05-06T10:00:00Z", "consumer": "k1"})
        finding = finding_from_row(
            1,
            {
                "bucket_start": "2025-05-06T10:00:00.000000Z",
                "bucket_end": "2025-05-06T11:00:00.000000Z",
                "consumer": "k1",
                "endpoint": None,
                "kind": "volume_spike",
            },
        )
        self.assertEqual(finding.bucket_end - finding.bucket_start, timedelta(hours=1))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
