//! Operator and documented templates: parsing, matching and split prefixes.
//!
//! A template such as `/v1/users/{userId}/avatar.{format}` is split on `/`.
//! Each segment is a literal (`users`), a parameter (`{userId}`) or a mix of
//! both (`avatar.{format}`). A parameter matches one or more characters of one
//! segment, never an empty segment. Literal text is percent-decoded once and
//! its remaining escapes are written in uppercase, because the templater
//! compares it with percent-decoded paths.
//!
//! When several templates match a path, the most specific wins: at the first
//! segment where they differ, a literal beats a mixed segment, which beats a
//! parameter, so `/v1/users/me` wins over `/v1/users/{id}`, and
//! `/v1/users/{id}` over `/v1/{kind}/me`.

use std::collections::HashMap;

use super::Templated;
use super::config::TemplaterError;
use super::segment::normalise_escapes;
use crate::text::percent_decode_path;

/// Maximum segments in a pinned, split or documented template.
const MAX_TEMPLATE_SEGMENTS: usize = 64;

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SegmentPattern {
    Literal(Box<str>),
    Parameter,
    Mixed(Box<[Part]>),
}

/// Part of a mixed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Parameter,
}

#[derive(Debug, Clone)]
struct ParsedTemplate {
    text: Box<str>,
    segments: Vec<SegmentPattern>,
}

/// Parses a template that starts with `/`, returning the reason when it is invalid.
fn parse_template(text: &str) -> Result<Vec<SegmentPattern>, String> {
    if !text.starts_with('/') {
        return Err("it must start with \"/\"".to_string());
    }
    let count = text.split('/').count();
    if count > MAX_TEMPLATE_SEGMENTS {
        return Err(format!(
            "it has {count} segments, more than the maximum of {MAX_TEMPLATE_SEGMENTS}"
        ));
    }

    text.split('/')
        .map(|segment| {
            parse_segment(segment).map_err(|reason| format!("segment {segment:?} {reason}"))
        })
        .collect()
}

fn parse_segment(segment: &str) -> Result<SegmentPattern, String> {
    let mut parts = Vec::new();
    let mut rest = segment;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                parts.push(Part::Literal(decode_literal(rest)));
                rest = "";
            }
            Some(at) if rest.as_bytes()[at] == b'}' => {
                return Err("has a \"}\" without an opening \"{\"".to_string());
            }
            Some(at) => {
                if at > 0 {
                    parts.push(Part::Literal(decode_literal(&rest[..at])));
                }
                let after = &rest[at + 1..];
                let Some(close) = after.find('}') else {
                    return Err("has a \"{\" without a closing \"}\"".to_string());
                };
                let name = &after[..close];
                if name.is_empty() {
                    return Err("has an empty parameter name \"{}\"".to_string());
                }
                if name.contains('{') {
                    return Err("has a \"{\" inside a parameter name".to_string());
                }
                if parts.last() == Some(&Part::Parameter) {
                    return Err(
                        "has two parameters with no literal text between them, so their \
                         values cannot be told apart"
                            .to_string(),
                    );
                }
                parts.push(Part::Parameter);
                rest = &after[close + 1..];
            }
        }
    }

    Ok(match parts.as_slice() {
        [] => SegmentPattern::Literal("".into()),
        [Part::Literal(text)] => SegmentPattern::Literal(text.clone()),
        [Part::Parameter] => SegmentPattern::Parameter,
        _ => SegmentPattern::Mixed(parts.into_boxed_slice()),
    })
}

fn decode_literal(text: &str) -> Box<str> {
    let decoded = percent_decode_path(text);
    normalise_escapes(&decoded).into()
}

