//! Generated access logs for the parsing benchmark, one writer per format.
//!
//! Every format's records describe the same kind of traffic, which a
//! [`Traffic`] draws from a fixed-seed generator. Client addresses come from
//! a pool of 2,000, every tenth on IPv6. Paths come from a dozen API and
//! static routes with numeric ids, UUIDs and hashes, and about a third of the
//! requests have a query string. There are eight user agents from curl to
//! long browser strings, statuses that are mostly 2xx with some 3xx, 4xx and
//! 5xx, and response sizes from a few bytes to a megabyte. Times increase by
//! a few milliseconds per request. Each writer then prints a request in its
//! format's layout, so a format's figure reflects its layout, not its data.

use std::fmt::Write;

use apitrail_ingest::Format;
use chrono::{DateTime, Utc};
use serde_json::json;

/// A generated input: whole records and how many events they must yield.
pub(crate) struct Input {
    pub(crate) data: Vec<u8>,
    pub(crate) records: u64,
    pub(crate) events: u64,
}

/// Writes at least `min_bytes` of `format` records.
pub(crate) fn generate(format: Format, min_bytes: usize, seed: u64) -> Input {
    let mut traffic = Traffic::new(seed);
    let mut out = String::with_capacity(min_bytes + 64 * 1024);
    let mut records = 0;
    let mut events = 0;
    out.push_str(header(format));
    records += header_records(format);
    while out.len() < min_bytes {
        events += write_record(format, &mut traffic, &mut out);
        records += 1;
        out.push('\n');
    }
    Input {
        data: out.into_bytes(),
        records,
        events,
    }
}

/// Header lines that a format needs before its records.
fn header(format: Format) -> &'static str {
    match format {
        Format::AwsCloudFront => CLOUDFRONT_HEADER,
        Format::AwsCloudFrontRealtime => CLOUDFRONT_REALTIME_HEADER,
        Format::ZeekHttp => ZEEK_HEADER,
        _ => "",
    }
}

/// Number of header records, which parsers skip.
fn header_records(format: Format) -> u64 {
    header(format).lines().count() as u64
}

const CLOUDFRONT_HEADER: &str = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";

const CLOUDFRONT_REALTIME_HEADER: &str = "#Fields: timestamp c-ip time-to-first-byte sc-status sc-bytes cs-method cs-protocol cs-host cs-uri-stem cs-bytes x-edge-location x-edge-request-id x-host-header time-taken cs-protocol-version c-ip-version cs-user-agent cs-referer cs-uri-query x-edge-response-result-type x-forwarded-for ssl-protocol ssl-cipher x-edge-result-type c-port\n";

const ZEEK_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n#open\t2024-05-01-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\tversion\tuser_agent\torigin\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\tinfo_code\tinfo_msg\ttags\tusername\tpassword\tproxied\torig_fuids\torig_filenames\torig_mime_types\tresp_fuids\tresp_filenames\tresp_mime_types\n#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tcount\tcount\tcount\tstring\tcount\tstring\tset[enum]\tstring\tstring\tset[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\n";

/// Writes one record of `format` without its newline; returns its event count.
fn write_record(format: Format, traffic: &mut Traffic, out: &mut String) -> u64 {
    match format {
        Format::Har => return write_har(traffic, out, 10),
        Format::Otlp => return write_otlp(traffic, out, 10),
        _ => {}
    }
    let request = traffic.next_request();
    let r = &request;
    match format {
        Format::AwsAlb => write_alb(r, out),
        Format::AwsElb => write_elb(r, out),
        Format::AwsApiGateway => write_apigateway(r, out),
        Format::AwsCloudFront => write_cloudfront(r, out),
        Format::AwsCloudFrontRealtime => write_cloudfront_realtime(r, out),
        Format::Clf => write_nginx_combined(r, out),
        Format::NginxJson => write_nginx_json(r, out),
        Format::IngressNginx => write_ingress_nginx(r, out),
        Format::Envoy => write_envoy(r, out),
        Format::EnvoyJson => write_envoy_json(r, out),
        Format::Kong => write_kong(r, out),
        Format::Caddy => write_caddy(r, out),
        Format::Traefik => write_traefik(r, out),
        Format::Haproxy => write_haproxy(r, out),
        Format::Cloudflare => write_cloudflare(r, out),
        Format::AkamaiDs2 => write_akamai(r, out),
        Format::GcpLb => write_gcp_lb(r, out),
        Format::AzureAppGw => write_azure_appgw(r, out),
        Format::AzureFrontDoor => write_azure_frontdoor(r, out),
        Format::ZeekHttp => write_zeek(r, out),
        Format::SuricataEve => write_suricata(r, out),
        Format::Json => write_generic_json(r, out),
        Format::Har | Format::Otlp => unreachable!("handled above"),
    }
    1
}

