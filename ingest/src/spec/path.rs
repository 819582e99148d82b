//! Documented path templates: joining a base path, splitting into segments,
//! matching an endpoint segment and ranking templates by specificity.
//!
//! A template is split on `/`. Each segment is a literal (`users`), a
//! parameter (`{userId}`) or a mix of both (`{name}.json`, `v{major}`,
//! `{name}:cancel`). A parameter matches one or more characters of a single
//! segment, never an empty segment and never a `/`. Literal text is
//! percent-decoded once before it is compared, because apitrail endpoints are
//! percent-decoded paths.

use std::cmp::Ordering;

use crate::text::percent_decode_path;

/// One `/`-separated segment of a documented path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Text that must equal the endpoint segment, already percent-decoded.
    Literal(String),
    /// A whole-segment parameter such as `{userId}`.
    Parameter,
    /// Literal text and parameters within one segment, such as `{name}.json`.
    Mixed(Vec<Piece>),
}

/// Part of a mixed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    Parameter,
}

/// Specificity of one template segment: literals beat mixed segments, which
/// beat whole-segment parameters. Among mixed segments, more literal text wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegmentRank {
    class: u8,
    literal_bytes: usize,
}

/// A parsed template with its precomputed specificity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) segments: Vec<Segment>,
    ranks: Vec<SegmentRank>,
}

impl Template {
    /// Parses a template that starts with `/`, such as `/users/{userId}/avatar.{format}`.
    ///
    /// The error names the offending segment: an unclosed `{`, a `}` without
    /// `{`, an empty `{}` or a `{` inside a parameter name.
    pub(crate) fn parse(path: &str) -> Result<Template, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("path {path:?} must start with '/'"));
        };

        let mut segments = Vec::new();
        for segment in rest.split('/') {
            let parsed = parse_segment(segment)
                .map_err(|reason| format!("segment {segment:?} of path {path:?} {reason}"))?;
            segments.push(parsed);
        }
        let ranks = segments.iter().map(Segment::rank).collect();
        Ok(Template { segments, ranks })
    }

    /// Returns whether every segment of `endpoint` matches, in order.
    pub(crate) fn matches(&self, endpoint: &[&str]) -> bool {
        self.segments.len() == endpoint.len()
            && self
                .segments
                .iter()
                .zip(endpoint)
                .all(|(segment, value)| segment.matches(value))
    }

    /// Compares specificity segment by segment from the left, so that
    /// `/users/me` ranks above `/users/{id}` and `/users/{id}` above `/{kind}/me`.
    pub(crate) fn compare_specificity(&self, other: &Template) -> Ordering {
        self.ranks.cmp(&other.ranks)
    }
}

fn parse_segment(segment: &str) -> Result<Segment, &'static str> {
    if !segment.contains(['{', '}']) {
        return Ok(Segment::Literal(percent_decode_path(segment)));
    }

    let mut pieces = Vec::new();
    let mut rest = segment;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Literal(percent_decode_path(rest)));
                rest = "";
            }
            Some(position) if rest.as_bytes()[position] == b'}' => {
                return Err("has a '}' without a matching '{'");
            }
            Some(position) => {
                if position > 0 {
                    pieces.push(Piece::Literal(percent_decode_path(&rest[..position])));
                }
                let after_open = &rest[position + 1..];
                let close = after_open
                    .find('}')
                    .ok_or("has a '{' without a closing '}'")?;
                let name = &after_open[..close];
                if name.is_empty() {
                    return Err("has an empty parameter name '{}'");
                }
                if name.contains('{') {
                    return Err("has a '{' inside a parameter name");
                }
                pieces.push(Piece::Parameter);
                rest = &after_open[close + 1..];
            }
        }
    }

    if pieces == [Piece::Parameter] {
        Ok(Segment::Parameter)
    } else {
        Ok(Segment::Mixed(pieces))
    }
}

impl Segment {
    fn matches(&self, value: &str) -> bool {
        match self {
            Segment::Literal(literal) => literal == value,
            Segment::Parameter => !value.is_empty(),
            Segment::Mixed(pieces) => pieces_match(pieces, value.as_bytes()),
        }
    }

    fn rank(&self) -> SegmentRank {
        match self {
            Segment::Literal(literal) => SegmentRank {
                class: 2,
                literal_bytes: literal.len(),
            },
            Segment::Parameter => SegmentRank {
                class: 0,
                literal_bytes: 0,
            },
            Segment::Mixed(pieces) => SegmentRank {
                class: 1,
                literal_bytes: pieces
                    .iter()
                    .map(|piece| match piece {
                        Piece::Literal(literal) => literal.len(),
                        Piece::Parameter => 0,
                    })
                    .sum(),
            },
        }
    }
}