/// Matches a mixed segment, each parameter taking the shortest non-empty text
/// that lets the next literal follow. A final literal must end the segment.
fn match_parts(parts: &[Part], segment: &str, mut values: Option<&mut Vec<String>>) -> bool {
    let mut rest = segment;
    let mut index = 0;
    while index < parts.len() {
        match &parts[index] {
            Part::Literal(literal) => {
                let Some(after) = rest.strip_prefix(&**literal) else {
                    return false;
                };
                rest = after;
                index += 1;
            }
            Part::Parameter => {
                let taken = match parts.get(index + 1) {
                    None => rest.len(),
                    Some(Part::Literal(next)) if index + 2 == parts.len() => {
                        if !rest.ends_with(&**next) {
                            return false;
                        }
                        rest.len() - next.len()
                    }
                    Some(Part::Literal(next)) => {
                        // Searching from the second character keeps the value non-empty.
                        let Some(offset) = rest.char_indices().nth(1).and_then(|(start, _)| {
                            rest[start..].find(&**next).map(|at| start + at)
                        }) else {
                            return false;
                        };
                        offset
                    }
                    // The parser rejects two adjacent parameters.
                    Some(Part::Parameter) => return false,
                };
                if taken == 0 {
                    return false;
                }
                if let Some(values) = values.as_deref_mut() {
                    values.push(rest[..taken].to_string());
                }
                rest = &rest[taken..];
                index += 1;
            }
        }
    }
    rest.is_empty()
}

/// A trie node: one position of the indexed templates.
#[derive(Debug, Clone, Default)]
struct TrieNode {
    literals: HashMap<Box<str>, TrieNode>,
    /// Mixed segments, most literal text first so the more specific is tried first.
    mixed: Vec<(Box<[Part]>, TrieNode)>,
    parameter: Option<Box<TrieNode>>,
    /// Index of the template that ends here.
    terminal: Option<usize>,
}

/// Handling of two templates that match exactly the same paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Duplicates {
    /// Keep the first, as for API descriptions that repeat a path with another parameter name.
    KeepFirst,
    /// Report an error, as for operator settings.
    Reject,
}

/// Templates indexed by segment for matching a path in one pass.
///
/// The trie is a tree and the search never returns to a node, so a lookup
/// visits at most every trie node once, whatever the templates.
#[derive(Debug, Clone, Default)]
pub(super) struct TemplateIndex {
    templates: Vec<ParsedTemplate>,
    root: TrieNode,
}

impl TemplateIndex {
    /// Parses and indexes templates; `kind` names them in errors.
    pub(super) fn build<'a>(
        templates: impl IntoIterator<Item = &'a str>,
        kind: &'static str,
        duplicates: Duplicates,
    ) -> Result<Self, TemplaterError> {
        let mut index = TemplateIndex::default();
        for text in templates {
            let segments =
                parse_template(text).map_err(|reason| TemplaterError::InvalidTemplate {
                    kind,
                    template: text.to_string(),
                    reason,
                })?;
            index.insert(text, segments, kind, duplicates)?;
        }
        Ok(index)
    }

    fn insert(
        &mut self,
        text: &str,
        segments: Vec<SegmentPattern>,
        kind: &'static str,
        duplicates: Duplicates,
    ) -> Result<(), TemplaterError> {
        let mut node = &mut self.root;
        for segment in &segments {
            node = match segment {
                SegmentPattern::Literal(literal) => {
                    node.literals.entry(literal.clone()).or_default()
                }
                SegmentPattern::Parameter => node.parameter.get_or_insert_with(Box::default),
                SegmentPattern::Mixed(parts) => {
                    let position = node.mixed.iter().position(|(known, _)| known == parts);
                    let position = match position {
                        Some(position) => position,
                        None => {
                            node.mixed.push((parts.clone(), TrieNode::default()));
                            node.mixed
                                .sort_by_key(|(parts, _)| std::cmp::Reverse(literal_bytes(parts)));
                            node.mixed
                                .iter()
                                .position(|(known, _)| known == parts)
                                .unwrap_or_default()
                        }
                    };
                    &mut node.mixed[position].1
                }
            };
        }

        match node.terminal {
            Some(existing) if duplicates == Duplicates::Reject => {
                Err(TemplaterError::InvalidTemplate {
                    kind,
                    template: text.to_string(),
                    reason: format!(
                        "it matches the same paths as {:?}; keep one of the two",
                        self.templates[existing].text
                    ),
                })
            }
            Some(_) => Ok(()),
            None => {
                node.terminal = Some(self.templates.len());
                self.templates.push(ParsedTemplate {
                    text: text.into(),
                    segments,
                });
                Ok(())
            }
        }
    }

    /// Returns true when a template matches `path`, as [`match_path`](Self::match_path) would, without allocating.
    pub(super) fn matches(&self, path: &str) -> bool {
        if self.templates.is_empty() {
            return false;
        }
        if find_terminal(&self.root, path.split('/')).is_some() {
            return true;
        }
        path.strip_suffix('/')
            .filter(|rest| !rest.is_empty())
            .is_some_and(|rest| find_terminal(&self.root, rest.split('/')).is_some())
    }

    /// Returns the most specific template matching `path`, with its parameter values.
    ///
    /// A path with a trailing slash that no template matches is matched
    /// without it, and the slash is kept: `/users/42/` gives `/users/{id}/`.
    pub(super) fn match_path(&self, path: &str) -> Option<Templated> {
        if self.templates.is_empty() {
            return None;
        }
        if let Some(templated) = self.match_exact(path) {
            return Some(templated);
        }

        let without_slash = path.strip_suffix('/').filter(|rest| !rest.is_empty())?;
        let mut templated = self.match_exact(without_slash)?;
        templated.endpoint.push('/');
        Some(templated)
    }

    fn match_exact(&self, path: &str) -> Option<Templated> {
        let index = find_terminal(&self.root, path.split('/'))?;
        let template = &self.templates[index];

        let mut parameters = Vec::new();
        for (pattern, segment) in template.segments.iter().zip(path.split('/')) {
            match pattern {
                SegmentPattern::Literal(_) => {}
                SegmentPattern::Parameter => parameters.push(segment.to_string()),
                SegmentPattern::Mixed(parts) => {
                    match_parts(parts, &normalise_escapes(segment), Some(&mut parameters));
                }
            }
        }
        Some(Templated {
            endpoint: template.text.to_string(),
            parameters,
        })
    }
}