/// A small, fast pseudo-random generator (SplitMix64), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Draws a number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut text = String::with_capacity(digits);
        while text.len() < digits {
            write!(text, "{:016x}", self.next_u64()).expect("writing to a String");
        }
        text.truncate(digits);
        text
    }

    fn uuid(&mut self) -> String {
        let hex = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..]
        )
    }
}

const HOSTS: [&str; 4] = [
    "api.example.com",
    "shop.example.net",
    "partners.example.org",
    "static.example.com",
];

const METHODS: [(&str, u64); 5] = [
    ("GET", 700),
    ("POST", 180),
    ("PUT", 60),
    ("DELETE", 40),
    ("PATCH", 20),
];

const USER_AGENTS: [&str; 8] = [
    "curl/8.4.0",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
];

const REFERERS: [&str; 3] = [
    "https://app.example.com/dashboard",
    "https://www.example.net/checkout?step=2",
    "https://partners.example.org/",
];

const WORDS: [&str; 8] = [
    "shoes", "laptop", "coffee", "garden", "books", "phone", "desk", "lamp",
];

/// One generated request, in the units and forms that the writers need.
struct Request {
    /// End of the request, microseconds since the epoch.
    end_micros: i64,
    duration_micros: i64,
    method: &'static str,
    scheme: &'static str,
    host: &'static str,
    path: String,
    query: Option<String>,
    status: u16,
    request_bytes: u64,
    response_bytes: u64,
    client_ip: String,
    client_port: u16,
    user_agent: &'static str,
    referer: Option<&'static str>,
    request_id: String,
    trace_id: String,
    upstream: String,
    consumer: Option<String>,
}

impl Request {
    fn start_micros(&self) -> i64 {
        self.end_micros - self.duration_micros
    }

    fn end(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.end_micros).expect("generated times are in range")
    }

    fn start(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.start_micros()).expect("generated times are in range")
    }

    /// Path and query as in a request line.
    fn target(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.target())
    }

    fn seconds(micros: i64) -> String {
        format!("{}.{:03}", micros / 1_000_000, (micros % 1_000_000) / 1000)
    }

    fn duration_seconds(&self) -> String {
        Request::seconds(self.duration_micros)
    }

    fn duration_ms(&self) -> i64 {
        self.duration_micros / 1000
    }

    fn clf_time(&self) -> String {
        self.end().format("%d/%b/%Y:%H:%M:%S +0000").to_string()
    }

    fn iso_time(&self, micros: i64) -> String {
        DateTime::from_timestamp_micros(micros)
            .expect("generated times are in range")
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    }

    fn iso_millis(&self, micros: i64) -> String {
        DateTime::from_timestamp_micros(micros)
            .expect("generated times are in range")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    fn epoch_seconds(&self) -> String {
        format!(
            "{}.{:06}",
            self.end_micros / 1_000_000,
            self.end_micros % 1_000_000
        )
    }
}

/// Draws requests for the writers.
struct Traffic {
    rng: Rng,
    clients: Vec<String>,
    now_micros: i64,
}

