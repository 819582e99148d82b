//! The consumer mapping file: display names, tiers and time zones for consumer ids.
//!
//! The file is TOML with one `[[consumer]]` table per consumer:
//!
//! ```toml
//! [[consumer]]
//! match = ["h1:3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7", "partner-acme"]
//! name = "Acme Logistics"
//! tier = "gold"                  # optional
//! timezone = "America/Chicago"   # optional, an IANA time zone name
//! ```
//!
//! `match` lists the values of the `consumer` column that name this consumer:
//! gateway consumer ids, JWT subjects, certificate subjects, user names,
//! addresses, or the hashes of API keys under any key version. Values match
//! exactly, case included. [`ConsumerMap::lookup`] also tries the
//! [`aliases`](crate::identity::Identity::aliases) of an identity, so an
//! entry written with a hash made before a key rotation still names the
//! consumer after it.
//!
//! [`ConsumerMap::parse`] rejects unknown keys, a missing or blank `name` and
//! an empty `match` list. It also rejects a value listed twice, in one entry
//! or in two, and a value that starts like a key hash but is not a complete
//! one. A time zone must be in the IANA database that `chrono-tz` embeds.
//! Each error names the entry by its number, its name and its line.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::redact::is_hash;

/// Display name, tier and time zone of one consumer, from the mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Display name.
    pub name: String,
    /// Service tier, such as `gold`.
    pub tier: Option<String>,
    /// Time zone of the consumer, for reports by local day.
    pub timezone: Option<Tz>,
}

/// A parsed mapping file: consumers indexed by every value of their `match` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerMap {
    consumers: Vec<ConsumerInfo>,
    /// Each `match` value with the index of its consumer in `consumers`.
    index: HashMap<String, usize>,
}

/// Error of [`ConsumerMap::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerMapError {
    /// The text is not valid TOML, or its top level has a key other than `consumer`.
    #[error("invalid consumer map: {0}")]
    Toml(String),
    /// One `[[consumer]]` entry is invalid.
    #[error("invalid consumer map: {entry}: {reason}")]
    Entry { entry: EntryRef, reason: String },
}

/// An entry of the mapping file, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// Position of the entry in the file, from 1.
    pub number: usize,
    /// Line of the entry, from 1.
    pub line: usize,
    /// The entry's `name`, when it has a string one.
    pub name: Option<String>,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "consumer entry {}", self.number)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " (line {})", self.line)
    }
}

/// Top level of the file: only `[[consumer]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    #[serde(default)]
    consumer: Vec<toml::Spanned<toml::Table>>,
}

/// One `[[consumer]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(rename = "match")]
    matches: Vec<String>,
    name: String,
    tier: Option<String>,
    timezone: Option<String>,
}

impl FromStr for ConsumerMap {
    type Err = ConsumerMapError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ConsumerMap::parse(text)
    }
}

impl ConsumerMap {
    /// Parses and validates a mapping file. An empty file is an empty map.
    ///
    /// # Errors
    ///
    /// [`ConsumerMapError::Toml`] for invalid TOML or an unknown top-level
    /// key, and [`ConsumerMapError::Entry`] for the first invalid entry, by
    /// the rules in the module documentation.
    pub fn parse(text: &str) -> Result<Self, ConsumerMapError> {
        let document: RawDocument =
            toml::from_str(text).map_err(|error| ConsumerMapError::Toml(error.to_string()))?;

        let mut map = ConsumerMap::default();
        let mut entries: Vec<EntryRef> = Vec::with_capacity(document.consumer.len());
        for (position, spanned) in document.consumer.into_iter().enumerate() {
            let entry = EntryRef {
                number: position + 1,
                line: line_of(text, spanned.span().start),
                name: spanned
                    .get_ref()
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .map(str::to_string),
            };
            let invalid = |reason: String| ConsumerMapError::Entry {
                entry: entry.clone(),
                reason,
            };

            let raw: RawEntry = toml::Value::Table(spanned.into_inner())
                .try_into()
                .map_err(|error: toml::de::Error| invalid(error.message().to_string()))?;
            let info = consumer_info(&raw).map_err(invalid)?;

            let consumer_index = map.consumers.len();
            for value in &raw.matches {
                check_match_value(value).map_err(invalid)?;
                match map.index.entry(value.clone()) {
                    Entry::Occupied(taken) => {
                        // Earlier entries are in `entries`; the current one is pushed after its checks.
                        let reason = match entries.get(*taken.get()) {
                            Some(owner) => format!(
                                "match {value:?} is already listed by {owner}; give each value to one entry only"
                            ),
                            None => format!("match {value:?} is listed twice; list it once"),
                        };
                        return Err(invalid(reason));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(consumer_index);
                    }
                }
            }
            map.consumers.push(info);
            entries.push(entry);
        }
        Ok(map)
    }