fn literal_bytes(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            Part::Literal(text) => text.len(),
            Part::Parameter => 0,
        })
        .sum()
}

/// Depth-first search that tries literals, then mixed segments, then parameters.
fn find_terminal(node: &TrieNode, mut segments: std::str::Split<'_, char>) -> Option<usize> {
    let Some(raw) = segments.next() else {
        return node.terminal;
    };
    let segment = normalise_escapes(raw);

    if let Some(child) = node.literals.get(&*segment)
        && let Some(found) = find_terminal(child, segments.clone())
    {
        return Some(found);
    }
    for (parts, child) in &node.mixed {
        if match_parts(parts, &segment, None)
            && let Some(found) = find_terminal(child, segments.clone())
        {
            return Some(found);
        }
    }
    match &node.parameter {
        Some(child) if !segment.is_empty() => find_terminal(child, segments),
        _ => None,
    }
}

/// Splits an operator entry into its host, lowercased, and its template.
///
/// `/v1/files/{name}` applies to every host and `api.example.com/v1/files/{name}`
/// to one host.
pub(super) fn split_host_entry<'a>(
    entry: &'a str,
    kind: &'static str,
) -> Result<(Option<String>, &'a str), TemplaterError> {
    if entry.starts_with('/') {
        return Ok((None, entry));
    }
    match entry.find('/') {
        Some(at) if at > 0 => Ok((Some(entry[..at].to_ascii_lowercase()), &entry[at..])),
        _ => Err(TemplaterError::InvalidTemplate {
            kind,
            template: entry.to_string(),
            reason: "it must start with \"/\" for every host, or with a host name and \"/\" \
                     for one host, as in \"api.example.com/v1/files/{name}\""
                .to_string(),
        }),
    }
}

/// Pinned templates for every host and for single hosts.
#[derive(Debug, Clone, Default)]
pub(super) struct PinIndex {
    every_host: TemplateIndex,
    by_host: HashMap<Box<str>, TemplateIndex>,
}

impl PinIndex {
    pub(super) fn build(entries: &[String]) -> Result<Self, TemplaterError> {
        let mut every_host = Vec::new();
        let mut by_host: HashMap<String, Vec<&str>> = HashMap::new();
        for entry in entries {
            match split_host_entry(entry, "pinned")? {
                (None, template) => every_host.push(template),
                (Some(host), template) => by_host.entry(host).or_default().push(template),
            }
        }

        let mut index = PinIndex {
            every_host: TemplateIndex::build(every_host, "pinned", Duplicates::Reject)?,
            by_host: HashMap::new(),
        };
        for (host, templates) in by_host {
            let templates = TemplateIndex::build(templates, "pinned", Duplicates::Reject)?;
            index.by_host.insert(host.into(), templates);
        }
        Ok(index)
    }