impl Traffic {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let clients = (0..2000)
            .map(|index| {
                if index % 10 == 9 {
                    format!("2001:db8:{:x}::{:x}", rng.below(4096), rng.below(65536))
                } else {
                    format!(
                        "{}.{}.{}.{}",
                        [198, 203, 192, 100][index % 4],
                        rng.below(256),
                        rng.below(256),
                        1 + rng.below(254)
                    )
                }
            })
            .collect();
        Traffic {
            rng,
            clients,
            // 2024-03-01T00:00:00Z
            now_micros: 1_709_251_200_000_000,
        }
    }

    fn next_request(&mut self) -> Request {
        let rng = &mut self.rng;
        self.now_micros += 1 + rng.below(4000) as i64;
        let method = pick_weighted(rng, &METHODS);
        let (path, static_file) = self::path(rng);
        let query = match rng.below(100) {
            0..=14 => Some(format!(
                "page={}&limit={}",
                rng.below(50),
                10 * (1 + rng.below(10))
            )),
            15..=24 => Some(format!("q={}&sort=price", rng.pick(&WORDS))),
            25..=29 => Some(format!("expand=items&v={}", rng.below(9))),
            30 => Some(format!("api_key={}", rng.hex(24))),
            _ => None,
        };
        let status = match rng.below(1000) {
            0..=849 if method == "POST" => 201,
            0..=849 => 200,
            850..=899 => 304,
            900..=969 => *rng.pick(&[400, 401, 403, 404, 404, 429]),
            _ => *rng.pick(&[500, 502, 503]),
        };
        let response_bytes = if static_file {
            1000 + rng.below(1_000_000)
        } else {
            20 + rng.below(8000)
        };
        let duration_micros = 200 + rng.below(150_000) as i64;
        Request {
            end_micros: self.now_micros,
            duration_micros,
            method,
            scheme: if rng.chance(900) { "https" } else { "http" },
            host: rng.pick_str(&HOSTS),
            path,
            query,
            status,
            request_bytes: 150 + rng.below(2000),
            response_bytes,
            client_ip: rng.pick(&self.clients).clone(),
            client_port: 1024 + rng.below(64000) as u16,
            user_agent: rng.pick_str(&USER_AGENTS),
            referer: rng.chance(300).then(|| *rng.pick(&REFERERS)),
            request_id: rng.hex(32),
            trace_id: rng.hex(32),
            upstream: format!("10.0.{}.{}:8080", rng.below(4), 2 + rng.below(60)),
            consumer: rng
                .chance(400)
                .then(|| format!("partner-{}", rng.below(50))),
        }
    }
}