    /// Returns the consumer whose `match` lists `consumer`, else the first of
    /// `aliases` that some `match` lists.
    pub fn lookup(&self, consumer: &str, aliases: &[String]) -> Option<&ConsumerInfo> {
        std::iter::once(consumer)
            .chain(aliases.iter().map(String::as_str))
            .find_map(|value| self.index.get(value))
            .map(|&index| &self.consumers[index])
    }

    /// Consumers in the order of the file.
    pub fn consumers(&self) -> &[ConsumerInfo] {
        &self.consumers
    }

    /// Number of consumers.
    pub fn len(&self) -> usize {
        self.consumers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }
}

/// Validates the fields of one entry other than `match` values.
fn consumer_info(raw: &RawEntry) -> Result<ConsumerInfo, String> {
    if raw.name.trim().is_empty() {
        return Err("`name` is blank; give the consumer a display name".to_string());
    }
    if raw.matches.is_empty() {
        return Err(
            "`match` is empty; list the consumer ids or key hashes that name this consumer"
                .to_string(),
        );
    }
    if let Some(tier) = &raw.tier
        && tier.trim().is_empty()
    {
        return Err("`tier` is blank; remove it or name the tier".to_string());
    }
    let timezone = match &raw.timezone {
        None => None,
        Some(name) => Some(name.parse::<Tz>().map_err(|_| {
            format!(
                "invalid time zone {name:?}; use an IANA time zone name such as \"America/Chicago\" or \"UTC\""
            )
        })?),
    };
    Ok(ConsumerInfo {
        name: raw.name.clone(),
        tier: raw.tier.clone(),
        timezone,
    })
}

/// Checks one `match` value: non-blank, no surrounding whitespace, and a complete hash if it starts like one.
fn check_match_value(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("`match` has a blank value; remove it".to_string());
    }
    if value.trim() != value {
        return Err(format!(
            "match {value:?} has surrounding whitespace, so it would never match; remove the whitespace"
        ));
    }
    if starts_like_hash(value) && !is_hash(value) {
        return Err(format!(
            "match {value:?} starts like a key hash but is not `h<version>:` and 32 lowercase hex digits; copy the whole hash from the consumer column"
        ));
    }
    Ok(())
}

/// Returns true for `h`, one or more digits and `:`, the start of a key hash.
fn starts_like_hash(value: &str) -> bool {
    let Some(rest) = value.strip_prefix('h') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest.as_bytes().get(digits) == Some(&b':')
}

