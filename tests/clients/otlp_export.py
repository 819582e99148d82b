"""Sends spans and log records to apitrail's OTLP receivers with real OpenTelemetry clients.

Commands, each printing one JSON object on stdout:

  spans --transport grpc|http --endpoint URL --run ID [--token T] [--gzip] [--ca PEM]
      Creates spans with the OpenTelemetry Python SDK (a TracerProvider whose
      resource has service.name) and exports them once with the SDK's OTLP
      exporter. Two are SERVER spans with HTTP attributes: one with the stable
      semantic-convention names, one with the names of 1.20 and earlier. The
      CLIENT span, the INTERNAL span and the SERVER span without HTTP
      attributes must not become events. Prints the export result and the
      events the two server spans must become.

  logs --transport grpc|http --endpoint URL --run ID [--token T] [--gzip] [--ca PEM]
      Emits two log records through the SDK's logs API, one describing an
      HTTP request and one plain, and exports them once.

  grpc-call --endpoint URL --case good|bad-id|oversize|logs [--token T]
      Calls TraceService/Export (or LogsService/Export for `logs`) with grpcio
      and the generated OTLP stubs, and prints the gRPC status code and the
      response's partial_success, so a test can check codes the SDK exporter
      hides. `bad-id` sends one valid server span and one whose trace id has
      3 bytes, `oversize` one span with a 21 MiB attribute.

The SDK exporters' `export` returns SUCCESS or FAILURE; they retry only the
codes that OTLP calls retryable, so a FAILURE here comes back at once.
"""

import argparse
import json
import ssl
import sys
import time

import grpc
import requests
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

MILLISECOND = 1_000_000


def host_port(url):
    """Returns `host:port` of an `http://host:port` endpoint URL."""
    return url.split("://", 1)[-1].rstrip("/")


class PartialChainAdapter(requests.adapters.HTTPAdapter):
    """Trusts the tests' self-signed server certificate as its own trust anchor.

    The certificate is no CA, and OpenSSL accepts such a certificate as a
    trust anchor only with X509_V_FLAG_PARTIAL_CHAIN, which curl sets by
    default and Python's ssl module only from Python 3.13 on.
    """

    def __init__(self, ca_file):
        self.ca_file = ca_file
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        context = ssl.create_default_context(cafile=self.ca_file)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        kwargs["ssl_context"] = context
        super().init_poolmanager(*args, **kwargs)


def http_session(args):
    """Returns a requests session for an https endpoint, or None for the exporter's default."""
    if not args.ca:
        return None
    session = requests.Session()
    session.mount("https://", PartialChainAdapter(args.ca))
    return session


def span_exporter(args):
    headers = {"authorization": f"Bearer {args.token}"} if args.token else None
    if args.transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=args.endpoint,
            insecure=not args.endpoint.startswith("https://"),
            credentials=grpc_credentials(args),
            headers=headers,
            compression=grpc.Compression.Gzip if args.gzip else grpc.Compression.NoCompression,
            timeout=20,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=f"{args.endpoint}/v1/traces",
        certificate_file=args.ca,
        session=http_session(args),
        headers=headers,
        compression=Compression.Gzip if args.gzip else Compression.NoCompression,
        timeout=20,
    )