fn pick_weighted(rng: &mut Rng, items: &[(&'static str, u64)]) -> &'static str {
    let total: u64 = items.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.below(total);
    for &(item, weight) in items {
        if roll < weight {
            return item;
        }
        roll -= weight;
    }
    items[0].0
}

/// Draws a request path, and returns it with whether it names a static file.
fn path(rng: &mut Rng) -> (String, bool) {
    let path = match rng.below(12) {
        0 => format!("/v1/orders/{}", rng.below(10_000_000)),
        1 => format!("/v1/orders/{}/items", rng.below(10_000_000)),
        2 => format!("/v2/customers/{}/invoices", rng.uuid()),
        3 => format!("/v2/customers/{}", rng.uuid()),
        4 => "/v1/products".to_string(),
        5 => format!("/v1/products/{}", rng.below(50_000)),
        6 => format!("/v1/users/{}/sessions", rng.below(1_000_000)),
        7 => "/v1/search".to_string(),
        8 => format!("/static/js/app.{}.js", rng.hex(12)),
        9 => format!("/static/img/{}-{}.png", rng.pick(&WORDS), rng.below(300)),
        10 => "/health".to_string(),
        _ => format!("/api/v3/carts/{}/checkout", rng.hex(16)),
    };
    let static_file = path.starts_with("/static/");
    (path, static_file)
}

fn write_alb(r: &Request, out: &mut String) {
    let (request_ms, target_ms, response_ms) = split_duration(r.duration_micros);
    let port = if r.scheme == "https" { 443 } else { 80 };
    let client = bracket_v6(&r.client_ip);
    write!(
        out,
        "{} {} app/api-lb/50dc6c495c0c9188 {client}:{} {} {request_ms} {target_ms} {response_ms} {} {} {} {} \
         \"{} {}://{}:{port}{} HTTP/1.1\" \"{}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 \
         arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067 \
         \"Root=1-{}-{}\" \"{}\" \"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012\" \
         0 {} \"forward\" \"-\" \"-\" \"{}\" \"{}\" \"-\" \"-\" TID_{}",
        if r.scheme == "https" { "https" } else { "http" },
        r.iso_time(r.end_micros),
        r.client_port,
        r.upstream,
        r.status,
        r.status,
        r.request_bytes,
        r.response_bytes,
        r.method,
        r.scheme,
        r.host,
        r.target(),
        r.user_agent,
        &r.trace_id[..8],
        &r.trace_id[8..32],
        r.host,
        r.iso_time(r.start_micros()),
        r.upstream,
        r.status,
        &r.request_id[..16],
    )
    .expect("writing to a String");
}

/// Splits a duration into three processing times in seconds, as ALB and ELB log them.
fn split_duration(micros: i64) -> (String, String, String) {
    let first = micros / 10;
    let last = micros / 20;
    let middle = micros - first - last;
    let seconds = |micros: i64| format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    (seconds(first), seconds(middle), seconds(last))
}

fn bracket_v6(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn write_elb(r: &Request, out: &mut String) {
    let (request_ms, target_ms, response_ms) = split_duration(r.duration_micros);
    let port = if r.scheme == "https" { 443 } else { 80 };
    write!(
        out,
        "{} api-lb {}:{} {} {request_ms} {target_ms} {response_ms} {} {} {} {} \"{} {}://{}:{port}{} HTTP/1.1\" \"{}\" {}",
        r.iso_time(r.end_micros),
        bracket_v6(&r.client_ip),
        r.client_port,
        r.upstream,
        r.status,
        r.status,
        r.request_bytes,
        r.response_bytes,
        r.method,
        r.scheme,
        r.host,
        r.target(),
        r.user_agent,
        if r.scheme == "https" {
            "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2"
        } else {
            "- -"
        },
    )
    .expect("writing to a String");
}

fn write_nginx_combined(r: &Request, out: &mut String) {
    write!(
        out,
        "{} - {} [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\"",
        r.client_ip,
        r.consumer.as_deref().unwrap_or("-"),
        r.clf_time(),
        r.method,
        r.target(),
        r.status,
        r.response_bytes,
        r.referer.unwrap_or("-"),
        r.user_agent,
    )
    .expect("writing to a String");
}

fn write_ingress_nginx(r: &Request, out: &mut String) {
    write!(
        out,
        "{} - - [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\" {} {} [default-api-80] [] {} {} {} {} {}",
        r.client_ip,
        r.clf_time(),
        r.method,
        r.target(),
        r.status,
        r.response_bytes,
        r.referer.unwrap_or("-"),
        r.user_agent,
        r.request_bytes,
        r.duration_seconds(),
        r.upstream,
        r.response_bytes,
        Request::seconds(r.duration_micros * 9 / 10),
        r.status,
        r.request_id,
    )
    .expect("writing to a String");
}

fn write_envoy(r: &Request, out: &mut String) {
    write!(
        out,
        "[{}] \"{} {} HTTP/1.1\" {} - via_upstream - \"-\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\"",
        r.iso_millis(r.start_micros()),
        r.method,
        r.target(),
        r.status,
        r.request_bytes,
        r.response_bytes,
        r.duration_ms(),
        r.duration_ms().saturating_sub(1),
        r.client_ip,
        r.user_agent,
        r.uuid_like(),
        r.host,
        r.upstream,
    )
    .expect("writing to a String");
}

impl Request {
    fn uuid_like(&self) -> String {
        let id = &self.request_id;
        format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        )
    }
}

fn write_traefik(r: &Request, out: &mut String) {
    write!(
        out,
        "{} - - [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\" {} \"api@docker\" \"http://{}\" {}ms",
        r.client_ip,
        r.clf_time(),
        r.method,
        r.target(),
        r.status,
        r.response_bytes,
        r.referer.unwrap_or("-"),
        r.user_agent,
        r.request_id.len() as u64 + r.response_bytes % 100_000,
        r.upstream,
        r.duration_ms(),
    )
    .expect("writing to a String");
}

fn write_haproxy(r: &Request, out: &mut String) {
    let start = r.start();
    let total = r.duration_ms();
    write!(
        out,
        "<134>{} lb-1 haproxy[2211]: {}:{} [{}] api-in~ api/app-{} 1/0/1/{}/{} {} {} - - ---- 12/10/4/2/0 0/0 {{{}}} \"{} {} HTTP/1.1\"",
        start.format("%b %e %H:%M:%S"),
        r.client_ip,
        r.client_port,
        start.format("%d/%b/%Y:%H:%M:%S%.3f"),
        r.response_bytes % 8,
        (total - 2).max(0),
        total,
        r.status,
        r.response_bytes,
        r.host,
        r.method,
        r.target(),
    )
    .expect("writing to a String");
}

fn write_cloudfront(r: &Request, out: &mut String) {
    let end = r.end();
    let query = r.query.as_deref().unwrap_or("-");
    write!(
        out,
        "{}\t{}\tIAD89-C1\t{}\t{}\t{}\td111111abcdef8.cloudfront.net\t{}\t{}\t{}\t{}\t{}\t-\t{}\t{}\t{}\t{}\t{}\t{}\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t{}\tHTTP/2.0\t-\t-\t{}\t{}\t{}\tapplication/json\t{}\t-\t-",
        end.format("%Y-%m-%d"),
        end.format("%H:%M:%S"),
        r.response_bytes,
        r.client_ip,
        r.method,
        r.path,
        r.status,
        r.referer.unwrap_or("-"),
        r.user_agent.replace(' ', "%20"),
        query,
        if r.status == 304 { "Hit" } else { "Miss" },
        &r.request_id,
        r.host,
        r.scheme,
        r.request_bytes,
        r.duration_seconds(),
        if r.status == 304 { "Hit" } else { "Miss" },
        r.client_port,
        Request::seconds(r.duration_micros / 2),
        if r.status == 304 { "Hit" } else { "Miss" },
        r.response_bytes,
    )
    .expect("writing to a String");
}

fn write_cloudfront_realtime(r: &Request, out: &mut String) {
    write!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\tIAD89-C1\t{}\td111111abcdef8.cloudfront.net\t{}\tHTTP/2.0\t{}\t{}\t{}\t{}\tMiss\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\t{}",
        Request::seconds(r.end_micros),
        r.client_ip,
        Request::seconds(r.duration_micros / 2),
        r.status,
        r.response_bytes,
        r.method,
        r.scheme,
        r.host,
        r.path,
        r.request_bytes,
        r.request_id,
        r.duration_seconds(),
        if r.client_ip.contains(':') {
            "IPv6"
        } else {
            "IPv4"
        },
        r.user_agent.replace(' ', "%20"),
        r.referer.unwrap_or("-"),
        r.query.as_deref().unwrap_or("-"),
        r.client_port,
    )
    .expect("writing to a String");
}

fn write_zeek(r: &Request, out: &mut String) {
    write!(
        out,
        "{}\tC{}\t{}\t{}\t10.0.0.80\t80\t1\t{}\t{}\t{}\t{}\t1.1\t{}\t-\t{}\t{}\t{}\t{}\t-\t-\t(empty)\t-\t-\t-\t-\t-\t-\tF{}\t-\tapplication/json",
        r.epoch_seconds(),
        &r.request_id[..17],
        r.client_ip,
        r.client_port,
        r.method,
        r.host,
        r.target(),
        r.referer.unwrap_or("-"),
        r.user_agent,
        r.request_bytes,
        r.response_bytes,
        r.status,
        status_text(r.status),
        &r.trace_id[..17],
    )
    .expect("writing to a String");
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    }
}

fn push_json(out: &mut String, value: &serde_json::Value) {
    out.push_str(&value.to_string());
}

fn write_apigateway(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "requestId": r.uuid_like(),
            "ip": r.client_ip,
            "caller": "-",
            "user": "-",
            "requestTime": r.clf_time(),
            "httpMethod": r.method,
            "resourcePath": r.path,
            "status": r.status.to_string(),
            "protocol": "HTTP/1.1",
            "responseLength": r.response_bytes.to_string(),
            "integrationLatency": (r.duration_ms() * 9 / 10).to_string(),
            "responseLatency": r.duration_ms().to_string(),
            "domainName": r.host,
            "userAgent": r.user_agent,
        }),
    );
}