    /// Returns true when a pin of the host or of every host matches `path`.
    pub(super) fn matches(&self, host: &str, path: &str) -> bool {
        self.by_host
            .get(host)
            .is_some_and(|pins| pins.matches(path))
            || self.every_host.matches(path)
    }

    /// Returns the pinned template of `path`: a pin of the host first, then one for every host.
    pub(super) fn match_path(&self, host: &str, path: &str) -> Option<Templated> {
        if let Some(pins) = self.by_host.get(host)
            && let Some(templated) = pins.match_path(path)
        {
            return Some(templated);
        }
        self.every_host.match_path(path)
    }
}

/// Coverage of one path position by a split prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SplitAt {
    /// No split prefix covers the position, so it may be learned.
    None,
    /// A literal segment of a split prefix: the segment stays literal.
    Literal,
    /// A `*` segment of a split prefix: the position is never learned, but typed values are still templated.
    Wildcard,
}

/// The positions of one path that a split prefix covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SplitPositions {
    /// Number of leading segments covered.
    depth: usize,
    /// Bit `i` is set when segment `i` is covered by a `*`.
    wildcards: u64,
}

impl SplitPositions {
    pub(super) fn at(&self, index: usize) -> SplitAt {
        if index >= self.depth {
            SplitAt::None
        } else if self.wildcards & 1u64.checked_shl(index as u32).unwrap_or(0) != 0 {
            SplitAt::Wildcard
        } else {
            SplitAt::Literal
        }
    }
}

#[derive(Debug, Clone, Default)]
struct SplitNode {
    literals: HashMap<Box<str>, SplitNode>,
    wildcard: Option<Box<SplitNode>>,
    terminal: bool,
}

impl SplitNode {
    fn insert(&mut self, text: &str) -> Result<(), String> {
        if !text.starts_with('/') {
            return Err("it must start with \"/\"".to_string());
        }
        let count = text.split('/').count();
        if count > MAX_TEMPLATE_SEGMENTS {
            return Err(format!(
                "it has {count} segments, more than the maximum of {MAX_TEMPLATE_SEGMENTS}"
            ));
        }

        let mut node = self;
        for segment in text.split('/') {
            node = if segment == "*" {
                node.wildcard.get_or_insert_with(Box::default)
            } else if segment.contains(['{', '}']) {
                return Err(format!(
                    "segment {segment:?} is a parameter; a split lists literal segments, \
                     or \"*\" for any segment at that position"
                ));
            } else {
                node.literals.entry(decode_literal(segment)).or_default()
            };
        }
        node.terminal = true;
        Ok(())
    }

    /// Returns the longest split prefix of the remaining segments, starting at `index`.
    fn longest(&self, mut segments: std::str::Split<'_, char>, index: usize) -> SplitPositions {
        let mut best = SplitPositions::default();
        if self.terminal {
            best.depth = index;
        }
        let Some(raw) = segments.next() else {
            return best;
        };

        let segment = normalise_escapes(raw);
        if let Some(child) = self.literals.get(&*segment) {
            let found = child.longest(segments.clone(), index + 1);
            if found.depth > best.depth {
                best = found;
            }
        }
        if let Some(child) = &self.wildcard {
            let mut found = child.longest(segments, index + 1);
            if found.depth > index {
                found.wildcards |= 1u64.checked_shl(index as u32).unwrap_or(0);
            }
            if found.depth > best.depth {
                best = found;
            }
        }
        best
    }
}

/// Split prefixes for every host and for single hosts.
#[derive(Debug, Clone, Default)]
pub(super) struct SplitIndex {
    every_host: Option<SplitNode>,
    by_host: HashMap<Box<str>, SplitNode>,
}

impl SplitIndex {
    pub(super) fn build(entries: &[String]) -> Result<Self, TemplaterError> {
        let mut index = SplitIndex::default();
        for entry in entries {
            let (host, prefix) = split_host_entry(entry, "split")?;
            let node = match host {
                None => index.every_host.get_or_insert_with(SplitNode::default),
                Some(host) => index.by_host.entry(host.into()).or_default(),
            };
            node.insert(prefix)
                .map_err(|reason| TemplaterError::InvalidTemplate {
                    kind: "split",
                    template: entry.clone(),
                    reason,
                })?;
        }
        Ok(index)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.every_host.is_none() && self.by_host.is_empty()
    }