def log_exporter(args):
    headers = {"authorization": f"Bearer {args.token}"} if args.token else None
    if args.transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(
            endpoint=args.endpoint,
            insecure=not args.endpoint.startswith("https://"),
            credentials=grpc_credentials(args),
            headers=headers,
            compression=grpc.Compression.Gzip if args.gzip else grpc.Compression.NoCompression,
            timeout=20,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(
        endpoint=f"{args.endpoint}/v1/logs",
        certificate_file=args.ca,
        session=http_session(args),
        headers=headers,
        compression=Compression.Gzip if args.gzip else Compression.NoCompression,
        timeout=20,
    )


def grpc_credentials(args):
    if not args.endpoint.startswith("https://"):
        return None
    with open(args.ca, "rb") as pem:
        return grpc.ssl_channel_credentials(root_certificates=pem.read())


def export_spans(args):
    """Creates the test spans with the SDK, then exports them with the OTLP exporter."""
    collected = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"checkout-{args.run}"}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("apitrail-tests", "1.0")

    # Whole microseconds, a minute ago: the stored `time` has microsecond precision.
    base = (time.time_ns() - 60_000 * MILLISECOND) // 1000 * 1000
    stable = tracer.start_span(
        "GET /api/{run}/orders/{id}",
        kind=SpanKind.SERVER,
        start_time=base,
        attributes={
            "http.request.method": "GET",
            "url.scheme": "https",
            "url.path": f"/api/{args.run}/orders/42",
            "url.query": "expand=items",
            "server.address": "shop.example",
            "http.route": f"/api/{args.run}/orders/{{id}}",
            "http.response.status_code": 200,
            "network.protocol.version": "1.1",
            "network.peer.address": "192.0.2.10",
            "network.peer.port": 51234,
            "user_agent.original": "otel-tests/1.0",
            "http.request.header.x-forwarded-for": ["203.0.113.5"],
        },
    )
    with trace.use_span(stable, end_on_exit=False):
        client = tracer.start_span(
            "GET inventory",
            kind=SpanKind.CLIENT,
            start_time=base + 5 * MILLISECOND,
            attributes={
                "http.request.method": "GET",
                "url.full": f"http://inventory.internal/api/{args.run}/stock/42",
                "http.response.status_code": 200,
            },
        )
        client.end(end_time=base + 40 * MILLISECOND)
        internal = tracer.start_span(
            "render",
            kind=SpanKind.INTERNAL,
            start_time=base + 41 * MILLISECOND,
            attributes={"http.route": f"/api/{args.run}/orders/{{id}}"},
        )
        internal.end(end_time=base + 60 * MILLISECOND)
    stable.end(end_time=base + 150 * MILLISECOND)

    legacy = tracer.start_span(
        "POST",
        kind=SpanKind.SERVER,
        start_time=base + 1 * MILLISECOND,
        attributes={
            "http.method": "POST",
            "http.scheme": "http",
            "http.host": "legacy.example",
            "http.target": f"/api/{args.run}/payments?attempt=2",
            "http.status_code": 502,
            "http.flavor": "2.0",
            "net.peer.ip": "198.51.100.7",
            "http.user_agent": "legacy-agent/2.0",
        },
    )
    legacy.end(end_time=base + 26 * MILLISECOND)
    rpc = tracer.start_span(
        "grpc.health.v1.Health/Check",
        kind=SpanKind.SERVER,
        start_time=base + 2 * MILLISECOND,
        attributes={"rpc.system": "grpc", "rpc.service": "grpc.health.v1.Health"},
    )
    rpc.end(end_time=base + 3 * MILLISECOND)

    spans = collected.get_finished_spans()
    result = span_exporter(args).export(spans)
    service = f"checkout-{args.run}"
    expected = [
        {
            "method": "GET",
            "path": f"/api/{args.run}/orders/42",
            "query": "expand=items",
            "scheme": "https",
            "host": "shop.example",
            "status": 200,
            "http_version": "HTTP/1.1",
            "duration_ms": 150.0,
            "trace_id": format(stable.get_span_context().trace_id, "032x"),
            "span_id": format(stable.get_span_context().span_id, "016x"),
            "client_ip": "192.0.2.10",
            "client_port": 51234,
            "user_agent": "otel-tests/1.0",
            "forwarded_for": "203.0.113.5",
            "time_us": base // 1000,
            "sensor": service,
        },
        {
            "method": "POST",
            "path": f"/api/{args.run}/payments",
            "query": "attempt=2",
            "scheme": "http",
            "host": "legacy.example",
            "status": 502,
            "http_version": "HTTP/2.0",
            "duration_ms": 25.0,
            "trace_id": format(legacy.get_span_context().trace_id, "032x"),
            "span_id": format(legacy.get_span_context().span_id, "016x"),
            "client_ip": "198.51.100.7",
            "client_port": None,
            "user_agent": "legacy-agent/2.0",
            "forwarded_for": None,
            "time_us": (base + MILLISECOND) // 1000,
            "sensor": service,
        },
    ]
    print(json.dumps({"result": result.name, "spans": len(spans), "expected": expected}))