fn write_nginx_json(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "time_iso8601": r.end().format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            "remote_addr": r.client_ip,
            "remote_user": r.consumer.as_deref().unwrap_or("-"),
            "request": format!("{} {} HTTP/1.1", r.method, r.target()),
            "status": r.status.to_string(),
            "body_bytes_sent": r.response_bytes.to_string(),
            "request_length": r.request_bytes.to_string(),
            "request_time": r.duration_seconds(),
            "http_referer": r.referer.unwrap_or("-"),
            "http_user_agent": r.user_agent,
            "http_host": r.host,
            "upstream_addr": r.upstream,
            "upstream_status": r.status.to_string(),
            "upstream_response_time": Request::seconds(r.duration_micros * 9 / 10),
            "request_id": r.request_id,
        }),
    );
}

fn write_envoy_json(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "start_time": r.iso_time(r.start_micros()),
            "method": r.method,
            "path": r.target(),
            "protocol": "HTTP/1.1",
            "response_code": r.status,
            "response_flags": "-",
            "bytes_received": r.request_bytes,
            "bytes_sent": r.response_bytes,
            "duration": r.duration_ms(),
            "upstream_service_time": r.duration_ms().saturating_sub(1).to_string(),
            "x_forwarded_for": r.client_ip,
            "user_agent": r.user_agent,
            "request_id": r.uuid_like(),
            "authority": r.host,
            "upstream_host": r.upstream,
            "downstream_remote_address": format!("{}:{}", bracket_v6(&r.client_ip), r.client_port),
        }),
    );
}

