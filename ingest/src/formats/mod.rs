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