    /// Returns the positions of `path` covered by the longest split prefix of the host or of every host.
    pub(super) fn positions(&self, host: &str, path: &str) -> SplitPositions {
        let every_host = self
            .every_host
            .as_ref()
            .map(|node| node.longest(path.split('/'), 0))
            .unwrap_or_default();
        let this_host = self
            .by_host
            .get(host)
            .map(|node| node.longest(path.split('/'), 0))
            .unwrap_or_default();
        if this_host.depth >= every_host.depth {
            this_host
        } else {
            every_host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(templates: &[&str]) -> TemplateIndex {
        TemplateIndex::build(
            templates.iter().copied(),
            "documented",
            Duplicates::KeepFirst,
        )
        .expect("the test templates are valid")
    }

    fn endpoint(index: &TemplateIndex, path: &str) -> Option<String> {
        index.match_path(path).map(|templated| templated.endpoint)
    }

    #[test]
    fn parse_segment_kinds() {
        assert_eq!(
            parse_segment("users"),
            Ok(SegmentPattern::Literal("users".into()))
        );
        assert_eq!(parse_segment(""), Ok(SegmentPattern::Literal("".into())));
        assert_eq!(parse_segment("{id}"), Ok(SegmentPattern::Parameter));
        assert_eq!(
            parse_segment("{name}.json"),
            Ok(SegmentPattern::Mixed(
                vec![Part::Parameter, Part::Literal(".json".into())].into_boxed_slice()
            ))
        );
        assert_eq!(
            parse_segment("caf%C3%A9"),
            Ok(SegmentPattern::Literal("café".into())),
            "literal text is percent-decoded"
        );
    }

    #[test]
    fn parse_template_errors() {
        let cases = [
            ("users/{id}", "must start with"),
            ("/users/{id", "without a closing"),
            ("/users/id}", "without an opening"),
            ("/users/{}", "empty parameter name"),
            ("/users/{a{b}", "inside a parameter name"),
            ("/files/{name}{ext}", "two parameters"),
        ];
        for (template, expected) in cases {
            let error = parse_template(template).expect_err(template);
            assert!(
                error.contains(expected),
                "template {template:?}: error {error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn parse_template_too_many_segments() {
        let template = "/a".repeat(MAX_TEMPLATE_SEGMENTS);
        let error = parse_template(&template).expect_err("65 segments are too many");
        assert!(error.contains("maximum"), "{error}");
    }

    #[test]
    fn match_prefers_literal() {
        let index = index(&["/v1/users/{id}", "/v1/users/me", "/v1/{kind}/me"]);
        assert_eq!(
            endpoint(&index, "/v1/users/me").as_deref(),
            Some("/v1/users/me")
        );
        assert_eq!(
            endpoint(&index, "/v1/users/42").as_deref(),
            Some("/v1/users/{id}")
        );
        assert_eq!(
            endpoint(&index, "/v1/teams/me").as_deref(),
            Some("/v1/{kind}/me")
        );
    }

    #[test]
    fn match_backtracks_to_parameter() {
        let index = index(&["/v1/users/search", "/v1/{kind}/search/{query}"]);
        assert_eq!(
            endpoint(&index, "/v1/users/search/bob").as_deref(),
            Some("/v1/{kind}/search/{query}"),
            "the literal branch fails deeper, so the parameter branch is tried"
        );
    }

    #[test]
    fn match_mixed_segments() {
        let index = index(&["/files/{name}.json", "/files/{name}", "/v{major}/status"]);
        let templated = index.match_path("/files/report.v2.json").expect("matches");
        assert_eq!(templated.endpoint, "/files/{name}.json");
        assert_eq!(templated.parameters, vec!["report.v2".to_string()]);
        assert_eq!(
            endpoint(&index, "/files/.json").as_deref(),
            Some("/files/{name}")
        );
        let templated = index.match_path("/v3/status").expect("matches");
        assert_eq!(templated.parameters, vec!["3".to_string()]);
    }

    #[test]
    fn match_mixed_inner_literal() {
        let index = index(&["/media/{name}.{format}"]);
        let templated = index.match_path("/media/cat.large.png").expect("matches");
        assert_eq!(
            templated.parameters,
            vec!["cat".to_string(), "large.png".to_string()],
            "an inner literal splits at its first match after the first character"
        );
        assert_eq!(endpoint(&index, "/media/.png"), None);
    }

    #[test]
    fn match_parameter_needs_text() {
        let index = index(&["/users/{id}/orders"]);
        assert_eq!(endpoint(&index, "/users//orders"), None);
        assert_eq!(endpoint(&index, "/users/7/orders/1"), None);
    }

    #[test]
    fn match_keeps_trailing_slash() {
        let index = index(&["/users/{id}", "/health/"]);
        let templated = index
            .match_path("/users/42/")
            .expect("matches without the slash");
        assert_eq!(templated.endpoint, "/users/{id}/");
        assert_eq!(templated.parameters, vec!["42".to_string()]);
        assert_eq!(endpoint(&index, "/health/").as_deref(), Some("/health/"));
        assert_eq!(endpoint(&index, "/"), None);
    }

    #[test]
    fn match_returns_parameters_in_order() {
        let index = index(&["/repos/{owner}/{repo}/issues/{number}"]);
        let templated = index
            .match_path("/repos/rust-lang/rust/issues/1")
            .expect("matches");
        assert_eq!(
            templated.parameters,
            vec!["rust-lang".to_string(), "rust".to_string(), "1".to_string()]
        );
    }

    #[test]
    fn duplicates_keep_first_or_reject() {
        let kept = index(&["/users/{id}", "/users/{userId}"]);
        assert_eq!(endpoint(&kept, "/users/1").as_deref(), Some("/users/{id}"));

        let rejected = TemplateIndex::build(
            ["/users/{id}", "/users/{userId}"],
            "pinned",
            Duplicates::Reject,
        );
        let error = rejected.expect_err("pins that match the same paths are rejected");
        assert!(error.to_string().contains("same paths"), "{error}");
    }

    #[test]
    fn host_entry_forms() {
        let (host, template) = split_host_entry("/v1/files/{name}", "pinned").expect("valid");
        assert_eq!(host, None);
        assert_eq!(template, "/v1/files/{name}");
        let (host, template) =
            split_host_entry("API.example.com/v1/files/{name}", "pinned").expect("valid");
        assert_eq!(host.as_deref(), Some("api.example.com"));
        assert_eq!(template, "/v1/files/{name}");
        assert!(
            split_host_entry("v1/files", "pinned").is_ok(),
            "host v1, template /files"
        );
        assert!(
            split_host_entry("files", "pinned").is_err(),
            "no slash at all"
        );
    }

    #[test]
    fn split_positions_literal_and_wildcard() {
        let index = SplitIndex::build(&["/v1/refunds".to_string(), "/v2/*".to_string()])
            .expect("valid splits");
        let refunds = index.positions("", "/v1/refunds/re_1");
        assert_eq!(refunds.at(1), SplitAt::Literal);
        assert_eq!(refunds.at(2), SplitAt::Literal);
        assert_eq!(refunds.at(3), SplitAt::None);

        let other = index.positions("", "/v1/users");
        assert_eq!(other.at(1), SplitAt::None, "the whole prefix must match");

        let wildcard = index.positions("", "/v2/anything/else");
        assert_eq!(wildcard.at(1), SplitAt::Literal);
        assert_eq!(wildcard.at(2), SplitAt::Wildcard);
        assert_eq!(wildcard.at(3), SplitAt::None);
    }

    #[test]
    fn split_positions_by_host() {
        let index =
            SplitIndex::build(&["api.example.com/v1/refunds".to_string()]).expect("valid split");
        assert_eq!(
            index.positions("api.example.com", "/v1/refunds").at(2),
            SplitAt::Literal
        );
        assert_eq!(
            index.positions("other.example.com", "/v1/refunds").at(2),
            SplitAt::None
        );
    }

    #[test]
    fn split_rejects_parameters() {
        let error = SplitIndex::build(&["/v1/{kind}".to_string()]).expect_err("a parameter");
        assert!(error.to_string().contains("\"*\""), "{error}");
    }
}