/// Line number, from 1, of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::identity::IdentityConfig;
    use crate::redact::Redactor;

    const ACME_HASH: &str = "h1:3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7";

    fn parse(text: &str) -> ConsumerMap {
        ConsumerMap::parse(text).expect("test mapping is valid")
    }

    fn parse_error(text: &str) -> String {
        ConsumerMap::parse(text)
            .expect_err("test mapping is invalid")
            .to_string()
    }

    fn example() -> ConsumerMap {
        parse(&format!(
            r#"
[[consumer]]
match = ["{ACME_HASH}", "partner-acme"]   # ids or hashes
name = "Acme Logistics"
tier = "gold"
timezone = "America/Chicago"

[[consumer]]
match = ["CN=device-7"]
name = "Device 7"
"#
        ))
    }

    #[test]
    fn parse_example() {
        let map = example();
        assert_eq!(map.len(), 2);
        assert_eq!(
            map.consumers()[0],
            ConsumerInfo {
                name: "Acme Logistics".to_string(),
                tier: Some("gold".to_string()),
                timezone: Some(chrono_tz::America::Chicago),
            }
        );
        assert_eq!(
            map.consumers()[1],
            ConsumerInfo {
                name: "Device 7".to_string(),
                tier: None,
                timezone: None,
            },
            "tier and timezone are optional"
        );
    }

    #[test]
    fn parse_empty_file() {
        assert!(parse("").is_empty());
        assert!(parse("# no consumers yet\n").is_empty());
    }

    #[test]
    fn parse_from_str() {
        let map: ConsumerMap = "[[consumer]]\nmatch = [\"a\"]\nname = \"A\""
            .parse()
            .expect("FromStr parses like ConsumerMap::parse");
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn lookup_by_consumer() {
        let map = example();
        let found = map
            .lookup("partner-acme", &[])
            .map(|info| info.name.as_str());
        assert_eq!(found, Some("Acme Logistics"));
        let found = map.lookup(ACME_HASH, &[]).map(|info| info.name.as_str());
        assert_eq!(found, Some("Acme Logistics"));
    }

    #[test]
    fn lookup_by_alias() {
        let map = example();
        let aliases = vec![
            "h0:00000000000000000000000000000000".to_string(),
            ACME_HASH.to_string(),
        ];
        let found = map
            .lookup("h2:ffffffffffffffffffffffffffffffff", &aliases)
            .map(|info| info.name.as_str());
        assert_eq!(found, Some("Acme Logistics"), "the second alias matches");
    }

    #[test]
    fn lookup_prefers_consumer() {
        let map = example();
        let aliases = vec!["partner-acme".to_string()];
        let found = map
            .lookup("CN=device-7", &aliases)
            .map(|info| info.name.as_str());
        assert_eq!(
            found,
            Some("Device 7"),
            "the consumer is tried before aliases"
        );
    }

    #[test]
    fn lookup_misses() {
        let map = example();
        assert_eq!(
            map.lookup("partner-ACME", &[]),
            None,
            "matching is case-sensitive"
        );
        assert_eq!(map.lookup("unknown", &["also-unknown".to_string()]), None);
    }

    #[test]
    fn lookup_after_key_rotation() {
        let key = "k3y-of-acme";
        let before = Redactor::new(b"first key".to_vec(), 1);
        let written_hash = before.hash(key);
        let map = parse(&format!(
            "[[consumer]]\nmatch = [\"{written_hash}\"]\nname = \"Acme Logistics\"\n"
        ));

        let after = Redactor::new(b"second key".to_vec(), 2)
            .with_previous_key(b"first key".to_vec(), 1)
            .expect("versions 2 and 1 are distinct");
        let mut event = Event::new("clf", 0);
        event
            .attributes
            .push(("x-api-key".to_string(), key.to_string()));
        let identity = IdentityConfig::default()
            .resolve(&event, &after)
            .expect("the API key matches");

        assert_ne!(
            identity.consumer, written_hash,
            "the consumer uses the new key"
        );
        let found = map
            .lookup(&identity.consumer, &identity.aliases)
            .map(|info| info.name.as_str());
        assert_eq!(
            found,
            Some("Acme Logistics"),
            "the old-key alias names the consumer"
        );
    }

    #[test]
    fn rejects_unknown_field() {
        let error = parse_error(
            "[[consumer]]\nmatch = [\"a\"]\nname = \"A\"\n\n[[consumer]]\nmatch = [\"b\"]\nname = \"Beta\"\ntiers = \"gold\"\n",
        );
        assert!(
            error.starts_with(
                "invalid consumer map: consumer entry 2 \"Beta\" (line 5): unknown field `tiers`"
            ),
            "{error}"
        );
    }

    #[test]
    fn rejects_unknown_top_level_key() {
        let error = parse_error("[[consumers]]\nmatch = [\"a\"]\nname = \"A\"\n");
        assert!(error.contains("unknown field `consumers`"), "{error}");
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn rejects_invalid_toml() {
        let error = parse_error("[[consumer]]\nmatch = [\"a\"\n");
        assert!(
            error.starts_with("invalid consumer map: TOML parse error at line"),
            "{error}"
        );
    }

    #[test]
    fn rejects_duplicate_across_entries() {
        let error = parse_error(&format!(
            "[[consumer]]\nmatch = [\"{ACME_HASH}\"]\nname = \"Acme\"\n\n[[consumer]]\nname = \"Copy\"\nmatch = [\"x\", \"{ACME_HASH}\"]\n"
        ));
        assert_eq!(
            error,
            format!(
                "invalid consumer map: consumer entry 2 \"Copy\" (line 5): match \"{ACME_HASH}\" is already listed by consumer entry 1 \"Acme\" (line 1); give each value to one entry only"
            )
        );
    }

    #[test]
    fn rejects_duplicate_in_entry() {
        let error = parse_error("[[consumer]]\nmatch = [\"a\", \"a\"]\nname = \"A\"\n");
        assert_eq!(
            error,
            "invalid consumer map: consumer entry 1 \"A\" (line 1): match \"a\" is listed twice; list it once"
        );
    }

    #[test]
    fn rejects_invalid_timezone() {
        let error = parse_error(
            "[[consumer]]\nmatch = [\"a\"]\nname = \"Acme\"\ntimezone = \"America/Chicag\"\n",
        );
        assert_eq!(
            error,
            "invalid consumer map: consumer entry 1 \"Acme\" (line 1): invalid time zone \"America/Chicag\"; use an IANA time zone name such as \"America/Chicago\" or \"UTC\""
        );
    }

    #[test]
    fn rejects_bad_entries() {
        let cases = [
            ("missing name", "match = [\"a\"]", "missing field `name`"),
            ("missing match", "name = \"A\"", "missing field `match`"),
            (
                "blank name",
                "match = [\"a\"]\nname = \" \"",
                "`name` is blank",
            ),
            (
                "empty match",
                "match = []\nname = \"A\"",
                "`match` is empty",
            ),
            (
                "blank value",
                "match = [\"\"]\nname = \"A\"",
                "`match` has a blank value",
            ),
            (
                "padded value",
                "match = [\" a\"]\nname = \"A\"",
                "match \" a\" has surrounding whitespace",
            ),
            (
                "truncated hash",
                "match = [\"h1:3f2a...\"]\nname = \"A\"",
                "match \"h1:3f2a...\" starts like a key hash",
            ),
            (
                "uppercase hash",
                "match = [\"h1:3F2A9C0D4E5B6A7F8091A2B3C4D5E6F7\"]\nname = \"A\"",
                "starts like a key hash",
            ),
            (
                "blank tier",
                "match = [\"a\"]\nname = \"A\"\ntier = \"\"",
                "`tier` is blank",
            ),
            ("wrong type", "match = \"a\"\nname = \"A\"", "invalid type"),
        ];
        for (case, body, expected) in cases {
            let error = parse_error(&format!("[[consumer]]\n{body}\n"));
            assert!(
                error.starts_with("invalid consumer map: consumer entry 1"),
                "{case}: {error}"
            );
            assert!(error.contains(expected), "{case}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "(\\[\\[consumer\\]\\]\n|match = \\[\"h1:[0-9a-f]{0,34}\"\\]\n|name = \"[^\"]{0,8}\"\n|timezone = \"[A-Za-z/_]{0,20}\"\n|tier = \"\"\n|.{0,12}\n){0,12}") {
            let _ = ConsumerMap::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_any_text(text in proptest::prelude::any::<String>()) {
            let _ = ConsumerMap::parse(&text);
        }
    }

    #[test]
    fn hash_prefix_detection() {
        assert!(starts_like_hash("h12:"));
        assert!(!starts_like_hash("h:abc"), "no version digits");
        assert!(!starts_like_hash("hello:world"));
        assert!(!starts_like_hash("partner-acme"));
    }
}