fn write_kong(r: &Request, out: &mut String) {
    let start_ms = r.start_micros() / 1000;
    push_json(
        out,
        &json!({
            "request": {
                "method": r.method,
                "uri": r.target(),
                "url": r.url(),
                "size": r.request_bytes,
                "headers": {"host": r.host, "user-agent": r.user_agent, "accept": "*/*"},
            },
            "upstream_uri": r.target(),
            "response": {"status": r.status, "size": r.response_bytes, "headers": {"content-type": "application/json"}},
            "latencies": {"request": r.duration_ms(), "kong": 1, "proxy": r.duration_ms().saturating_sub(1)},
            "tries": [{"ip": "10.0.0.2", "port": 8080, "balancer_latency": 0}],
            "client_ip": r.client_ip,
            "service": {"name": "orders", "host": "orders.internal", "port": 8080},
            "route": {"name": "orders-route", "paths": ["/v1"]},
            "consumer": r.consumer.as_ref().map(|id| json!({"id": id, "username": id})),
            "started_at": start_ms,
        }),
    );
}

fn write_caddy(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "level": "info",
            "ts": r.end_micros as f64 / 1e6,
            "logger": "http.log.access.log0",
            "msg": "handled request",
            "request": {
                "remote_ip": r.client_ip,
                "remote_port": r.client_port.to_string(),
                "client_ip": r.client_ip,
                "proto": "HTTP/2.0",
                "method": r.method,
                "host": r.host,
                "uri": r.target(),
                "headers": {"User-Agent": [r.user_agent], "Accept": ["*/*"]},
                "tls": {"resumed": false, "version": 772, "cipher_suite": 4865, "proto": "h2", "server_name": r.host},
            },
            "bytes_read": r.request_bytes,
            "user_id": "",
            "duration": r.duration_micros as f64 / 1e6,
            "size": r.response_bytes,
            "status": r.status,
            "resp_headers": {"Content-Type": ["application/json"], "Server": ["Caddy"]},
        }),
    );
}

fn write_cloudflare(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "ClientIP": r.client_ip,
            "ClientRequestHost": r.host,
            "ClientRequestMethod": r.method,
            "ClientRequestURI": r.target(),
            "ClientRequestProtocol": "HTTP/2",
            "ClientRequestUserAgent": r.user_agent,
            "ClientRequestBytes": r.request_bytes,
            "ClientSrcPort": r.client_port,
            "EdgeStartTimestamp": r.start_micros() * 1000,
            "EdgeEndTimestamp": r.end_micros * 1000,
            "EdgeResponseStatus": r.status,
            "EdgeResponseBytes": r.response_bytes,
            "OriginResponseStatus": r.status,
            "CacheCacheStatus": "dynamic",
            "RayID": &r.request_id[..16],
            "ZoneName": "example.com",
        }),
    );
}