/// Matches a mixed segment like a glob where each parameter stands for one or
/// more bytes. Tracks the set of reachable positions, so the cost is the
/// number of pieces times the segment length, without backtracking.
///
/// Comparing bytes is safe for UTF-8: a literal piece starts with a lead byte,
/// so it can only match at a character boundary.
fn pieces_match(pieces: &[Piece], value: &[u8]) -> bool {
    let mut reachable = vec![false; value.len() + 1];
    reachable[0] = true;

    for piece in pieces {
        let mut next = vec![false; value.len() + 1];
        match piece {
            Piece::Literal(literal) => {
                let literal = literal.as_bytes();
                for start in 0..=value.len() {
                    if reachable[start] && value[start..].starts_with(literal) {
                        next[start + literal.len()] = true;
                    }
                }
            }
            Piece::Parameter => {
                if let Some(first) = reachable.iter().position(|&reached| reached) {
                    for end in next.iter_mut().skip(first + 1) {
                        *end = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[value.len()]
}

/// Joins a server base path and a path key, collapsing repeated slashes.
///
/// A trailing slash of the path key is kept, so `/v1` + `/users/` gives
/// `/v1/users/`. An empty base path leaves the path key as it is, apart from
/// collapsing.
pub(crate) fn join_base_path(base_path: &str, path: &str) -> String {
    let mut joined = String::with_capacity(base_path.len() + path.len() + 1);
    if !base_path.starts_with('/') {
        joined.push('/');
    }
    joined.push_str(base_path);
    joined.push('/');
    joined.push_str(path);
    collapse_slashes(&joined)
}

/// Replaces every run of `/` with a single `/`.
pub(crate) fn collapse_slashes(path: &str) -> String {
    let mut collapsed = String::with_capacity(path.len());
    let mut previous_slash = false;
    for character in path.chars() {
        let slash = character == '/';
        if !(slash && previous_slash) {
            collapsed.push(character);
        }
        previous_slash = slash;
    }
    collapsed
}

/// Returns the template with every parameter name removed (`/users/{}`), so
/// that templates differing only in parameter names compare equal.
pub(crate) fn comparison_key(path: &str) -> String {
    let mut key = String::with_capacity(path.len());
    let mut in_parameter = false;
    for character in path.chars() {
        match character {
            '{' => {
                in_parameter = true;
                key.push('{');
            }
            '}' if in_parameter => {
                in_parameter = false;
                key.push('}');
            }
            _ if in_parameter => {}
            _ => key.push(character),
        }
    }
    key
}

/// Splits an endpoint into segments after collapsing repeated slashes.
///
/// Returns `None` for an endpoint that does not start with `/`, such as the
/// `*` of `OPTIONS *`, which no template can match. Repeated slashes are
/// collapsed because a documented template never contains them, while many
/// servers treat `/v1//users` as `/v1/users`.
pub(crate) fn endpoint_segments(endpoint: &str) -> Option<Vec<&str>> {
    let rest = endpoint.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len() - 1;

    // An empty part is a repeated slash, except the last one, which is a trailing slash.
    let segments = parts
        .into_iter()
        .enumerate()
        .filter(|(index, segment)| !segment.is_empty() || *index == last)
        .map(|(_, segment)| segment)
        .collect();
    Some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn template(path: &str) -> Template {
        Template::parse(path).unwrap_or_else(|error| panic!("template {path:?}: {error}"))
    }

    fn matches(path: &str, endpoint: &str) -> bool {
        let segments = endpoint_segments(endpoint).expect("endpoint starts with '/'");
        template(path).matches(&segments)
    }

    #[test]
    fn parse_segment_kinds() {
        let parsed = template("/users/{userId}/avatar.{format}");
        assert_eq!(
            parsed.segments,
            vec![
                Segment::Literal("users".into()),
                Segment::Parameter,
                Segment::Mixed(vec![Piece::Literal("avatar.".into()), Piece::Parameter]),
            ],
            "segments of a template with a literal, a parameter and a mixed segment"
        );
    }

    #[test]
    fn parse_decodes_literals() {
        let parsed = template("/files/caf%C3%A9");
        assert_eq!(
            parsed.segments[1],
            Segment::Literal("café".into()),
            "a percent-encoded literal is compared decoded"
        );
    }

    #[test]
    fn parse_rejects_bad_braces() {
        let cases = [
            ("/users/{id", "without a closing '}'"),
            ("/users/id}", "without a matching '{'"),
            ("/users/{}", "empty parameter name"),
            ("/users/{a{b}", "inside a parameter name"),
            ("/v1/{name=projects/*}", "without a closing '}'"),
            ("users/{id}", "must start with '/'"),
        ];
        for (path, expected) in cases {
            let error = Template::parse(path).expect_err(path);
            assert!(
                error.contains(expected),
                "error for {path:?} is {error:?}, expected it to contain {expected:?}"
            );
        }
    }

    #[test]
    fn parameter_matches_one_segment() {
        assert!(matches("/users/{id}", "/users/42"), "concrete value");
        assert!(
            matches("/users/{id}", "/users/{id}"),
            "apitrail placeholder"
        );
        assert!(
            matches("/users/{userId}", "/users/{uuid}"),
            "placeholder with another name"
        );
        assert!(!matches("/users/{id}", "/users/"), "empty segment");
        assert!(!matches("/users/{id}", "/users/4/2"), "two segments");
        assert!(!matches("/users/{id}", "/users"), "missing segment");
    }

    #[test]
    fn literal_matches_exactly() {
        assert!(matches("/users/me", "/users/me"), "same literal");
        assert!(
            !matches("/users/me", "/users/Me"),
            "paths are case-sensitive"
        );
        assert!(
            !matches("/users/me", "/users/{id}"),
            "placeholder is no literal"
        );
        assert!(!matches("/users/", "/users"), "trailing slash is kept");
        assert!(matches("/users/", "/users/"), "trailing slash on both");
        assert!(matches("/", "/"), "root");
    }

    #[test]
    fn mixed_segment_matches() {
        assert!(
            matches("/avatars/{name}.{format}", "/avatars/me.png"),
            "two parameters around a dot"
        );
        assert!(
            matches("/reports/{id}.json", "/reports/{id}.json"),
            "apitrail placeholder with extension"
        );
        assert!(
            matches("/ops/{name}:cancel", "/ops/abc:cancel"),
            "custom method suffix"
        );
        assert!(matches("/api/v{major}", "/api/v2"), "version prefix");
        assert!(
            !matches("/api/v{major}", "/api/v"),
            "parameter needs a character"
        );
        assert!(
            !matches("/reports/{id}.json", "/reports/7.xml"),
            "literal suffix differs"
        );
        assert!(
            matches("/a/{x}-{y}-end", "/a/1-2-3-end"),
            "a parameter may contain the separator"
        );
    }

    #[test]
    fn specificity_prefers_literals() {
        let me = template("/users/me");
        let by_id = template("/users/{id}");
        let kind_me = template("/{kind}/me");
        let with_extension = template("/users/{id}.json");
        assert_eq!(
            me.compare_specificity(&by_id),
            Ordering::Greater,
            "/users/me over /users/{{id}}"
        );
        assert_eq!(
            by_id.compare_specificity(&kind_me),
            Ordering::Greater,
            "the leftmost literal decides"
        );
        assert_eq!(
            with_extension.compare_specificity(&by_id),
            Ordering::Greater,
            "a mixed segment over a parameter"
        );
        assert_eq!(
            by_id.compare_specificity(&template("/users/{userId}")),
            Ordering::Equal,
            "parameter names do not count"
        );
    }

    #[test]
    fn join_collapses_slashes() {
        let cases = [
            ("/svc-a", "/users/{userId}", "/svc-a/users/{userId}"),
            ("/svc-a/", "/users", "/svc-a/users"),
            ("", "/users", "/users"),
            ("/", "/users", "/users"),
            ("/v1", "/", "/v1/"),
            ("/v1", "/users/", "/v1/users/"),
            ("v1", "//users", "/v1/users"),
            ("", "/a//b///c", "/a/b/c"),
        ];
        for (base, path, expected) in cases {
            assert_eq!(
                join_base_path(base, path),
                expected,
                "base {base:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn comparison_key_drops_names() {
        assert_eq!(comparison_key("/users/{userId}/x.{fmt}"), "/users/{}/x.{}");
        assert_eq!(
            comparison_key("/users/{id}"),
            comparison_key("/users/{userId}"),
            "renamed parameter"
        );
    }

    #[test]
    fn endpoint_segments_collapse() {
        assert_eq!(endpoint_segments("/v1//users"), Some(vec!["v1", "users"]));
        assert_eq!(endpoint_segments("/users/"), Some(vec!["users", ""]));
        assert_eq!(endpoint_segments("/users//"), Some(vec!["users", ""]));
        assert_eq!(endpoint_segments("/"), Some(vec![""]));
        assert_eq!(endpoint_segments("//"), Some(vec![""]));
        assert_eq!(endpoint_segments("*"), None, "asterisk form");
    }

    proptest! {
        #[test]
        fn parse_and_match_never_panic(path in "[/a-z{}.%:-]{0,24}", endpoint in "[/a-z{}.:é-]{0,24}") {
            if let Ok(parsed) = Template::parse(&path)
                && let Some(segments) = endpoint_segments(&endpoint)
            {
                let _ = parsed.matches(&segments);
            }
        }

        #[test]
        fn template_matches_itself(segments in prop::collection::vec("[a-z]{1,6}|\\{[a-z]{1,6}\\}|[a-z]{1,3}\\.\\{[a-z]{1,3}\\}", 1..6)) {
            let path = format!("/{}", segments.join("/"));
            let parsed = Template::parse(&path).expect("generated templates are valid");
            let endpoint = endpoint_segments(&path).expect("starts with '/'");
            prop_assert!(parsed.matches(&endpoint), "{} does not match itself", path);
        }
    }
}
