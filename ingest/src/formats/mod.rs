//! One parser per input format.
//!
//! A parser receives records one at a time, in input order: a record is a
//! line, or one JSON value that a pretty-printer spread over several lines
//! (see [`crate::framing`]). Most formats parse each record on its own.
//! Header-driven formats (CloudFront's `#Fields:`, Zeek's `#fields`) keep
//! the header's columns in the parser. So a parser is an object that lives
//! for the whole input rather than a function.

pub mod akamai_ds2;
pub mod alb;
pub mod apigateway;
pub mod azure;
pub mod caddy;
pub(crate) mod capture;
pub mod clf;
pub mod cloudflare;
pub mod cloudfront;
pub mod cloudfront_realtime;
pub mod elb;
pub mod envoy;
pub mod envoy_json;
pub mod gcp_lb;
pub mod generic_json;
pub mod haproxy;
pub mod har;
pub mod ingress_nginx;
pub(crate) mod json;
pub(crate) mod json_log;
pub mod kong;
pub mod nginx_json;
pub mod otlp;
pub mod suricata;
pub mod traefik;
pub mod zeek;

use crate::format::Format;
use crate::parse::{LineOutcome, ParseContext};

/// Turns the records of one input into events.
pub trait RecordParser: Send {
    /// Parses one non-blank record.
    fn parse(&mut self, record: &str, ctx: &ParseContext<'_>) -> LineOutcome;
}

/// A parser for a format whose records stand alone.
struct Stateless(fn(&str, &ParseContext<'_>) -> LineOutcome);

impl RecordParser for Stateless {
    fn parse(&mut self, record: &str, ctx: &ParseContext<'_>) -> LineOutcome {
        (self.0)(record, ctx)
    }
}

/// Creates the parser for one input of `format`.
pub fn new_parser(format: Format) -> Box<dyn RecordParser> {
    match format {
        Format::AwsAlb => Box::new(Stateless(alb::parse_line)),
        Format::AwsElb => Box::new(Stateless(elb::parse_line)),
        Format::AwsCloudFront => Box::new(cloudfront::CloudFrontParser::new()),
        Format::AwsCloudFrontRealtime => {
            Box::new(cloudfront_realtime::CloudFrontRealtimeParser::new())
        }
        Format::Clf => Box::new(Stateless(clf::parse_line)),
        Format::AwsApiGateway => Box::new(Stateless(apigateway::parse_line)),
        Format::Json => Box::new(Stateless(generic_json::parse_line)),
        Format::Har => Box::new(Stateless(har::parse_line)),
        Format::ZeekHttp => Box::new(zeek::ZeekHttpParser::default()),
        Format::SuricataEve => Box::new(Stateless(suricata::parse_line)),
        Format::Otlp => Box::new(Stateless(otlp::parse_line)),
        Format::Envoy => Box::new(Stateless(envoy::parse_line)),
        Format::Haproxy => Box::new(Stateless(haproxy::parse_line)),
        Format::IngressNginx => Box::new(Stateless(ingress_nginx::parse_line)),
        Format::Traefik => Box::new(Stateless(traefik::parse_line)),
        Format::NginxJson => Box::new(Stateless(nginx_json::parse_line)),
        Format::EnvoyJson => Box::new(Stateless(envoy_json::parse_line)),
        Format::Kong => Box::new(Stateless(kong::parse_line)),
        Format::Caddy => Box::new(Stateless(caddy::parse_line)),
        Format::Cloudflare => Box::new(Stateless(cloudflare::parse_line)),
        Format::AkamaiDs2 => Box::new(Stateless(akamai_ds2::parse_line)),
        Format::GcpLb => Box::new(Stateless(gcp_lb::parse_line)),
        Format::AzureAppGw => Box::new(Stateless(azure::parse_appgw_line)),
        Format::AzureFrontDoor => Box::new(Stateless(azure::parse_frontdoor_line)),
    }
}

/// Creates the parser that format detection tries on a sample, or `None`
/// for a format that is never detected (the generic `json` needs a mapping).
pub(crate) fn new_probe(format: Format) -> Option<Box<dyn RecordParser>> {
    match format {
        Format::Json => None,
        other => Some(new_parser(other)),
    }
}

/// Checks shared by the parser tests of every format.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::event::Event;
    use crate::parse::LineOutcome;

    /// Returns the event of `outcome`, failing the test on a skip or rejection.
    pub(crate) fn expect_event(line: &str, outcome: LineOutcome) -> Event {
        match outcome {
            LineOutcome::Event(event) => *event,
            other => panic!("expected an event for {line:?}, got {other:?}"),
        }
    }

    /// Returns the rejection reason of `outcome`, failing the test otherwise.
    pub(crate) fn expect_rejection(line: &str, outcome: LineOutcome) -> String {
        match outcome {
            LineOutcome::Rejected(reason) => reason,
            other => panic!("expected a rejection for {line:?}, got {other:?}"),
        }
    }
}