fn write_akamai(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "UA": r.user_agent.replace(' ', "%20").replace('/', "%2F"),
            "bytes": r.response_bytes.to_string(),
            "cacheStatus": "1",
            "cliIP": r.client_ip,
            "cookie": "^",
            "errorCode": "-",
            "proto": "HTTP/1.1",
            "queryStr": r.query.as_deref().unwrap_or("-"),
            "referer": r.referer.unwrap_or("-"),
            "reqEndTimeMSec": "3",
            "reqHost": r.host,
            "reqId": &r.request_id[..12],
            "reqMethod": r.method,
            "reqPath": r.path.trim_start_matches('/'),
            "reqTimeSec": Request::seconds(r.start_micros()),
            "statusCode": r.status.to_string(),
            "totalBytes": (r.response_bytes + 400).to_string(),
            "transferTimeMSec": r.duration_ms().to_string(),
            "turnAroundTimeMSec": (r.duration_ms() / 2).to_string(),
            "xForwardedFor": "-",
        }),
    );
}

fn write_gcp_lb(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "insertId": &r.request_id[..10],
            "jsonPayload": {
                "@type": "type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry",
                "statusDetails": "response_sent_by_backend",
            },
            "httpRequest": {
                "requestMethod": r.method,
                "requestUrl": r.url(),
                "requestSize": r.request_bytes.to_string(),
                "status": r.status,
                "responseSize": r.response_bytes.to_string(),
                "userAgent": r.user_agent,
                "remoteIp": r.client_ip,
                "serverIp": "10.5.3.1",
                "latency": format!("{}s", r.duration_micros as f64 / 1e6),
            },
            "resource": {"type": "http_load_balancer", "labels": {"url_map_name": "api-map", "project_id": "p1"}},
            "timestamp": r.iso_time(r.start_micros()),
            "severity": "INFO",
            "logName": "projects/p1/logs/requests",
            "trace": format!("projects/p1/traces/{}", r.trace_id),
        }),
    );
}

fn write_azure_appgw(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "timeStamp": r.end().format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/GW",
            "operationName": "ApplicationGatewayAccess",
            "category": "ApplicationGatewayAccessLog",
            "properties": {
                "instanceId": "appgw_2",
                "clientIP": r.client_ip,
                "clientPort": r.client_port,
                "httpMethod": r.method,
                "requestUri": r.path,
                "requestQuery": r.query.as_deref().unwrap_or(""),
                "userAgent": r.user_agent,
                "httpStatus": r.status,
                "httpVersion": "HTTP/1.1",
                "receivedBytes": r.request_bytes,
                "sentBytes": r.response_bytes,
                "timeTaken": r.duration_micros as f64 / 1e6,
                "transactionId": r.request_id,
                "sslEnabled": "on",
                "serverRouted": r.upstream,
                "serverStatus": r.status.to_string(),
                "originalHost": r.host,
                "host": r.host,
            },
        }),
    );
}

fn write_azure_frontdoor(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "time": r.iso_time(r.end_micros),
            "category": "FrontDoorAccessLog",
            "operationName": "Microsoft.Cdn/Profiles/AccessLog/Write",
            "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.CDN/PROFILES/P",
            "properties": {
                "trackingReference": &r.request_id[..20],
                "httpMethod": r.method,
                "httpVersion": "2.0.0.0",
                "requestUri": format!("{}://{}:443{}", r.scheme, r.host, r.target()),
                "requestBytes": r.request_bytes.to_string(),
                "responseBytes": r.response_bytes.to_string(),
                "userAgent": r.user_agent,
                "clientIp": r.client_ip,
                "clientPort": r.client_port.to_string(),
                "socketIp": r.client_ip,
                "timeTaken": r.duration_seconds(),
                "httpStatusCode": r.status.to_string(),
                "pop": "SIN",
                "cacheStatus": "CONFIG_NOCACHE",
            },
        }),
    );
}

