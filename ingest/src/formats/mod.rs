//! One parser per input format.

pub mod alb;
pub mod apigateway;
pub mod clf;

use crate::format::Format;
use crate::parse::{LineOutcome, ParseContext};

/// Parses one non-blank line of `format`.
pub fn parse_line(format: Format, line: &str, ctx: &ParseContext<'_>) -> LineOutcome {
    match format {
        Format::AwsAlb => alb::parse_line(line, ctx),
        Format::Clf => clf::parse_line(line, ctx),
        Format::AwsApiGateway => apigateway::parse_line(line, ctx),
    }
}
