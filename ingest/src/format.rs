//! Names of the supported input formats.

use std::fmt;
use std::str::FromStr;

/// An input format, named as in the `format` parameter and the `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// AWS Application Load Balancer access logs.
    AwsAlb,
    /// AWS Classic Load Balancer access logs.
    AwsElb,
    /// AWS API Gateway access logs (REST, HTTP and WebSocket APIs), JSON or CLF-style.
    AwsApiGateway,
    /// Amazon CloudFront standard logs (W3C, with a `#Fields:` header).
    AwsCloudFront,
    /// Amazon CloudFront real-time logs (tab-separated, fields in the configured order).
    AwsCloudFrontRealtime,
    /// nginx and Apache "common" and "combined" access logs.
    Clf,
    /// nginx JSON `log_format` (with `escape=json`).
    NginxJson,
    /// The default access log format of the Kubernetes ingress-nginx controller.
    IngressNginx,
    /// Envoy and Istio default text access logs.
    Envoy,
    /// Envoy and Istio JSON access logs.
    EnvoyJson,
    /// Kong Gateway's log serializer (http-log, file-log).
    Kong,
    /// Caddy v2 JSON access logs.
    Caddy,
    /// Traefik access logs, CLF or JSON.
    Traefik,
    /// HAProxy `option httplog`, bare or inside syslog.
    Haproxy,
    /// Cloudflare Logpush and Logpull `http_requests`.
    Cloudflare,
    /// Akamai DataStream 2 JSON.
    AkamaiDs2,
    /// Google Cloud HTTP(S) load balancer request logs (Cloud Logging JSON).
    GcpLb,
    /// Azure Application Gateway access logs.
    AzureAppGw,
    /// Azure Front Door access logs.
    AzureFrontDoor,
    /// HTTP Archive (HAR 1.2) captures from browsers and proxies.
    Har,
    /// Zeek `http.log`, tab-separated with its `#fields` header, or JSON.
    ZeekHttp,
    /// Suricata `eve.json` http events.
    SuricataEve,
    /// OpenTelemetry HTTP server spans and access-log records (OTLP JSON).
    Otlp,
    /// Generic JSON lines with a field mapping from the configuration.
    Json,
}

impl Format {
    /// Every format, in the order detection prefers them when two accept the same input.
    pub const ALL: [Format; 24] = [
        Format::AwsAlb,
        Format::AwsElb,
        Format::AwsCloudFront,
        Format::AwsCloudFrontRealtime,
        Format::ZeekHttp,
        Format::Haproxy,
        Format::Envoy,
        Format::IngressNginx,
        Format::Traefik,
        Format::AwsApiGateway,
        Format::Clf,
        Format::Har,
        Format::Otlp,
        Format::Kong,
        Format::Caddy,
        Format::Cloudflare,
        Format::AkamaiDs2,
        Format::GcpLb,
        Format::AzureAppGw,
        Format::AzureFrontDoor,
        Format::SuricataEve,
        Format::EnvoyJson,
        Format::NginxJson,
        Format::Json,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::AwsAlb => "aws_alb",
            Format::AwsElb => "aws_elb",
            Format::AwsApiGateway => "aws_apigateway",
            Format::AwsCloudFront => "aws_cloudfront",
            Format::AwsCloudFrontRealtime => "aws_cloudfront_realtime",
            Format::Clf => "clf",
            Format::NginxJson => "nginx_json",
            Format::IngressNginx => "ingress_nginx",
            Format::Envoy => "envoy",
            Format::EnvoyJson => "envoy_json",
            Format::Kong => "kong",
            Format::Caddy => "caddy",
            Format::Traefik => "traefik",
            Format::Haproxy => "haproxy",
            Format::Cloudflare => "cloudflare",
            Format::AkamaiDs2 => "akamai_ds2",
            Format::GcpLb => "gcp_lb",
            Format::AzureAppGw => "azure_appgw",
            Format::AzureFrontDoor => "azure_frontdoor",
            Format::Har => "har",
            Format::ZeekHttp => "zeek_http",
            Format::SuricataEve => "suricata_eve",
            Format::Otlp => "otlp",
            Format::Json => "json",
        }
    }

    /// Returns the names of every format, comma-separated, for error messages and help.
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a format name that apitrail does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {name:?}; supported formats: {}", Format::names())]
pub struct UnknownFormat {
    pub name: String,
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| UnknownFormat {
                name: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_format() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        let error = "nginx".parse::<Format>().unwrap_err().to_string();
        assert!(
            error.contains("zeek_http") && error.contains("aws_alb"),
            "the error should list the supported formats: {error}"
        );
    }
}