fn write_suricata(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "timestamp": r.start().format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(),
            "flow_id": r.end_micros,
            "in_iface": "eth0",
            "event_type": "http",
            "src_ip": r.client_ip,
            "src_port": r.client_port,
            "dest_ip": "10.0.0.80",
            "dest_port": 8080,
            "proto": "TCP",
            "tx_id": 0,
            "http": {
                "hostname": r.host,
                "http_port": 8080,
                "url": r.target(),
                "http_user_agent": r.user_agent,
                "http_content_type": "application/json",
                "http_method": r.method,
                "protocol": "HTTP/1.1",
                "status": r.status,
                "length": r.response_bytes,
            },
        }),
    );
}

/// Writes a generic `json` record of the shape that [`json_mapping`](super::json_mapping) reads.
fn write_generic_json(r: &Request, out: &mut String) {
    push_json(
        out,
        &json!({
            "id": r.request_id,
            "content": {
                "timestamp": r.iso_time(r.end_micros),
                "service": "checkout-api",
                "attributes": {
                    "http": {
                        "method": r.method,
                        "status_code": r.status,
                        "url": r.url(),
                        "useragent": r.user_agent,
                    },
                    "network": {"client": {"ip": r.client_ip, "port": r.client_port}, "bytes_written": r.response_bytes},
                    "duration": r.duration_micros * 1000,
                    "level": "info",
                },
            },
        }),
    );
}

/// Writes one HAR document with `entries` requests on one line.
fn write_har(traffic: &mut Traffic, out: &mut String, entries: u64) -> u64 {
    let list: Vec<serde_json::Value> = (0..entries)
        .map(|_| {
            let r = traffic.next_request();
            json!({
                "startedDateTime": r.iso_time(r.start_micros()),
                "time": r.duration_micros as f64 / 1000.0,
                "request": {
                    "method": r.method,
                    "url": r.url(),
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "User-Agent", "value": r.user_agent}, {"name": "Accept", "value": "application/json"}],
                    "queryString": [],
                    "headersSize": 310,
                    "bodySize": r.request_bytes,
                },
                "response": {
                    "status": r.status,
                    "statusText": status_text(r.status),
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Content-Type", "value": "application/json"}],
                    "content": {"size": r.response_bytes, "mimeType": "application/json"},
                    "redirectURL": "",
                    "headersSize": 98,
                    "bodySize": r.response_bytes,
                },
                "serverIPAddress": "10.0.0.80",
                "timings": {"blocked": 0.5, "dns": -1, "connect": -1, "send": 0.1, "wait": r.duration_micros as f64 / 1000.0 - 1.0, "receive": 0.4},
            })
        })
        .collect();
    push_json(
        out,
        &json!({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "entries": list}}),
    );
    entries
}

/// Writes one OTLP export with `spans` HTTP server spans on one line.
fn write_otlp(traffic: &mut Traffic, out: &mut String, spans: u64) -> u64 {
    let string = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
    let list: Vec<serde_json::Value> = (0..spans)
        .map(|_| {
            let r = traffic.next_request();
            let mut attributes = vec![
                string("http.request.method", r.method),
                string("url.path", &r.path),
                string("url.scheme", r.scheme),
                string("server.address", r.host),
                string("client.address", &r.client_ip),
                string("user_agent.original", r.user_agent),
                json!({"key": "http.response.status_code", "value": {"intValue": r.status.to_string()}}),
            ];
            if let Some(query) = &r.query {
                attributes.push(string("url.query", query));
            }
            json!({
                "traceId": r.trace_id,
                "spanId": &r.request_id[..16],
                "name": format!("{} {}", r.method, r.path),
                "kind": 2,
                "startTimeUnixNano": (r.start_micros() * 1000).to_string(),
                "endTimeUnixNano": (r.end_micros * 1000).to_string(),
                "attributes": attributes,
                "status": {},
            })
        })
        .collect();
    push_json(
        out,
        &json!({"resourceSpans": [{
            "resource": {"attributes": [string("service.name", "orders"), string("host.name", "pod-7")]},
            "scopeSpans": [{"scope": {"name": "io.opentelemetry.tomcat-10.0"}, "spans": list}],
        }]}),
    );
    spans
}
