//! Guesses the format of an input from its first records.
//!
//! The first non-blank records of a sample (see [`crate::framing`]) go to a
//! fresh parser of every format that can be detected. Each parser reads all
//! of them in order, so header-driven formats learn their columns from the
//! header as they would on the real input. A record votes for every format
//! whose parser accepts or skips it. The format with the most votes wins if
//! more than half of the records voted for it. On a tie the format listed
//! first in [`Format::ALL`] wins, and that list puts the most specific first.
//!
//! A record that no parser accepts and that is a log shipper's JSON envelope
//! (see [`crate::envelope`]) votes with the line it wraps.
//!
//! A sample too short to hold one whole record can still be recognised by
//! its start: a JSON object with `"log"` and `"entries"` keys is a HAR
//! capture, which is one JSON document of any size.

use crate::envelope;
use crate::format::Format;
use crate::formats::{RecordParser, new_probe};
use crate::framing::{FrameState, records};
use crate::parse::{LineOutcome, ParseContext};
use crate::redact::Redactor;
use crate::text::decode_line;

/// Maximum number of non-blank records looked at.
const MAX_SAMPLE_RECORDS: usize = 20;

/// Maximum number of bytes looked at.
pub const MAX_SAMPLE_BYTES: usize = 1024 * 1024;

/// Returns the format that the first non-blank records of `sample` look
/// like, or `None` if no format matches more than half of them.
///
/// The sample may end in the middle of a record. That last record counts
/// only when it parses, so a cut line cannot spoil the vote.
pub fn detect_format(sample: &[u8]) -> Option<Format> {
    let sample = &sample[..sample.len().min(MAX_SAMPLE_BYTES)];
    let redactor = Redactor::new(b"format-detection".to_vec(), 1);
    let ctx = ParseContext::new(&redactor);
    let mut probes: Vec<(Format, Box<dyn RecordParser>)> = Format::ALL
        .into_iter()
        .filter_map(|format| new_probe(format).map(|probe| (format, probe)))
        .collect();
    let mut votes = vec![0usize; probes.len()];
    let mut voters = 0;

    for record in records(sample, 1, FrameState::default()).take(MAX_SAMPLE_RECORDS) {
        let text = decode_line(record.bytes);
        let mut matched = vote(&mut probes, &mut votes, &text, &ctx);
        if !matched && let Some(unwrapped) = envelope::unwrap(&text) {
            matched = vote(&mut probes, &mut votes, &unwrapped.line, &ctx);
        }
        if matched || record.complete {
            voters += 1;
        }
    }
    if voters == 0 {
        return sniff_document(sample);
    }

    let (index, &count) = votes
        .iter()
        .enumerate()
        .max_by_key(|&(index, &count)| (count, std::cmp::Reverse(index)))?;
    (count * 2 > voters).then(|| probes.swap_remove(index).0)
}

/// Gives `record` to every probe; returns whether one of them accepted it.
fn vote(
    probes: &mut [(Format, Box<dyn RecordParser>)],
    votes: &mut [usize],
    record: &str,
    ctx: &ParseContext<'_>,
) -> bool {
    let mut matched = false;
    for (index, (_, probe)) in probes.iter_mut().enumerate() {
        if matches_format(probe.parse(record, ctx)) {
            votes[index] += 1;
            matched = true;
        }
    }
    matched
}

/// Recognises a single JSON document from its first bytes.
fn sniff_document(sample: &[u8]) -> Option<Format> {
    let text = decode_line(sample);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (text.starts_with('{') && text.contains("\"log\"") && text.contains("\"entries\""))
        .then_some(Format::Har)
}

