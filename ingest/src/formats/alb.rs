use crate::parse::{LineOutcome, ParseContext};

pub fn parse_line(_line: &str, _ctx: &ParseContext<'_>) -> LineOutcome {
    LineOutcome::Rejected("not implemented".to_string())
}