def export_logs(args):
    """Emits one HTTP access-log record and one plain record, then exports both."""
    collected = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": f"edge-{args.run}"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(collected))
    logger = provider.get_logger("apitrail-tests.access", "1.0")

    stamp = (time.time_ns() - 30_000 * MILLISECOND) // 1000 * 1000
    logger.emit(
        timestamp=stamp,
        severity_text="INFO",
        body=f"GET /v1/{args.run}/items 404",
        attributes={
            "http.request.method": "GET",
            "url.path": f"/v1/{args.run}/items",
            "http.response.status_code": 404,
            "client.address": "203.0.113.9",
            "user_agent.original": "curl/8.5.0",
        },
    )
    logger.emit(timestamp=stamp + MILLISECOND, severity_text="INFO", body="cache warmed")

    records = collected.get_finished_logs()
    result = log_exporter(args).export(records)
    expected = {
        "method": "GET",
        "path": f"/v1/{args.run}/items",
        "status": 404,
        "client_ip": "203.0.113.9",
        "user_agent": "curl/8.5.0",
        "time_us": stamp // 1000,
        "sensor": f"edge-{args.run}",
        "body": f"GET /v1/{args.run}/items 404",
    }
    print(json.dumps({"result": result.name, "records": len(records), "expected": expected}))


def proto_string(key, value):
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def proto_int(key, value):
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))


def grpc_call(args):
    """Calls Export with grpcio and prints the status code and partial_success."""
    now = time.time_ns()
    attributes = [
        proto_string("http.request.method", "GET"),
        proto_string("url.path", f"/raw/{args.case}"),
        proto_int("http.response.status_code", 200),
    ]
    resource = resource_pb2.Resource(attributes=[proto_string("service.name", "raw-grpc")])
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    channel = grpc.insecure_channel(host_port(args.endpoint))
    try:
        if args.case == "logs":
            record = logs_pb2.LogRecord(time_unix_nano=now, attributes=attributes)
            request = logs_service_pb2.ExportLogsServiceRequest(
                resource_logs=[
                    logs_pb2.ResourceLogs(
                        resource=resource,
                        scope_logs=[logs_pb2.ScopeLogs(log_records=[record])],
                    )
                ]
            )
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            response = stub.Export(request, metadata=metadata, timeout=20)
            partial = response.partial_success
            rejected = partial.rejected_log_records
        else:
            good = trace_pb2.Span(
                trace_id=bytes(range(1, 17)),
                span_id=bytes(range(1, 9)),
                kind=trace_pb2.Span.SPAN_KIND_SERVER,
                start_time_unix_nano=now,
                end_time_unix_nano=now + MILLISECOND,
                attributes=attributes,
            )
            spans = [good]
            if args.case == "oversize":
                good.attributes.append(proto_string("padding", "x" * (21 * 1024 * 1024)))
            if args.case == "bad-id":
                bad = trace_pb2.Span()
                bad.CopyFrom(good)
                bad.trace_id = b"\x01\x02\x03"
                spans.append(bad)
            request = trace_service_pb2.ExportTraceServiceRequest(
                resource_spans=[
                    trace_pb2.ResourceSpans(
                        resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)]
                    )
                ]
            )
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            response = stub.Export(request, metadata=metadata, timeout=20)
            partial = response.partial_success
            rejected = partial.rejected_spans
        print(
            json.dumps(
                {
                    "code": "OK",
                    "has_partial_success": response.HasField("partial_success"),
                    "rejected": rejected,
                    "error_message": partial.error_message,
                }
            )
        )
    except grpc.RpcError as error:
        print(json.dumps({"code": error.code().name, "details": error.details()}))
    finally:
        channel.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["spans", "logs", "grpc-call"])
    parser.add_argument("--transport", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--run", default="run")
    parser.add_argument("--token")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--ca", help="PEM file of the CA that signed the server certificate")
    parser.add_argument("--case", choices=["good", "bad-id", "oversize", "logs"], default="good")
    args = parser.parse_args()
    if args.command == "spans":
        export_spans(args)
    elif args.command == "logs":
        export_logs(args)
    else:
        grpc_call(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
