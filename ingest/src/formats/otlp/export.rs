//! What the spans or log records of one OTLP export became, item by item.
//!
//! An OTLP receiver responds to an export with the number of items it rejected
//! (`partial_success`), so it maps each span or log record on its own: one
//! invalid span rejects that span, not the request. [`ExportMapping`]
//! collects the outcome of each item. The JSON decoder of this module fills
//! it, and so does a protobuf receiver, which builds [`super::SpanView`]s from
//! the decoded messages and records what [`super::span_to_event`] returns.

use crate::event::Event;
use crate::parse::FutureTolerance;

/// The signal of an export request, which decides the items it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `ExportTraceServiceRequest`: spans.
    Traces,
    /// `ExportLogsServiceRequest`: log records.
    Logs,
}

impl Signal {
    /// Returns the name of the signal as OTLP/HTTP paths use it (`/v1/traces`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    /// Returns the plural noun of the items, for messages.
    pub fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "log records",
        }
    }
}

/// One span or log record that could not be mapped to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedItem {
    /// Number of the item among the request's spans or log records, from 1.
    pub ordinal: u64,
    /// Position in the request, such as `resourceSpans[0].scopeSpans[1].spans[2]`.
    pub position: String,
    pub reason: String,
    /// The item as a one-item OTLP/JSON export with its resource and scope,
    /// so a rejects file entry can be imported again with the `otlp` format.
    pub text: String,
}

impl RejectedItem {
    /// Returns `position: reason`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.position, self.reason)
    }
}

/// The events, skipped items and rejected items of one export.
#[derive(Debug, Default)]
pub struct ExportMapping {
    pub events: Vec<Event>,
    /// Spans or log records seen, whatever became of them.
    pub items: u64,
    /// Items that describe no HTTP request: spans of a kind other than
    /// SERVER, server spans and log records without HTTP attributes.
    pub skipped: u64,
    pub rejected: Vec<RejectedItem>,
    /// Latest event time accepted; a later event is rejected.
    future_tolerance: Option<FutureTolerance>,
}

impl ExportMapping {
    /// Creates an empty mapping that rejects events later than `future_tolerance` allows.
    pub fn new(future_tolerance: Option<FutureTolerance>) -> Self {
        ExportMapping {
            future_tolerance,
            ..ExportMapping::default()
        }
    }

    /// Counts an item that describes no HTTP request.
    pub fn skip(&mut self) {
        self.items += 1;
        self.skipped += 1;
    }

    /// Records what one item became: `Ok(Some(event))` from
    /// [`super::span_to_event`] or [`super::log_record_to_event`], `Ok(None)`
    /// for an item that describes no HTTP request, or the reason it is invalid.
    ///
    /// `position` and `text` are called only for a rejected item, so the
    /// common case builds neither string.
    pub fn record(
        &mut self,
        outcome: Result<Option<Event>, String>,
        position: impl FnOnce() -> String,
        text: impl FnOnce() -> String,
    ) {
        let event = match outcome {
            Ok(None) => return self.skip(),
            Ok(Some(event)) => event,
            Err(reason) => return self.reject(position(), reason, text()),
        };
        let too_late = self
            .future_tolerance
            .and_then(|tolerance| tolerance.check(std::slice::from_ref(&event)).err());
        match too_late {
            Some(reason) => self.reject(position(), reason, text()),
            None => {
                self.items += 1;
                self.events.push(event);
            }
        }
    }

    /// Counts an item as rejected.
    pub fn reject(&mut self, position: String, reason: String, text: String) {
        self.items += 1;
        self.rejected.push(RejectedItem {
            ordinal: self.items,
            position,
            reason,
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_each_outcome() {
        let now = 1_700_000_000_000_000;
        let mut mapping = ExportMapping::new(Some(FutureTolerance::new(now, Duration::ZERO)));
        mapping.record(Ok(Some(Event::new("otlp", now))), String::new, String::new);
        mapping.record(Ok(None), String::new, String::new);
        mapping.record(
            Err("missing startTimeUnixNano".into()),
            || "spans[2]".into(),
            || "{}".into(),
        );
        mapping.record(
            Ok(Some(Event::new("otlp", now + 1))),
            || "spans[3]".into(),
            String::new,
        );
        assert_eq!(mapping.items, 4, "items");
        assert_eq!(mapping.events.len(), 1, "events");
        assert_eq!(mapping.skipped, 1, "skipped");
        assert_eq!(mapping.rejected.len(), 2, "rejected");
        assert_eq!(
            mapping.rejected[0].message(),
            "spans[2]: missing startTimeUnixNano"
        );
        assert_eq!(mapping.rejected[0].text, "{}");
        assert_eq!(mapping.rejected[0].ordinal, 3, "the third item");
        assert!(
            mapping.rejected[1].reason.contains("is later than"),
            "{:?}",
            mapping.rejected[1]
        );
    }
}
