//! Per-segment helpers shared by the learned tree and the template matchers.

use std::borrow::Cow;

use super::rules::{TemplatedSegment, template_segment};

/// Kind of one path segment, before anything is learned about its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SegmentKind<'a> {
    /// The empty segment before a leading `/`, between repeated slashes or after a trailing one.
    Empty,
    /// A placeholder from an endpoint templated earlier, such as `{id}` or `{id}.json`.
    Placeholder,
    /// A value that a fixed rule turns into a placeholder at once.
    Typed(TemplatedSegment<'a>),
    /// Anything else: a word, a version, a slug or a name.
    Literal,
}

pub(super) fn classify_segment(segment: &str) -> SegmentKind<'_> {
    if segment.is_empty() {
        SegmentKind::Empty
    } else if is_placeholder(segment) {
        SegmentKind::Placeholder
    } else if let Some(templated) = template_segment(segment) {
        SegmentKind::Typed(templated)
    } else {
        SegmentKind::Literal
    }
}

/// Returns true for a segment that an earlier templating wrote, such as `{name}` or `{id}.json`.
pub(super) fn is_placeholder(segment: &str) -> bool {
    segment.starts_with('{') && segment.contains('}')
}

/// Returns the object id of a typed segment: the segment without its kept extension.
pub(super) fn typed_value<'a>(segment: &'a str, templated: &TemplatedSegment<'_>) -> &'a str {
    match templated.extension {
        Some(extension) => segment
            .get(..segment.len().saturating_sub(extension.len() + 1))
            .unwrap_or(segment),
        None => segment,
    }
}

/// Writes `%XX` escapes with uppercase hex digits, so `a%2fb` and `a%2Fb` are one value.
///
/// Decoded paths keep an escape only where decoding would change the path:
/// `%2F`, which must not become a separator, and bytes that are not UTF-8.
/// Allocates only when a segment contains a lowercase escape.
pub(super) fn normalise_escapes(segment: &str) -> Cow<'_, str> {
    let bytes = segment.as_bytes();
    let needs_change = memchr::memchr_iter(b'%', bytes).any(|at| {
        let escape = bytes.get(at + 1..at + 3);
        escape.is_some_and(|hex| {
            hex.iter().all(u8::is_ascii_hexdigit) && hex.iter().any(u8::is_ascii_lowercase)
        })
    });
    if !needs_change {
        return Cow::Borrowed(segment);
    }

    let mut output = String::with_capacity(segment.len());
    let mut rest = segment;
    while let Some(at) = rest.find('%') {
        output.push_str(&rest[..at]);
        let escape = rest.get(at + 1..at + 3);
        match escape {
            Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                output.push('%');
                output.push_str(&hex.to_ascii_uppercase());
                rest = &rest[at + 3..];
            }
            _ => {
                output.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    output.push_str(rest);
    Cow::Owned(output)
}

/// Child key of a typed segment, such as `{id}` or `{uuid}.png`, built without allocating.
///
/// The longest key is 14 bytes: a 7-byte placeholder, a dot and a 6-byte
/// extension, which is the longest that `split_extension` accepts.
pub(super) struct TypedKey {
    bytes: [u8; 16],
    len: usize,
}

impl TypedKey {
    pub(super) fn new(templated: &TemplatedSegment<'_>) -> Self {
        let mut key = TypedKey {
            bytes: [0; 16],
            len: 0,
        };
        key.push(templated.placeholder.as_str());
        if let Some(extension) = templated.extension {
            key.push(".");
            key.push(extension);
        }
        key
    }

    /// Appends ASCII text. Bytes past the buffer would be dropped, but keys have at most 14.
    fn push(&mut self, text: &str) {
        for &byte in text.as_bytes() {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
    }

    pub(super) fn as_str(&self) -> &str {
        // Placeholders and extensions are ASCII, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("{}")
    }
}

/// Seed of the hashes of literal values at a position.
pub(super) const VALUE_SEED: u64 = 0x7661_6c75_6573_0001;
/// Seed of the hashes of consumers at a position.
pub(super) const CONSUMER_SEED: u64 = 0x636f_6e73_756d_0001;

/// Hashes bytes with 64-bit FNV-1a, then the SplitMix64 finaliser to spread the bits.
///
/// Saved states contain these hashes and nodes merge them, so the function
/// must give the same result on every build and machine, which the standard
/// library's hashers do not promise.
pub(super) fn stable_hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(hash)
}

/// SplitMix64 finaliser (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
pub(super) fn mix(mut value: u64) -> u64 {
    value ^= value >> 30;
    value = value.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value ^= value >> 27;
    value = value.wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_segment_kinds() {
        assert_eq!(classify_segment(""), SegmentKind::Empty);
        assert_eq!(classify_segment("{id}"), SegmentKind::Placeholder);
        assert_eq!(classify_segment("{id}.json"), SegmentKind::Placeholder);
        assert_eq!(classify_segment("users"), SegmentKind::Literal);
        assert_eq!(classify_segment("v2beta1"), SegmentKind::Literal);
        assert!(
            matches!(classify_segment("42"), SegmentKind::Typed(_)),
            "an integer is typed"
        );
    }

    #[test]
    fn typed_value_drops_extension() {
        let templated = template_segment("123.json").expect("123.json is typed");
        assert_eq!(typed_value("123.json", &templated), "123");
        let templated = template_segment("42").expect("42 is typed");
        assert_eq!(typed_value("42", &templated), "42");
    }

    #[test]
    fn typed_key_texts() {
        let templated = template_segment("123.json").expect("123.json is typed");
        assert_eq!(TypedKey::new(&templated).as_str(), "{id}.json");
        let templated =
            template_segment("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.").expect("a JWT is typed");
        assert_eq!(TypedKey::new(&templated).as_str(), "{token}");
        let templated = template_segment("550e8400-e29b-41d4-a716-446655440000.tar123")
            .expect("a UUID with an extension is typed");
        assert_eq!(TypedKey::new(&templated).as_str(), "{uuid}.tar123");
    }

    #[test]
    fn normalise_escapes_uppercases_hex() {
        assert_eq!(normalise_escapes("a%2fb"), "a%2Fb");
        assert_eq!(normalise_escapes("a%2Fb"), "a%2Fb");
        assert_eq!(normalise_escapes("%e4%E5x"), "%E4%E5x");
        assert!(
            matches!(normalise_escapes("plain"), Cow::Borrowed(_)),
            "a segment without escapes is not copied"
        );
    }

    #[test]
    fn normalise_escapes_keeps_malformed() {
        assert_eq!(normalise_escapes("100%"), "100%");
        assert_eq!(normalise_escapes("%zz%4"), "%zz%4");
        assert_eq!(normalise_escapes("%%ab"), "%%AB");
        assert_eq!(normalise_escapes("ü%aü"), "ü%aü");
    }

    #[test]
    fn stable_hash_fixed_values() {
        // These values are stored in saved states, so they must never change.
        assert_eq!(stable_hash(0, b""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(stable_hash(VALUE_SEED, b"acme"), 0x0fe7_8498_8bf7_dfc5);
        assert_ne!(
            stable_hash(VALUE_SEED, b"acme"),
            stable_hash(CONSUMER_SEED, b"acme"),
            "seeds separate values from consumers"
        );
    }
}