fn matches_format(outcome: LineOutcome) -> bool {
    !matches!(outcome, LineOutcome::Rejected(_))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ALB_LINE: &str = concat!(
        r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 "#,
        r#"192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "#,
        r#""GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - "#,
        r#"arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "#,
        r#""Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-""#,
    );
    const CLF_LINE: &str =
        r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
    const APIGATEWAY_LINE: &str = r#"{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","ip":"192.0.2.1","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","resourcePath":"/pets","status":"200","protocol":"HTTP/1.1","responseLength":"184"}"#;

    /// Parses `line` with a fresh parser of every format; a panic fails the test.
    fn parse_with_every_format(line: &str) {
        let redactor = Redactor::new(b"test".to_vec(), 1);
        let ctx = ParseContext::new(&redactor);
        for format in Format::ALL {
            let _ = crate::formats::new_parser(format).parse(line, &ctx);
        }
    }

    fn lines(lines: &[&str]) -> Vec<u8> {
        let mut text = lines.join("\n");
        text.push('\n');
        text.into_bytes()
    }

    #[test]
    fn detects_each_format() {
        assert_eq!(
            detect_format(&lines(&[ALB_LINE, ALB_LINE])),
            Some(Format::AwsAlb)
        );
        assert_eq!(detect_format(&lines(&[CLF_LINE])), Some(Format::Clf));
        assert_eq!(
            detect_format(&lines(&[APIGATEWAY_LINE])),
            Some(Format::AwsApiGateway)
        );
    }

    #[test]
    fn detects_lines_inside_shipper_envelopes() {
        let wrapped = serde_json::json!({ "message": CLF_LINE, "host": "web-1" }).to_string();
        assert_eq!(
            detect_format(&lines(&[&wrapped, &wrapped])),
            Some(Format::Clf)
        );
    }

    #[test]
    fn skips_blank_lines_and_crlf() {
        let sample = format!("\n  \r\n{CLF_LINE}\r\n\r\n{CLF_LINE}\r\n");
        assert_eq!(detect_format(sample.as_bytes()), Some(Format::Clf));
    }

    #[test]
    fn ignores_cut_last_line() {
        let mut sample = lines(&[CLF_LINE, CLF_LINE]);
        sample.extend_from_slice(&CLF_LINE.as_bytes()[..20]);
        assert_eq!(detect_format(&sample), Some(Format::Clf));
    }

    #[test]
    fn single_line_without_newline() {
        assert_eq!(
            detect_format(APIGATEWAY_LINE.as_bytes()),
            Some(Format::AwsApiGateway)
        );
    }

    #[test]
    fn majority_wins_over_odd_lines() {
        let sample = lines(&[CLF_LINE, "garbage", CLF_LINE]);
        assert_eq!(detect_format(&sample), Some(Format::Clf));
    }

    #[test]
    fn strips_byte_order_mark() {
        let sample = format!("\u{feff}{CLF_LINE}\n");
        assert_eq!(detect_format(sample.as_bytes()), Some(Format::Clf));
    }

    #[test]
    fn junk_gives_none() {
        let samples: [&[u8]; 8] = [
            b"",
            b"\n\n  \n",
            b"hello world\nthis is not a log\n",
            b"\x00\x01\x02\xff\xfe",
            b"{\"level\":\"info\",\"msg\":\"started\"}\n",
            b"<html><body>502 Bad Gateway</body></html>\n",
            b"date,status,path\n2024-01-01,200,/a\n",
            b"[1,2,3]\n",
        ];
        for sample in samples {
            assert_eq!(
                detect_format(sample),
                None,
                "sample {:?}",
                String::from_utf8_lossy(sample)
            );
        }
    }

    #[test]
    fn mixed_half_and_half_gives_none() {
        let sample = lines(&[CLF_LINE, "garbage"]);
        assert_eq!(detect_format(&sample), None);
    }

    /// Fragments that steer random lines into the parsers' harder branches.
    fn line_fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(" ".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("-".to_string()),
            Just(",".to_string()),
            Just("{".to_string()),
            Just("ü".to_string()),
            Just("http".to_string()),
            Just("tls 2.0".to_string()),
            Just("GET".to_string()),
            Just("HTTP/1.1".to_string()),
            Just("2018-07-02T22:23:00.186641Z".to_string()),
            Just("[10/Oct/2000:13:55:36 -0700]".to_string()),
            Just("\"requestTime\":\"10/Jun/2023:15:36:28 +0000\"".to_string()),
            Just("\\x41\\xe4".to_string()),
            Just("%41%2F%e4".to_string()),
            "[a-z0-9:./?=%]{0,6}",
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(fragments in prop::collection::vec(line_fragment(), 0..40)) {
            let line = fragments.concat();
            parse_with_every_format(&line);
            let _ = detect_format(line.as_bytes());
        }

        #[test]
        fn parsers_never_panic_on_any_text(line in "\\PC{0,200}") {
            parse_with_every_format(&line);
        }

        #[test]
        fn detection_never_panics_on_bytes(sample in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = detect_format(&sample);
        }
    }
}
