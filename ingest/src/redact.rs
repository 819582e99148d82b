//! Keyed hashing of secrets before anything is stored.
//!
//! # Hash format
//!
//! A secret is replaced by `h{version}:{digest}`, where `digest` is the first
//! 16 bytes of HMAC-SHA256 over the secret, keyed with the store's hash key,
//! in lowercase hex (32 characters): `h1:5bdcc146bf60754e6a042426089575c7`.
//! The same key and secret always give the same hash, so a consumer identified
//! by an API key keeps one id, and the secret cannot be recovered without the
//! key. The version names the key, so hashes made before a key rotation can
//! be distinguished from those made after it.
//!
//! After a rotation, a redactor can keep the previous keys
//! ([`Redactor::with_previous_key`]). It still hashes only with the current
//! key, and [`Redactor::previous_hashes`] returns what the previous keys
//! would have made, so that a hash stored before the rotation can still be
//! matched to the same secret.
//!
//! Values that already have this form are not hashed again, so redacting a
//! redacted query or attribute returns it unchanged, and so does scrubbing a
//! scrubbed log line. NOTE: contrived text where rules overlap, such as
//! `Cookie: Bearer api_key=Bearer `, can still change on a second scrub.
//!
//! Empty values and `-` (what nginx logs for a missing header) are not
//! secrets and stay as they are. Query and URL values are percent-decoded
//! before hashing, so `api_key=a%2Bb` and the header value `a+b` give the
//! same hash.
//!
//! # Where secrets are found
//!
//! - [`Redactor::redact_query`] hashes the values of credential parameters:
//!   the names in [`CREDENTIAL_PARAMS`] and any name ending in `_token`,
//!   `_secret`, `_key` or `password`, compared case-insensitively after
//!   percent-decoding, with `-` and `_` treated alike.
//! - [`Redactor::redact_attribute`] decides by the attribute key, compared
//!   case-insensitively with `-` and `_` treated alike. The first matching
//!   rule applies:
//!   1. A key ending in `authorization` keeps the scheme word
//!      (`Bearer h1:…`, `Digest h1:…`) and hashes the credentials after it.
//!   2. A key ending in `cookie` or `set_cookie` keeps cookie names and hashes
//!      each cookie value (`sid=h1:…; theme=h1:…`). In `Set-Cookie` the
//!      attributes `Path`, `Expires`, `Max-Age`, `Domain`, `SameSite`,
//!      `Secure`, `HttpOnly`, `Partitioned` and `Priority` stay readable.
//!   3. A key naming a URL or request line (`request`, `request_line`, `uri`,
//!      `url`, `*_uri`, `*_url`, `*referer`, `*referrer`, `*location`) hashes
//!      the credential parameters of its query and fragment, and the password
//!      of a `user:password@` part.
//!   4. A key containing `password`, `passwd`, `secret`, `token`, `apikey`,
//!      `api_key` or `credential` (`x-api-key`, `x-csrf-token`, `db_password`)
//!      has its whole value hashed.
//!   5. Any other value goes through [`Redactor::scrub_text`].
//! - [`Redactor::scrub_text`] finds these secrets in free text such as a
//!   rejected line, and leaves every other byte unchanged:
//!   1. Credentials after the words `Bearer` and `Basic` (case-insensitive)
//!      when they look random: at least 8 characters with a digit, a symbol
//!      or an inner uppercase letter, or at least 16 characters. After
//!      `Digest`, its `name=value` list.
//!   2. Values of credential parameters written as `name=value`, up to `&`,
//!      whitespace, a quote, `;`, `,`, `#`, `|`, a backslash or a bracket, or
//!      written as `name="quoted"`. After `authorization=Bearer `, the
//!      credentials that follow the scheme word.
//!   3. Values of fields named like the keys of attribute rules 1, 2 and 4.
//!      The field may be JSON `"name": "value"`, JSON inside a JSON string
//!      (`\"name\":\"value\"`), or a header `Name: value`. A header value
//!      runs to the end of the line, a quote or a backslash.
//!   4. JWT-shaped tokens: `eyJ` and base64url, then `.` and base64url, then
//!      `.` and an optional signature, and further segments for JWE.
//!   5. The password in a `scheme://user:password@host` URL.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use hmac::{Hmac, Mac};
use memchr::{memchr_iter, memchr2, memchr2_iter, memmem};
use percent_encoding::{percent_decode, percent_decode_str};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Number of HMAC-SHA256 bytes kept in a hash, written as twice as many hex digits.
const HASH_BYTES: usize = 16;

/// Query parameter names whose values are credentials, written lowercase with `_` for `-`.
pub const CREDENTIAL_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "x_amz_signature",
    "x_amz_credential",
    "x_amz_security_token",
    "x_goog_signature",
    "x_goog_credential",
    "sessionid",
    "session_id",
    "session_token",
    "jsessionid",
    "phpsessid",
    "jwt",
    "code",
    "private_token",
];

/// Endings that make any query parameter name a credential.
const CREDENTIAL_PARAM_SUFFIXES: &[&str] = &["_token", "_secret", "_key", "password"];

/// Words that make an attribute key or a field name secret, written lowercase with `_` for `-`.
///
/// NOTE: counts such as `total_tokens` contain `token` and are hashed too.
const SECRET_KEY_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "credential",
];

/// `Set-Cookie` attributes whose values are kept.
const COOKIE_ATTRIBUTES: &[&str] = &[
    "expires",
    "max_age",
    "domain",
    "path",
    "samesite",
    "secure",
    "httponly",
    "partitioned",
    "priority",
];

/// Authentication scheme words that [`Redactor::scrub_text`] looks for in free text.
const TEXT_SCHEMES: [&[u8]; 3] = [b"bearer", b"basic", b"digest"];

/// Replaces secrets with a keyed hash.
///
/// `Debug` shows the key versions but never a key.
#[derive(Clone)]
pub struct Redactor {
    /// HMAC state with the key already absorbed, cloned for every hash.
    mac: HmacSha256,
    version: u32,
    /// Keys used before the current one, in the order they were added.
    previous: Vec<PreviousKey>,
}

/// A key retired by a rotation, with its version.
#[derive(Clone)]
struct PreviousKey {
    mac: HmacSha256,
    version: u32,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous_versions: Vec<u32> = self.previous.iter().map(|key| key.version).collect();
        f.debug_struct("Redactor")
            .field("version", &self.version)
            .field("previous_versions", &previous_versions)
            .finish_non_exhaustive()
    }
}

/// Error of [`Redactor::with_previous_key`]: two keys of one redactor share a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "hash key version {version} is given twice; every key, current or previous, needs its own version"
)]
pub struct DuplicateKeyVersion {
    pub version: u32,
}

impl Redactor {
    /// Creates a redactor that hashes with `key` and labels hashes with `version`.
    pub fn new(key: Vec<u8>, version: u32) -> Self {
        Redactor {
            mac: new_mac(&key),
            version,
            previous: Vec::new(),
        }
    }

    /// Adds a key that was current before a rotation, labelled with its `version`.
    ///
    /// Hashing still uses only the current key. Previous keys serve
    /// [`previous_hashes`](Self::previous_hashes), and are kept in the order
    /// they are added, most recent first by convention.
    ///
    /// # Errors
    ///
    /// [`DuplicateKeyVersion`] when `version` is the current version or the
    /// version of a previous key already added.
    pub fn with_previous_key(
        mut self,
        key: Vec<u8>,
        version: u32,
    ) -> Result<Self, DuplicateKeyVersion> {
        let version_in_use =
            version == self.version || self.previous.iter().any(|k| k.version == version);
        if version_in_use {
            return Err(DuplicateKeyVersion { version });
        }
        self.previous.push(PreviousKey {
            mac: new_mac(&key),
            version,
        });
        Ok(self)
    }

    /// Version of the hash key, written after `h` in every hash.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Versions of the previous keys, in the order they were added.
    pub fn previous_versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.previous.iter().map(|key| key.version)
    }

    /// Hashes `value` with each previous key, in the order the keys were added.
    ///
    /// Returns an empty vector, without allocating, when there is no previous key.
    pub fn previous_hashes(&self, value: &str) -> Vec<String> {
        self.previous
            .iter()
            .map(|key| hash_with(&key.mac, key.version, value.as_bytes()))
            .collect()
    }

    /// Hashes `value` as `h{version}:` and 32 lowercase hex digits.
    ///
    /// This always hashes, even a value that is already a hash.
    pub fn hash(&self, value: &str) -> String {
        self.hash_bytes(value.as_bytes())
    }

    fn hash_bytes(&self, value: &[u8]) -> String {
        hash_with(&self.mac, self.version, value)
    }

    /// Hashes the values of credential parameters in a query string (without `?`).
    ///
    /// Parameters, their order and empty parts are kept exactly. A parameter
    /// without `=` is left alone.
    pub fn redact_query(&self, query: &str) -> String {
        let mut secrets = Vec::new();
        query_secrets(query, 0..query.len(), &mut secrets);
        self.replace_secrets(query, secrets)
            .unwrap_or_else(|| query.to_string())
    }

    /// [`Redactor::redact_query`] that rewrites `query` only when it contains a secret.
    pub fn redact_query_in_place(&self, query: &mut String) {
        let mut secrets = Vec::new();
        query_secrets(query, 0..query.len(), &mut secrets);
        if let Some(redacted) = self.replace_secrets(query, secrets) {
            *query = redacted;
        }
    }

    /// Redacts one attribute value according to its key, by the rules in the module doc.
    pub fn redact_attribute(&self, key: &str, value: &str) -> String {
        self.redacted_attribute(key, value)
            .unwrap_or_else(|| value.to_string())
    }

    /// [`Redactor::redact_attribute`] that rewrites `value` only when it holds a secret.
    pub fn redact_attribute_in_place(&self, key: &str, value: &mut String) {
        if let Some(redacted) = self.redacted_attribute(key, value) {
            *value = redacted;
        }
    }

    /// Returns the redacted attribute value, or `None` when nothing in it is secret.
    fn redacted_attribute(&self, key: &str, value: &str) -> Option<String> {
        let whole = 0..value.len();
        let mut secrets = Vec::new();
        match cached_field_kind(key) {
            FieldKind::Authorization => authorization_secrets(value, whole, &mut secrets),
            FieldKind::Cookie => cookie_secrets(value, whole, CookieHeader::Cookie, &mut secrets),
            FieldKind::SetCookie => {
                cookie_secrets(value, whole, CookieHeader::SetCookie, &mut secrets)
            }
            FieldKind::Url => url_secrets(value, &mut secrets),
            FieldKind::Secret => secrets.push(SecretSpan::raw(whole)),
            FieldKind::Other => return self.scrubbed(value),
        }
        self.replace_secrets(value, secrets)
    }

    /// Replaces the secrets in free text with their hash, by the rules in the module doc.
    pub fn scrub_text(&self, text: &str) -> String {
        self.scrubbed(text).unwrap_or_else(|| text.to_string())
    }

    /// [`Redactor::scrub_text`] that rewrites `text` only when it holds a secret.
    pub fn scrub_in_place(&self, text: &mut String) {
        if let Some(scrubbed) = self.scrubbed(text) {
            *text = scrubbed;
        }
    }

    /// Returns the scrubbed text, or `None` when nothing in it is secret.
    fn scrubbed(&self, text: &str) -> Option<String> {
        if !may_contain_secret(text.as_bytes()) {
            return None;
        }
        self.replace_secrets(text, text_secrets(text))
    }

    /// Builds `text` with every secret span replaced by its hash, or returns
    /// `None` when no span needs one.
    ///
    /// Spans that overlap or touch are merged and hashed as one.
    fn replace_secrets(&self, text: &str, mut secrets: Vec<SecretSpan>) -> Option<String> {
        for secret in &mut secrets {
            secret.range = widen_to_char_boundaries(text, secret.range.clone());
        }
        secrets.retain(|secret| is_redactable(&text[secret.range.clone()]));
        if secrets.is_empty() {
            return None;
        }

        let mut output = String::with_capacity(text.len() + secrets.len() * 40);
        let mut copied_up_to = 0;
        for secret in merge_overlapping(secrets) {
            output.push_str(&text[copied_up_to..secret.range.start]);
            output.push_str(&self.hash_secret(&text[secret.range.clone()], secret.encoding));
            copied_up_to = secret.range.end;
        }
        output.push_str(&text[copied_up_to..]);
        Some(output)
    }

    fn hash_secret(&self, secret: &str, encoding: Encoding) -> String {
        match encoding {
            Encoding::Raw => self.hash(secret),
            Encoding::Percent => {
                let decoded: Cow<'_, [u8]> = percent_decode(secret.as_bytes()).into();
                self.hash_bytes(&decoded)
            }
        }
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Hashes `value` with a keyed HMAC state as `h{version}:` and 32 lowercase hex digits.
fn hash_with(mac: &HmacSha256, version: u32, value: &[u8]) -> String {
    let mut mac = mac.clone();
    mac.update(value);
    let digest = mac.finalize().into_bytes();

    let mut hash = format!("h{version}:");
    hash.push_str(&hex::encode(&digest[..HASH_BYTES]));
    hash
}

/// Returns true when `value` is exactly a hash made by a [`Redactor`], of any key version.
pub fn is_hash(value: &str) -> bool {
    hash_end(value.as_bytes(), 0) == Some(value.len())
}

/// Returns the `auth_scheme` column value for an `Authorization` header value.
///
/// `basic` and `bearer` are recognised case-insensitively, an empty value is
/// `none`, and every other scheme (`Digest`, `AWS4-HMAC-SHA256`, `Negotiate`,
/// a bare token) is `other`. Redacted values work too, because redaction keeps
/// the scheme word.
pub fn auth_scheme_of(authorization: &str) -> &'static str {
    let scheme = authorization
        .split_ascii_whitespace()
        .next()
        .unwrap_or_default();
    if scheme.is_empty() {
        "none"
    } else if scheme.eq_ignore_ascii_case("basic") {
        "basic"
    } else if scheme.eq_ignore_ascii_case("bearer") {
        "bearer"
    } else {
        "other"
    }
}

// ---------------------------------------------------------------------------
// Secret spans

/// How a secret is written in its text, which decides what is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Hashed as written.
    Raw,
    /// Percent-decoded first, as in a query string or URL.
    Percent,
}

/// Byte range of one secret in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecretSpan {
    range: Range<usize>,
    encoding: Encoding,
}

impl SecretSpan {
    fn raw(range: Range<usize>) -> Self {
        SecretSpan {
            range,
            encoding: Encoding::Raw,
        }
    }

    fn percent_encoded(range: Range<usize>) -> Self {
        SecretSpan {
            range,
            encoding: Encoding::Percent,
        }
    }
}

/// Returns false for values that need no hash: empty, `-`, or already a hash.
fn is_redactable(value: &str) -> bool {
    !value.is_empty() && value != "-" && !is_hash(value)
}

/// Sorts spans and merges those that overlap or touch.
///
/// Touching spans are merged because two hashes written back to back would
/// read as one new value, which a second pass would hash again. A span found
/// twice keeps its encoding, and any other merged span is hashed as written.
fn merge_overlapping(mut secrets: Vec<SecretSpan>) -> Vec<SecretSpan> {
    secrets.sort_by_key(|secret| (secret.range.start, secret.range.end));
    let mut merged: Vec<SecretSpan> = Vec::with_capacity(secrets.len());
    for secret in secrets {
        match merged.last_mut() {
            Some(last) if secret.range.start <= last.range.end => {
                if secret != *last {
                    last.encoding = Encoding::Raw;
                }
                last.range.end = last.range.end.max(secret.range.end);
            }
            _ => merged.push(secret),
        }
    }
    merged
}

/// Widens a byte range to the nearest char boundaries, so slicing cannot panic.
///
/// Every scanner cuts at ASCII bytes or at the end of the text, so ranges are
/// already on boundaries. Widening guards against a scanner bug by hashing a
/// little more instead of panicking or leaking.
fn widen_to_char_boundaries(text: &str, range: Range<usize>) -> Range<usize> {
    let mut start = range.start.min(text.len());
    let mut end = range.end.clamp(start, text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Returns the end of a hash that starts at `start`, if one does.
fn hash_end(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = bytes.get(start..)?.strip_prefix(b"h")?;
    let version_digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if version_digits == 0 {
        return None;
    }

    let digest = rest[version_digits..].strip_prefix(b":")?;
    let hex_digits = 2 * HASH_BYTES;
    let is_digest = digest.len() >= hex_digits
        && digest[..hex_digits]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    is_digest.then_some(start + 1 + version_digits + 1 + hex_digits)
}

// ---------------------------------------------------------------------------
// Names

/// Redaction rule that an attribute key or a field name selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// `Authorization`-like: scheme word, then credentials.
    Authorization,
    Cookie,
    SetCookie,
    /// A URL or request line, whose query may contain credentials.
    Url,
    /// The whole value is a secret.
    Secret,
    Other,
}

/// Attribute keys remembered per thread by [`cached_field_kind`], at most.
const FIELD_KIND_CACHE_LIMIT: usize = 4096;

thread_local! {
    static FIELD_KINDS: std::cell::RefCell<std::collections::HashMap<Box<str>, FieldKind, foldhash::fast::RandomState>> =
        Default::default();
}

/// [`field_kind`] through a per-thread cache: a format repeats the same
/// attribute keys on every line, and a lookup costs less than the rules.
fn cached_field_kind(name: &str) -> FieldKind {
    FIELD_KINDS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(&kind) = cache.get(name) {
            return kind;
        }
        if cache.len() >= FIELD_KIND_CACHE_LIMIT {
            cache.clear();
        }
        let kind = field_kind(name);
        cache.insert(name.into(), kind);
        kind
    })
}

fn field_kind(name: &str) -> FieldKind {
    // Most names are short: they are lowercased once into a buffer on the
    // stack, so every comparison below is a plain byte comparison.
    let mut buffer = [0u8; 64];
    let name = name.as_bytes();
    if name.len() <= buffer.len() {
        let normalised = &mut buffer[..name.len()];
        for (out, &b) in normalised.iter_mut().zip(name) {
            *out = normalise_name_byte(b);
        }
        return normalised_field_kind(normalised);
    }
    slow_field_kind(name)
}

/// [`field_kind`] of a name already passed through [`normalise_name_byte`].
fn normalised_field_kind(name: &[u8]) -> FieldKind {
    if name.ends_with(b"authorization") {
        FieldKind::Authorization
    } else if name.ends_with(b"set_cookie") {
        FieldKind::SetCookie
    } else if name.ends_with(b"cookie") {
        FieldKind::Cookie
    } else if matches!(name, b"request" | b"request_line" | b"uri" | b"url")
        || [&b"_uri"[..], b"_url", b"referer", b"referrer", b"location"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
    {
        FieldKind::Url
    } else if SECRET_KEY_WORDS.iter().any(|word| {
        // Names are short: a plain window scan beats building a searcher.
        name.windows(word.len())
            .any(|window| window == word.as_bytes())
    }) {
        FieldKind::Secret
    } else {
        FieldKind::Other
    }
}

/// [`field_kind`] of a name too long for the stack buffer.
fn slow_field_kind(name: &[u8]) -> FieldKind {
    if name_ends_with(name, "authorization") {
        FieldKind::Authorization
    } else if name_ends_with(name, "set_cookie") {
        FieldKind::SetCookie
    } else if name_ends_with(name, "cookie") {
        FieldKind::Cookie
    } else if is_url_name(name) {
        FieldKind::Url
    } else if SECRET_KEY_WORDS
        .iter()
        .any(|word| name_contains(name, word))
    {
        FieldKind::Secret
    } else {
        FieldKind::Other
    }
}

fn is_url_name(name: &[u8]) -> bool {
    ["request", "request_line", "uri", "url"]
        .iter()
        .any(|exact| name_eq(name, exact))
        || ["_uri", "_url", "referer", "referrer", "location"]
            .iter()
            .any(|suffix| name_ends_with(name, suffix))
}

/// Returns true for a query parameter name that carries a credential.
///
/// The name is percent-decoded first, and only its part after the last `&` or
/// `?` counts, which catches names glued to an encoded separator (`%26token`).
fn is_credential_param(name: &str) -> bool {
    let decoded = percent_decode_str(name).decode_utf8_lossy();
    let name = decoded
        .rsplit(['&', '?'])
        .next()
        .unwrap_or_default()
        .as_bytes();
    CREDENTIAL_PARAMS.iter().any(|exact| name_eq(name, exact))
        || CREDENTIAL_PARAM_SUFFIXES
            .iter()
            .any(|suffix| name_ends_with(name, suffix))
}

/// Lowercases a byte and reads `-` as `_`, the form the name lists are written in.
fn normalise_name_byte(b: u8) -> u8 {
    match b {
        b'-' => b'_',
        _ => b.to_ascii_lowercase(),
    }
}

fn name_eq(name: &[u8], pattern: &str) -> bool {
    name.len() == pattern.len()
        && name
            .iter()
            .zip(pattern.bytes())
            .all(|(&b, p)| normalise_name_byte(b) == p)
}

fn name_ends_with(name: &[u8], suffix: &str) -> bool {
    name.len() >= suffix.len() && name_eq(&name[name.len() - suffix.len()..], suffix)
}

fn name_contains(name: &[u8], word: &str) -> bool {
    name.windows(word.len()).any(|window| name_eq(window, word))
}

fn is_cookie_attribute(name: &str) -> bool {
    COOKIE_ATTRIBUTES
        .iter()
        .any(|attribute| name_eq(name.as_bytes(), attribute))
}

// ---------------------------------------------------------------------------
// Structured values: queries, URLs, authorization and cookie headers

/// Adds the values of credential parameters in the `&`-separated `range` of `text`.
fn query_secrets(text: &str, range: Range<usize>, secrets: &mut Vec<SecretSpan>) {
    let mut param_start = range.start;
    for param in text[range].split('&') {
        if let Some((name, value)) = param.split_once('=')
            && !value.is_empty()
            && is_credential_param(name)
        {
            let value_start = param_start + name.len() + 1;
            secrets.push(SecretSpan::percent_encoded(
                value_start..value_start + value.len(),
            ));
        }
        param_start += param.len() + 1;
    }
}

/// Adds the userinfo password, query credentials and fragment credentials of a URL or request line.
fn url_secrets(text: &str, secrets: &mut Vec<SecretSpan>) {
    let bytes = text.as_bytes();
    url_userinfo_secrets(bytes, secrets);

    let query_start = bytes.iter().position(|&b| b == b'?').map(|index| index + 1);
    let query_end =
        query_start.map(|start| find_byte_in(bytes, start, b"# ").unwrap_or(text.len()));
    if let (Some(start), Some(end)) = (query_start, query_end) {
        query_secrets(text, start..end, secrets);
    }

    let fragment_search_from = query_end.unwrap_or(0);
    if let Some(hash) = find_byte_in(bytes, fragment_search_from, b"#") {
        let start = hash + 1;
        let end = find_byte_in(bytes, start, b" ").unwrap_or(text.len());
        query_secrets(text, start..end, secrets);
    }
}

/// Adds the password of every `scheme://user:password@host` in `bytes`.
fn url_userinfo_secrets(bytes: &[u8], secrets: &mut Vec<SecretSpan>) {
    for scheme_end in SCHEME_SEPARATOR.find_iter(bytes) {
        let authority_start = scheme_end + 3;
        let authority_end =
            find_byte_in(bytes, authority_start, b"/?#\"'<> \t\r\n").unwrap_or(bytes.len());
        let authority = &bytes[authority_start..authority_end];

        let Some(at) = authority.iter().rposition(|&b| b == b'@') else {
            continue;
        };
        let Some(colon) = authority[..at].iter().position(|&b| b == b':') else {
            continue;
        };
        secrets.push(SecretSpan::percent_encoded(
            authority_start + colon + 1..authority_start + at,
        ));
    }
}

/// Adds the credentials of an `Authorization`-like value in `range`.
///
/// When the value starts with a scheme word and a blank, only what follows is
/// a secret. A value of one word is a bare token, unless it is only a known
/// scheme name such as `Bearer`.
fn authorization_secrets(text: &str, range: Range<usize>, secrets: &mut Vec<SecretSpan>) {
    let bytes = text.as_bytes();
    let value = trim_range(bytes, range);
    if value.is_empty() {
        return;
    }

    let scheme_end = find_byte_in(&bytes[..value.end], value.start, b" \t").unwrap_or(value.end);
    let scheme = &bytes[value.start..scheme_end];
    if scheme_end == value.end {
        if !TEXT_SCHEMES
            .iter()
            .any(|known| scheme.eq_ignore_ascii_case(known))
        {
            secrets.push(SecretSpan::raw(value));
        }
        return;
    }

    if scheme.iter().copied().all(is_token_byte) {
        let credentials_start = skip_blanks(bytes, scheme_end);
        secrets.push(SecretSpan::raw(credentials_start..value.end));
    } else {
        secrets.push(SecretSpan::raw(value));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieHeader {
    /// `Cookie`: every `name=value` pair is a cookie, and a part without `=` is a nameless cookie.
    Cookie,
    /// `Set-Cookie`: the first pair is the cookie and the rest are attributes.
    SetCookie,
}

/// Adds every cookie value in the `;`-separated `range` of `text`, keeping cookie names.
///
/// A `Set-Cookie` attribute keeps its value unless that value contains `=`,
/// which would mean that several headers were joined into one line.
fn cookie_secrets(
    text: &str,
    range: Range<usize>,
    header: CookieHeader,
    secrets: &mut Vec<SecretSpan>,
) {
    let bytes = text.as_bytes();
    let mut part_start = range.start;
    for (index, part) in text[range].split(';').enumerate() {
        let part_range = trim_range(bytes, part_start..part_start + part.len());
        part_start += part.len() + 1;
        let is_attribute_position = header == CookieHeader::SetCookie && index > 0;

        let part = &text[part_range.clone()];
        match part.split_once('=') {
            Some((name, value)) => {
                if is_attribute_position && is_cookie_attribute(name.trim()) && !value.contains('=')
                {
                    continue;
                }
                let value_start = part_range.start + name.len() + 1;
                secrets.push(SecretSpan::raw(trim_range(
                    bytes,
                    value_start..part_range.end,
                )));
            }
            None => {
                if is_attribute_position && is_cookie_attribute(part) {
                    continue;
                }
                secrets.push(SecretSpan::raw(part_range));
            }
        }
    }
}

/// Adds the secrets of a field value in `range` according to the field's kind.
fn field_secrets(text: &str, kind: FieldKind, range: Range<usize>, secrets: &mut Vec<SecretSpan>) {
    match kind {
        FieldKind::Authorization => authorization_secrets(text, range, secrets),
        FieldKind::Cookie => cookie_secrets(text, range, CookieHeader::Cookie, secrets),
        FieldKind::SetCookie => cookie_secrets(text, range, CookieHeader::SetCookie, secrets),
        FieldKind::Secret => secrets.push(SecretSpan::raw(trim_range(text.as_bytes(), range))),
        FieldKind::Url | FieldKind::Other => {}
    }
}

fn is_secret_field(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Authorization | FieldKind::Cookie | FieldKind::SetCookie | FieldKind::Secret
    )
}

// ---------------------------------------------------------------------------
// Free text

/// Searchers for the fixed needles of the scans, built once: building one
/// per call cost more than the search itself on short values.
static JWT_START: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("eyJ"));
static SCHEME_SEPARATOR: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new("://"));

/// Returns true when `bytes` contains `eyJ`, the start of every JWT.
pub(crate) fn contains_jwt_start(bytes: &[u8]) -> bool {
    JWT_START.find(bytes).is_some()
}

/// Returns false when no rule of [`text_secrets`] can match, which skips the scan.
///
/// Every rule needs an `=`, a `:`, `eyJ` or a scheme word.
fn may_contain_secret(bytes: &[u8]) -> bool {
    memchr2(b'=', b':', bytes).is_some()
        || contains_jwt_start(bytes)
        || TEXT_SCHEMES
            .iter()
            .any(|scheme| find_ignore_ascii_case(bytes, scheme, 0).is_some())
}

/// Finds the secrets of free text with the rules listed in the module doc.
fn text_secrets(text: &str) -> Vec<SecretSpan> {
    let mut secrets = Vec::new();
    scheme_credential_secrets(text.as_bytes(), &mut secrets);
    credential_param_secrets(text, &mut secrets);
    secret_field_secrets(text, &mut secrets);
    jwt_secrets(text.as_bytes(), &mut secrets);
    url_userinfo_secrets(text.as_bytes(), &mut secrets);
    secrets
}

/// Adds the credentials after each `Bearer`, `Basic` or `Digest` word.
fn scheme_credential_secrets(bytes: &[u8], secrets: &mut Vec<SecretSpan>) {
    for scheme in TEXT_SCHEMES {
        let mut search_from = 0;
        while let Some(start) = find_ignore_ascii_case(bytes, scheme, search_from) {
            search_from = start + scheme.len();
            if start > 0 && is_word_byte(bytes[start - 1]) {
                continue;
            }

            let credentials_start = skip_blanks(bytes, search_from);
            if credentials_start == search_from || hash_end(bytes, credentials_start).is_some() {
                continue;
            }

            if scheme == b"digest" {
                let end = auth_params_end(bytes, credentials_start);
                if end > credentials_start {
                    secrets.push(SecretSpan::raw(credentials_start..end));
                }
            } else {
                let end = token68_end(bytes, credentials_start);
                if looks_like_credential(&bytes[credentials_start..end]) {
                    secrets.push(SecretSpan::raw(credentials_start..end));
                }
            }
        }
    }
}

/// Returns true for a token after `Bearer` or `Basic` that is not an ordinary word.
///
/// This keeps prose such as "Basic authentication failed" intact. A
/// base64-encoded `user:pass` (`dXNlcjpwYXNz`) has an uppercase letter inside.
fn looks_like_credential(token: &[u8]) -> bool {
    token.len() >= 8
        && (token.len() >= 16
            || token.iter().any(|b| !b.is_ascii_alphabetic())
            || token[1..].iter().any(u8::is_ascii_uppercase))
}

/// Adds the values of credential parameters written as `name=value`.
fn credential_param_secrets(text: &str, secrets: &mut Vec<SecretSpan>) {
    let bytes = text.as_bytes();
    for equals in memchr_iter(b'=', bytes) {
        let name_start = param_name_start(bytes, equals);
        if name_start == equals || !is_credential_param(&text[name_start..equals]) {
            continue;
        }

        let value_start = equals + 1;
        match bytes.get(value_start) {
            Some(&quote @ (b'"' | b'\'')) => {
                let content_start = value_start + 1;
                let end = find_byte_in(bytes, content_start, &[quote]).unwrap_or(bytes.len());
                secrets.push(SecretSpan::raw(content_start..end));
            }
            _ => {
                let end = param_value_end(bytes, value_start);
                let is_authorization =
                    field_kind(&text[name_start..equals]) == FieldKind::Authorization;
                if is_authorization && end < bytes.len() && matches!(bytes[end], b' ' | b'\t') {
                    // `authorization=Bearer abc`: the credentials follow the scheme word.
                    let credentials_start = skip_blanks(bytes, end);
                    let credentials_end = credentials_end(bytes, credentials_start);
                    secrets.push(SecretSpan::raw(credentials_start..credentials_end));
                } else {
                    secrets.push(SecretSpan::percent_encoded(value_start..end));
                }
            }
        }
    }
}

/// Returns where the parameter name that ends at `equals` starts.
fn param_name_start(bytes: &[u8], equals: usize) -> usize {
    let mut start = equals;
    while start > 0 && is_param_name_byte(bytes[start - 1]) {
        start -= 1;
    }

    // A JSON string writes `&` as `\u0026`, which would otherwise join the name.
    let escaped_ampersand = b"u0026";
    if start > 0
        && bytes[start - 1] == b'\\'
        && bytes[start..equals]
            .get(..escaped_ampersand.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(escaped_ampersand))
    {
        start += escaped_ampersand.len();
    }
    start
}

fn param_value_end(bytes: &[u8], start: usize) -> usize {
    find_byte_in(bytes, start, b"& \t\r\n\"';,#<>(){}[]\\|").unwrap_or(bytes.len())
}

/// Adds the values of JSON fields and headers whose name is secret.
fn secret_field_secrets(text: &str, secrets: &mut Vec<SecretSpan>) {
    let bytes = text.as_bytes();
    for colon in memchr_iter(b':', bytes) {
        if let Some((name, escaped)) = quoted_name_before(bytes, colon) {
            let kind = field_kind(&text[name]);
            if is_secret_field(kind)
                && let Some(value) = json_value_after(bytes, colon + 1, escaped)
            {
                field_secrets(text, kind, value, secrets);
            }
        } else if let Some(name) = header_name_before(bytes, colon) {
            let kind = field_kind(&text[name]);
            if is_secret_field(kind) {
                let value = header_value_after(bytes, colon + 1);
                field_secrets(text, kind, value, secrets);
            }
        }
    }
}

/// Longest JSON field name looked at, which bounds the backward scan from each `:`.
const MAX_FIELD_NAME_LEN: usize = 64;

/// Returns the name of a JSON field `"name":` (or `\"name\":`) that ends at `colon`,
/// and whether it is escaped inside a JSON string.
fn quoted_name_before(bytes: &[u8], colon: usize) -> Option<(Range<usize>, bool)> {
    let mut closing_quote = colon;
    while closing_quote > 0 && matches!(bytes[closing_quote - 1], b' ' | b'\t') {
        closing_quote -= 1;
    }
    closing_quote = closing_quote.checked_sub(1)?;
    if bytes[closing_quote] != b'"' {
        return None;
    }

    let escaped = closing_quote > 0 && bytes[closing_quote - 1] == b'\\';
    let name_end = if escaped {
        closing_quote - 1
    } else {
        closing_quote
    };
    let mut name_start = name_end;
    while name_start > 0 && bytes[name_start - 1] != b'"' {
        if name_end - name_start >= MAX_FIELD_NAME_LEN {
            return None;
        }
        name_start -= 1;
    }
    if name_start == 0 {
        return None;
    }

    if escaped {
        let opening_escaped = name_start >= 2 && bytes[name_start - 2] == b'\\';
        opening_escaped.then_some((name_start..name_end, true))
    } else {
        Some((name_start..name_end, false))
    }
}

/// Returns the content of the JSON value that starts at `start`, or `None`
/// for `null`, `true`, `false`, objects and arrays.
fn json_value_after(bytes: &[u8], start: usize, escaped: bool) -> Option<Range<usize>> {
    let start = skip_whitespace(bytes, start);
    let rest = bytes.get(start..)?;

    if escaped && rest.starts_with(b"\\\"") {
        let content_start = start + 2;
        let end = memmem::find(&bytes[content_start..], b"\\\"")
            .map_or(bytes.len(), |offset| content_start + offset);
        return Some(content_start..end);
    }
    if !escaped && rest.starts_with(b"\"") {
        let content_start = start + 1;
        return Some(content_start..json_string_end(bytes, content_start));
    }

    let end = find_byte_in(bytes, start, b",}] \t\r\n\\\"").unwrap_or(bytes.len());
    let value = &bytes[start..end];
    let is_literal = value.is_empty()
        || matches!(value, b"null" | b"true" | b"false")
        || value.starts_with(b"{")
        || value.starts_with(b"[");
    (!is_literal).then_some(start..end)
}

/// Returns the index of the quote that closes a JSON string whose content starts at `start`.
fn json_string_end(bytes: &[u8], start: usize) -> usize {
    let mut index = start;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'"' => return index,
            _ => index += 1,
        }
    }
    bytes.len()
}

/// Returns the name of a header `Name:` that ends at `colon`.
fn header_name_before(bytes: &[u8], colon: usize) -> Option<Range<usize>> {
    let mut start = colon;
    while start > 0 && is_token_byte(bytes[start - 1]) {
        start -= 1;
    }

    // In a JSON string, a header after `\r\n` would otherwise start with `n`.
    if start > 0
        && bytes[start - 1] == b'\\'
        && matches!(bytes.get(start), Some(b'n' | b'r' | b't'))
    {
        start += 1;
    }
    (start < colon).then_some(start..colon)
}

/// Returns a header value: from after the blanks to the end of the line, a quote or a backslash.
fn header_value_after(bytes: &[u8], start: usize) -> Range<usize> {
    let start = skip_blanks(bytes, start);
    let end = find_byte_in(bytes, start, b"\r\n\"'\\").unwrap_or(bytes.len());
    trim_range(bytes, start..end)
}

/// Adds every JWT-shaped token: `eyJ` header, `.` payload, `.` optional signature.
fn jwt_secrets(bytes: &[u8], secrets: &mut Vec<SecretSpan>) {
    /// Length of `{"a":1}` in base64url, the shortest header with a member.
    const MIN_HEADER_LEN: usize = 10;

    for start in JWT_START.find_iter(bytes) {
        if start > 0 && is_base64url_byte(bytes[start - 1]) {
            continue;
        }
        let header_end = base64url_end(bytes, start);
        if header_end - start < MIN_HEADER_LEN || bytes.get(header_end) != Some(&b'.') {
            continue;
        }
        let payload_end = base64url_end(bytes, header_end + 1);
        if payload_end == header_end + 1 || bytes.get(payload_end) != Some(&b'.') {
            continue;
        }

        let mut end = base64url_end(bytes, payload_end + 1);
        while bytes.get(end) == Some(&b'.')
            && bytes.get(end + 1).is_some_and(|&b| is_base64url_byte(b))
        {
            end = base64url_end(bytes, end + 1);
        }
        secrets.push(SecretSpan::raw(start..end));
    }
}

// ---------------------------------------------------------------------------
// Byte scanning

/// Returns the end of credentials after a scheme word: an auth-param list or a token68.
fn credentials_end(bytes: &[u8], start: usize) -> usize {
    let params_end = auth_params_end(bytes, start);
    if params_end > start {
        params_end
    } else {
        token68_end(bytes, start)
    }
}

/// Returns the end of a comma-separated `name=value` list (RFC 9110 auth-params)
/// that starts at `start`, or `start` when there is none.
///
/// Values may be tokens, quoted strings or quoted strings escaped inside JSON (`\"…\"`).
fn auth_params_end(bytes: &[u8], start: usize) -> usize {
    let mut param_start = start;
    let mut end = start;
    loop {
        let name_end = scan_while(bytes, param_start, is_token_byte);
        if name_end == param_start {
            break;
        }
        let equals = skip_blanks(bytes, name_end);
        if bytes.get(equals) != Some(&b'=') {
            break;
        }
        let value_start = skip_blanks(bytes, equals + 1);
        let Some(value_end) = auth_param_value_end(bytes, value_start) else {
            break;
        };
        end = value_end;

        let comma = skip_blanks(bytes, value_end);
        if bytes.get(comma) != Some(&b',') {
            break;
        }
        param_start = skip_blanks(bytes, comma + 1);
    }
    end
}

fn auth_param_value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = bytes.get(start..)?;
    if rest.starts_with(b"\\\"") {
        let content_start = start + 2;
        let end = memmem::find(&bytes[content_start..], b"\\\"")
            .map_or(bytes.len(), |offset| content_start + offset + 2);
        return Some(end);
    }
    if rest.starts_with(b"\"") {
        let closing_quote = json_string_end(bytes, start + 1);
        return Some((closing_quote + 1).min(bytes.len()));
    }

    let end = scan_while(bytes, start, |b| {
        !(b.is_ascii_whitespace() || matches!(b, b'"' | b',' | b';' | b'\\'))
    });
    (end > start).then_some(end)
}

/// Returns the end of an RFC 9110 token68: base64 or base64url characters, then `=` padding.
fn token68_end(bytes: &[u8], start: usize) -> usize {
    let body_end = scan_while(bytes, start, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
    });
    scan_while(bytes, body_end, |b| b == b'=')
}

fn base64url_end(bytes: &[u8], start: usize) -> usize {
    scan_while(bytes, start, is_base64url_byte)
}

fn scan_while(bytes: &[u8], start: usize, accept: impl Fn(u8) -> bool) -> usize {
    let start = start.min(bytes.len());
    start + bytes[start..].iter().take_while(|&&b| accept(b)).count()
}

/// Skips spaces and tabs, but never a line break.
fn skip_blanks(bytes: &[u8], start: usize) -> usize {
    scan_while(bytes, start, |b| matches!(b, b' ' | b'\t'))
}

fn skip_whitespace(bytes: &[u8], start: usize) -> usize {
    scan_while(bytes, start, |b| b.is_ascii_whitespace())
}

/// Returns `range` without leading and trailing ASCII whitespace.
fn trim_range(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let mut start = range.start;
    let mut end = range.end;
    while start < end && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    start..end
}

/// Returns the index of the first byte at or after `start` that is one of `needles`.
fn find_byte_in(bytes: &[u8], start: usize, needles: &[u8]) -> Option<usize> {
    let offset = bytes
        .get(start..)?
        .iter()
        .position(|b| needles.contains(b))?;
    Some(start + offset)
}

fn find_ignore_ascii_case(haystack: &[u8], needle: &[u8], start: usize) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let rest = haystack.get(start..)?;
    // Candidates are found by their first byte in either case, with memchr.
    memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), rest)
        .find(|&offset| {
            rest.get(offset..offset + needle.len())
                .is_some_and(|window| window.eq_ignore_ascii_case(needle))
        })
        .map(|offset| start + offset)
}

/// RFC 9110 token characters, restricted to the ones header and parameter names use.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn is_param_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'%')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_base64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn redactor() -> Redactor {
        Redactor::new(b"apitrail test key".to_vec(), 1)
    }

    #[test]
    fn field_kind_paths_on_known_names() {
        let names = [
            "Authorization",
            "proxy-authorization",
            "Set-Cookie",
            "cookie",
            "REQUEST",
            "request_line",
            "x-callback-url",
            "Referer",
            "location",
            "db_password",
            "X-API-Key",
            "client_secret",
            "x-amzn-trace-id",
            "target:port",
            "ssl_cipher",
            "",
        ];
        let long = format!("{}_token", "x".repeat(80));
        for name in names.iter().copied().chain([long.as_str()]) {
            assert_eq!(
                field_kind(name),
                slow_field_kind(name.as_bytes()),
                "the two paths disagree on the kind of {name:?}"
            );
        }
        assert_eq!(
            field_kind(&long),
            FieldKind::Secret,
            "long names still work"
        );
    }

    proptest! {
        #[test]
        fn field_kind_paths_on_any_name(name in "[A-Za-z_:.-]{0,70}") {
            prop_assert_eq!(field_kind(&name), slow_field_kind(name.as_bytes()));
        }

        #[test]
        fn find_ignore_ascii_case_any_text(
            haystack in "[a-eA-E ]{0,40}",
            needle in "[a-eA-E]{1,4}",
            start in 0usize..45,
        ) {
            let (haystack, needle) = (haystack.as_bytes(), needle.to_ascii_lowercase());
            let expected = haystack.get(start..).and_then(|rest| {
                rest.windows(needle.len())
                    .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
                    .map(|offset| start + offset)
            });
            prop_assert_eq!(find_ignore_ascii_case(haystack, needle.as_bytes(), start), expected);
        }
    }

    // --- hash ---

    #[test]
    fn hash_matches_rfc4231_vector() {
        // RFC 4231 test case 2: HMAC-SHA256 with key "Jefe".
        let redactor = Redactor::new(b"Jefe".to_vec(), 1);
        assert_eq!(
            redactor.hash("what do ya want for nothing?"),
            "h1:5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn hash_format_has_version() {
        let hash = Redactor::new(b"k".to_vec(), 7).hash("secret");
        let digest = hash.strip_prefix("h7:").expect("hash starts with h7:");
        assert_eq!(digest.len(), 32);
        assert!(
            digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(is_hash(&hash));
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(redactor().hash("abc"), redactor().hash("abc"));
        assert_ne!(redactor().hash("abc"), redactor().hash("abd"));
    }

    #[test]
    fn hash_depends_on_key() {
        let other = Redactor::new(b"another key".to_vec(), 1);
        assert_ne!(redactor().hash("abc"), other.hash("abc"));
    }

    #[test]
    fn debug_hides_key() {
        let debug = format!("{:?}", Redactor::new(b"visible-key".to_vec(), 3));
        assert!(!debug.contains("visible-key"), "{debug}");
        assert!(debug.contains("version: 3"), "{debug}");
    }

    #[test]
    fn previous_hashes_match_old_redactor() {
        let old = Redactor::new(b"old key".to_vec(), 1);
        let older = Redactor::new(b"older key".to_vec(), 0);
        let rotated = Redactor::new(b"new key".to_vec(), 2)
            .with_previous_key(b"old key".to_vec(), 1)
            .and_then(|r| r.with_previous_key(b"older key".to_vec(), 0))
            .expect("versions 2, 1 and 0 are distinct");
        assert_eq!(
            rotated.previous_hashes("k3y"),
            vec![old.hash("k3y"), older.hash("k3y")],
            "previous hashes follow the order the keys were added"
        );
        assert!(
            rotated.hash("k3y").starts_with("h2:"),
            "the current key still hashes"
        );
        assert_eq!(rotated.previous_versions().collect::<Vec<_>>(), vec![1, 0]);
    }

    #[test]
    fn previous_hashes_empty_without_keys() {
        assert!(redactor().previous_hashes("k3y").is_empty());
    }

    #[test]
    fn previous_key_rejects_taken_version() {
        let current = Redactor::new(b"new key".to_vec(), 2).with_previous_key(b"x".to_vec(), 2);
        assert_eq!(
            current.err(),
            Some(DuplicateKeyVersion { version: 2 }),
            "the current version cannot be reused"
        );

        let twice = Redactor::new(b"new key".to_vec(), 2)
            .with_previous_key(b"a".to_vec(), 1)
            .and_then(|r| r.with_previous_key(b"b".to_vec(), 1));
        assert_eq!(
            twice.err(),
            Some(DuplicateKeyVersion { version: 1 }),
            "a previous version cannot be reused"
        );
    }

    #[test]
    fn debug_hides_previous_keys() {
        let redactor = Redactor::new(b"visible-key".to_vec(), 3)
            .with_previous_key(b"retired-key".to_vec(), 2)
            .expect("versions 3 and 2 are distinct");
        let debug = format!("{redactor:?}");
        assert!(!debug.contains("visible-key"), "{debug}");
        assert!(!debug.contains("retired-key"), "{debug}");
        assert!(debug.contains("previous_versions: [2]"), "{debug}");
    }

    #[test]
    fn is_hash_cases() {
        assert!(is_hash("h1:0123456789abcdef0123456789abcdef"));
        assert!(is_hash("h42:0123456789abcdef0123456789abcdef"));
        assert!(!is_hash("h1:0123456789ABCDEF0123456789ABCDEF"));
        assert!(!is_hash("h1:0123456789abcdef0123456789abcde"));
        assert!(!is_hash("h1:0123456789abcdef0123456789abcdef0"));
        assert!(!is_hash("h:0123456789abcdef0123456789abcdef"));
        assert!(!is_hash("x1:0123456789abcdef0123456789abcdef"));
        assert!(!is_hash(""));
    }

    // --- redact_query ---

    #[test]
    fn query_hashes_every_credential_name() {
        let redactor = redactor();
        let hash = redactor.hash("s3cr3t-value");
        for name in CREDENTIAL_PARAMS {
            let query = format!("page=2&{name}=s3cr3t-value&sort=asc");
            assert_eq!(
                redactor.redact_query(&query),
                format!("page=2&{name}={hash}&sort=asc"),
                "name {name}"
            );
        }
    }

    #[test]
    fn query_hashes_spelling_variants() {
        let redactor = redactor();
        let hash = redactor.hash("v4lue");
        let names = [
            "api-key",
            "API_KEY",
            "ApiKey",
            "Token",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "X-Goog-Signature",
            "api%5Fkey",
            "access%5ftoken",
        ];
        for name in names {
            assert_eq!(
                redactor.redact_query(&format!("{name}=v4lue")),
                format!("{name}={hash}"),
                "name {name}"
            );
        }
    }

    #[test]
    fn query_hashes_suffix_names() {
        let redactor = redactor();
        let hash = redactor.hash("v4lue");
        for name in [
            "stripe_token",
            "csrf-token",
            "app_secret",
            "aws_access_key",
            "newpassword",
            "user.password",
        ] {
            assert_eq!(
                redactor.redact_query(&format!("{name}=v4lue")),
                format!("{name}={hash}"),
                "name {name}"
            );
        }
    }

    #[test]
    fn query_keeps_other_params() {
        let query = "page=2&sort=name&monkey=1&keyword=x&tokens=5&keys=a&q=token%3Dabc";
        assert_eq!(redactor().redact_query(query), query);
    }

    #[test]
    fn query_keeps_parts_and_order() {
        let redactor = redactor();
        let hash = redactor.hash("x");
        assert_eq!(
            redactor.redact_query("&a=1&&token=x&b&"),
            format!("&a=1&&token={hash}&b&")
        );
        assert_eq!(redactor.redact_query(""), "");
        assert_eq!(redactor.redact_query("&&"), "&&");
    }

    #[test]
    fn query_in_place_matches_copy() {
        let redactor = redactor();
        for query in ["page=2&token=abc", "page=2", "", "api_key=a%2Bb&x"] {
            let mut in_place = query.to_string();
            redactor.redact_query_in_place(&mut in_place);
            assert_eq!(in_place, redactor.redact_query(query), "query {query:?}");
        }
    }

    #[test]
    fn query_leaves_param_without_value() {
        let redactor = redactor();
        assert_eq!(redactor.redact_query("token&page=2"), "token&page=2");
        assert_eq!(redactor.redact_query("token=&page=2"), "token=&page=2");
        assert_eq!(redactor.redact_query("token=-"), "token=-");
    }

    #[test]
    fn query_hashes_decoded_value() {
        let redactor = redactor();
        assert_eq!(
            redactor.redact_query("api_key=a%2Bb"),
            format!("api_key={}", redactor.hash("a+b"))
        );
        assert_eq!(
            redactor.redact_query("token=abc=="),
            format!("token={}", redactor.hash("abc=="))
        );
    }

    #[test]
    fn query_is_idempotent() {
        let redactor = redactor();
        let once = redactor.redact_query("api_key=AKIAIOSFODNN7EXAMPLE&page=2&sig=abc%2F12");
        assert_ne!(once, "api_key=AKIAIOSFODNN7EXAMPLE&page=2&sig=abc%2F12");
        assert_eq!(redactor.redact_query(&once), once);
    }

    // --- redact_attribute ---

    #[test]
    fn authorization_keeps_scheme() {
        let redactor = redactor();
        let cases = [
            (
                "authorization",
                "Bearer mF_9.B5f-4.1JqM",
                "Bearer",
                "mF_9.B5f-4.1JqM",
            ),
            (
                "Authorization",
                "Basic dXNlcjpwYXNz",
                "Basic",
                "dXNlcjpwYXNz",
            ),
            (
                "proxy-authorization",
                "Digest username=\"bob\", response=\"6629fae4\"",
                "Digest",
                "username=\"bob\", response=\"6629fae4\"",
            ),
            (
                "http_authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240131, Signature=fe5f80f7",
                "AWS4-HMAC-SHA256",
                "Credential=AKIAIOSFODNN7EXAMPLE/20240131, Signature=fe5f80f7",
            ),
        ];
        for (key, value, scheme, credentials) in cases {
            assert_eq!(
                redactor.redact_attribute(key, value),
                format!("{scheme} {}", redactor.hash(credentials)),
                "key {key}"
            );
        }
    }

    #[test]
    fn authorization_keeps_blanks() {
        let redactor = redactor();
        assert_eq!(
            redactor.redact_attribute("Proxy_Authorization", "bearer  tok3n-value "),
            format!("bearer  {} ", redactor.hash("tok3n-value"))
        );
    }

    #[test]
    fn authorization_without_scheme() {
        let redactor = redactor();
        assert_eq!(
            redactor.redact_attribute("authorization", "0123abcd"),
            redactor.hash("0123abcd")
        );
        assert_eq!(
            redactor.redact_attribute("authorization", "Bearer"),
            "Bearer"
        );
        assert_eq!(redactor.redact_attribute("authorization", "-"), "-");
        assert_eq!(redactor.redact_attribute("authorization", ""), "");
    }

    #[test]
    fn cookie_keeps_names() {
        let redactor = redactor();
        let expected = format!(
            "sid={}; theme={}",
            redactor.hash("31d4d96e407aad42"),
            redactor.hash("dark")
        );
        assert_eq!(
            redactor.redact_attribute("cookie", "sid=31d4d96e407aad42; theme=dark"),
            expected
        );
        assert_eq!(
            redactor.redact_attribute("HTTP_COOKIE", "sid=31d4d96e407aad42; theme=dark"),
            expected
        );
        assert_eq!(
            redactor.redact_attribute("Cookie", "nameless;sid="),
            format!("{};sid=", redactor.hash("nameless"))
        );
    }

    #[test]
    fn set_cookie_keeps_attributes() {
        let redactor = redactor();
        let value = "sid=31d4d96e407aad42; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax";
        assert_eq!(
            redactor.redact_attribute("Set-Cookie", value),
            format!(
                "sid={}; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax",
                redactor.hash("31d4d96e407aad42")
            )
        );

        let joined = "a=1; Path=/, b=2; Path=/";
        let redacted = redactor.redact_attribute("set_cookie", joined);
        assert!(!redacted.contains("b=2"), "{redacted}");
    }

    #[test]
    fn secret_keys_hash_whole_value() {
        let redactor = redactor();
        let keys = [
            "x-api-key",
            "X_API_KEY",
            "api-key",
            "apikey",
            "x-auth-token",
            "x-access-token",
            "x-amz-security-token",
            "X-CSRF-Token",
            "x-goog-api-key",
            "private-token",
            "db_password",
            "client-secret",
            "aws_credentials",
            "smtp_passwd",
        ];
        for key in keys {
            assert_eq!(
                redactor.redact_attribute(key, "k3y with spaces"),
                redactor.hash("k3y with spaces"),
                "key {key}"
            );
        }
    }

    #[test]
    fn url_keys_hash_query_credentials() {
        let redactor = redactor();
        let hash = redactor.hash("abc123");
        let cases = [
            (
                "request",
                "GET https://api.example.com:443/v1/orders?api_key=abc123&page=2 HTTP/1.1",
                format!("GET https://api.example.com:443/v1/orders?api_key={hash}&page=2 HTTP/1.1"),
            ),
            (
                "redirect_url",
                "https://app.example.com/cb#access_token=abc123&state=xyz",
                format!("https://app.example.com/cb#access_token={hash}&state=xyz"),
            ),
            (
                "transformed_uri",
                "/v1/items?token=abc123#top",
                format!("/v1/items?token={hash}#top"),
            ),
            (
                "referer",
                "https://example.com/login?code=abc123",
                format!("https://example.com/login?code={hash}"),
            ),
            (
                "callback_url",
                "https://bob:abc123@hooks.example.com/in",
                format!("https://bob:{hash}@hooks.example.com/in"),
            ),
            (
                "url",
                "https://example.com/search?q=token&page=2",
                "https://example.com/search?q=token&page=2".to_string(),
            ),
        ];
        for (key, value, expected) in cases {
            assert_eq!(redactor.redact_attribute(key, value), expected, "key {key}");
        }
    }

    #[test]
    fn other_keys_are_scrubbed() {
        let redactor = redactor();
        let value = "client sent Bearer mF_9.B5f-4.1JqM twice";
        assert_eq!(
            redactor.redact_attribute("note", value),
            format!(
                "client sent Bearer {} twice",
                redactor.hash("mF_9.B5f-4.1JqM")
            )
        );
    }

    #[test]
    fn other_keys_keep_plain_values() {
        let redactor = redactor();
        let cases = [
            ("user_agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("elb_status_code", "200"),
            ("target", "10.0.3.7:8080"),
            (
                "target_group_arn",
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012",
            ),
            ("time", "2024-01-31T10:00:00.123456Z"),
            ("vhost", "api.example.com"),
            ("note", "Basic authentication failed"),
        ];
        for (key, value) in cases {
            assert_eq!(redactor.redact_attribute(key, value), value, "key {key}");
        }
    }

    #[test]
    fn attributes_are_idempotent() {
        let redactor = redactor();
        let cases = [
            ("authorization", "Bearer mF_9.B5f-4.1JqM"),
            ("authorization", "0123abcd"),
            ("cookie", "sid=31d4d96e407aad42; theme=dark"),
            ("set-cookie", "sid=31d4d96e407aad42; Path=/"),
            ("x-api-key", "k3y"),
            ("request", "GET /v1/orders?api_key=abc123 HTTP/1.1"),
            ("note", "Bearer mF_9.B5f-4.1JqM and password=hunter2"),
        ];
        for (key, value) in cases {
            let once = redactor.redact_attribute(key, value);
            assert_ne!(once, value, "key {key}");
            assert_eq!(redactor.redact_attribute(key, &once), once, "key {key}");
        }
    }

    // --- scrub_text ---

    #[test]
    fn scrub_scheme_credentials() {
        let redactor = redactor();
        let cases = [
            ("Bearer mF_9.B5f-4.1JqM", "Bearer ", "mF_9.B5f-4.1JqM", ""),
            (
                "got bearer abcdefgh1234.",
                "got bearer ",
                "abcdefgh1234.",
                "",
            ),
            ("(BASIC dXNlcjpwYXNz)", "(BASIC ", "dXNlcjpwYXNz", ")"),
            (
                "Digest username=\"bob\", nonce=\"dcd98b\", response=\"6629fae4\" end",
                "Digest ",
                "username=\"bob\", nonce=\"dcd98b\", response=\"6629fae4\"",
                " end",
            ),
        ];
        for (text, before, secret, after) in cases {
            assert_eq!(
                redactor.scrub_text(text),
                format!("{before}{}{after}", redactor.hash(secret)),
                "text {text:?}"
            );
        }
    }

    #[test]
    fn scrub_keeps_scheme_prose() {
        let redactor = redactor();
        for text in [
            "Basic authentication failed",
            "bearer token expired",
            "Basic realm=\"api\"",
            "the digest of the file",
            "basic_auth",
        ] {
            assert_eq!(redactor.scrub_text(text), text);
        }
    }

    #[test]
    fn scrub_query_params() {
        let redactor = redactor();
        let hash = redactor.hash("VALUE1");
        let cases = [
            (
                "GET /a?api_key=VALUE1&b=2",
                format!("GET /a?api_key={hash}&b=2"),
            ),
            ("api_key=VALUE1 next", format!("api_key={hash} next")),
            ("\"/a?token=VALUE1\"", format!("\"/a?token={hash}\"")),
            ("pwd=VALUE1;path=/", format!("pwd={hash};path=/")),
            ("sig=VALUE1, more", format!("sig={hash}, more")),
            ("password=\"VALUE1\"", format!("password=\"{hash}\"")),
            ("x-api-key='VALUE1'", format!("x-api-key='{hash}'")),
            (
                "a=1\\u0026token=VALUE1\"",
                format!("a=1\\u0026token={hash}\""),
            ),
            (
                "authorization=Bearer VALUE1 rest",
                format!("authorization=Bearer {hash} rest"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redactor.scrub_text(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn scrub_query_value_matches_redact_query() {
        let redactor = redactor();
        let scrubbed = redactor.scrub_text("GET /v1?api_key=a%2Bb HTTP/1.1");
        assert_eq!(
            scrubbed,
            format!(
                "GET /v1?{} HTTP/1.1",
                redactor.redact_query("api_key=a%2Bb")
            )
        );
    }

    #[test]
    fn scrub_json_fields() {
        let redactor = redactor();
        let cases = [
            (
                r#"{"authorization": "Bearer mF_9.B5f-4.1JqM", "status": 401}"#,
                format!(
                    r#"{{"authorization": "Bearer {}", "status": 401}}"#,
                    redactor.hash("mF_9.B5f-4.1JqM")
                ),
            ),
            (
                r#"{"x-api-key":"k3y","user":"bob"}"#,
                format!(r#"{{"x-api-key":"{}","user":"bob"}}"#, redactor.hash("k3y")),
            ),
            (
                r#"{"password": 1234}"#,
                format!(r#"{{"password": {}}}"#, redactor.hash("1234")),
            ),
            (
                r#"{"client_secret":"a\"b","n":1}"#,
                format!(
                    r#"{{"client_secret":"{}","n":1}}"#,
                    redactor.hash(r#"a\"b"#)
                ),
            ),
            (
                r#"{"body":"{\"X-Api-Key\":\"k3y\"}"}"#,
                format!(
                    r#"{{"body":"{{\"X-Api-Key\":\"{}\"}}"}}"#,
                    redactor.hash("k3y")
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redactor.scrub_text(text), expected, "text {text}");
        }
    }

    #[test]
    fn scrub_keeps_json_literals() {
        let redactor = redactor();
        for text in [
            r#"{"password": null}"#,
            r#"{"token": "-"}"#,
            r#"{"credentials": {"user": "bob"}}"#,
            r#"{"id": 42, "name": "token"}"#,
        ] {
            assert_eq!(redactor.scrub_text(text), text);
        }
    }

    #[test]
    fn scrub_header_pairs() {
        let redactor = redactor();
        let cases = [
            (
                "Cookie: sid=31d4d96e407aad42; theme=dark",
                format!(
                    "Cookie: sid={}; theme={}",
                    redactor.hash("31d4d96e407aad42"),
                    redactor.hash("dark")
                ),
            ),
            (
                "\"X-Api-Key: k3y\" 200",
                format!("\"X-Api-Key: {}\" 200", redactor.hash("k3y")),
            ),
            (
                r#""Host: a\r\nAuthorization: Basic dXNlcjpwYXNz\r\n""#,
                format!(
                    r#""Host: a\r\nAuthorization: Basic {}\r\n""#,
                    redactor.hash("dXNlcjpwYXNz")
                ),
            ),
            (
                "curl -H 'X-Api-Key: abc123' https://example.com/",
                format!(
                    "curl -H 'X-Api-Key: {}' https://example.com/",
                    redactor.hash("abc123")
                ),
            ),
            (
                "x-csrf-token:abc\nnext line",
                format!("x-csrf-token:{}\nnext line", redactor.hash("abc")),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redactor.scrub_text(text), expected, "text {text:?}");
        }
    }

    #[test]
    fn scrub_jwt() {
        let redactor = redactor();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(
            redactor.scrub_text(&format!("sent {jwt} twice")),
            format!("sent {} twice", redactor.hash(jwt))
        );

        let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
        assert_eq!(
            redactor.scrub_text(&format!("[{unsigned}]")),
            format!("[{}]", redactor.hash(unsigned))
        );
    }

    #[test]
    fn scrub_keeps_jwt_lookalikes() {
        let redactor = redactor();
        for text in [
            "HeyJude.mp3.gz",
            "eyJ",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9. next",
        ] {
            assert_eq!(redactor.scrub_text(text), text);
        }
    }

    #[test]
    fn scrub_url_userinfo() {
        let redactor = redactor();
        assert_eq!(
            redactor.scrub_text("fetch https://bob:hunter2@db.example.com/x failed"),
            format!(
                "fetch https://bob:{}@db.example.com/x failed",
                redactor.hash("hunter2")
            )
        );
        let no_password = "fetch https://bob@example.com/x and http://example.com:8080/";
        assert_eq!(redactor.scrub_text(no_password), no_password);
    }

    #[test]
    fn scrub_keeps_plain_log_line() {
        let line = concat!(
            "203.0.113.7 - - [31/Jan/2024:10:00:00 +0000] ",
            "\"GET /v1/users/42?page=2&sort=name HTTP/1.1\" 200 512 ",
            "\"https://example.com/start\" \"Mozilla/5.0 (X11; Linux x86_64)\" ",
            "rt=0.012 uct=\"0.001\" host=api.example.com ü→日本"
        );
        assert_eq!(redactor().scrub_text(line), line);
    }

    #[test]
    fn scrub_removes_five_kinds() {
        let redactor = redactor();
        let line = concat!(
            "203.0.113.7 - - [31/Jan/2024:10:00:00 +0000] ",
            "\"GET /v1/orders?api_key=AKIAIOSFODNN7EXAMPLE&page=2 HTTP/1.1\" 401 0 ",
            "\"Authorization: Bearer mF_9.B5f-4.1JqM\" ",
            "{\"x-api-key\":\"k3y-for-tests-only\",\"password\":\"hunter2\"} ",
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ",
            "Cookie: sid=31d4d96e407aad42; theme=dark"
        );
        let scrubbed = redactor.scrub_text(line);
        for secret in [
            "AKIAIOSFODNN7EXAMPLE",
            "mF_9.B5f-4.1JqM",
            "k3y-for-tests-only",
            "hunter2",
            "eyJhbGciOiJIUzI1NiJ9",
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "31d4d96e407aad42",
        ] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.starts_with(
            "203.0.113.7 - - [31/Jan/2024:10:00:00 +0000] \"GET /v1/orders?api_key=h1:"
        ));
        assert!(scrubbed.contains("&page=2 HTTP/1.1\" 401 0 \"Authorization: Bearer h1:"));
        assert_eq!(redactor.scrub_text(&scrubbed), scrubbed);
    }

    #[test]
    fn scrub_handles_multibyte_text() {
        let redactor = redactor();
        let scrubbed = redactor.scrub_text("ü token=é秘密 ü Bearer ü日本 \"password\":\"ü\"");
        assert!(!scrubbed.contains("é秘密"), "{scrubbed}");
        assert!(scrubbed.starts_with("ü token=h1:"), "{scrubbed}");
        assert!(scrubbed.contains(" ü Bearer ü日本 "), "{scrubbed}");
        assert!(scrubbed.ends_with(&format!("\"password\":\"{}\"", redactor.hash("ü"))));
    }

    // --- auth_scheme_of ---

    #[test]
    fn auth_scheme_cases() {
        let cases = [
            ("Basic dXNlcjpwYXNz", "basic"),
            ("bearer abc", "bearer"),
            ("BEARER abc", "bearer"),
            ("Bearer h1:0123456789abcdef0123456789abcdef", "bearer"),
            ("  Bearer abc", "bearer"),
            ("Digest username=\"bob\"", "other"),
            ("AWS4-HMAC-SHA256 Credential=x", "other"),
            ("Negotiate YIIB", "other"),
            ("0123abcd", "other"),
            ("", "none"),
            ("   ", "none"),
        ];
        for (authorization, expected) in cases {
            assert_eq!(
                auth_scheme_of(authorization),
                expected,
                "value {authorization:?}"
            );
        }
    }

    // --- properties ---

    /// Text built from words and separators that name no credential and hold no scheme word or JWT.
    fn secret_free_text() -> impl Strategy<Value = String> {
        let words = prop::sample::select(vec![
            "GET",
            "POST",
            "/v1/users/42",
            "HTTP/1.1",
            "200",
            "status",
            "id",
            "name",
            "bob",
            "page",
            "limit",
            "sort",
            "example.com",
            "10:00:00",
            "2024-01-31T10:00:00Z",
            "Content-Type",
            "application/json",
            "https://example.com/a?b=c",
            "héllo",
            "日本",
            "-",
            "null",
            "x",
            "",
            "%2F",
            "Host",
            "monkey",
            "keyword",
        ]);
        let separators = prop::sample::select(vec![
            " ", "=", ":", "&", "\"", ",", "{", "}", ";", "?", "/", "\\", "\t", ": ", "\":\"",
        ]);
        prop::collection::vec((words, separators), 0..24).prop_map(|parts| {
            parts
                .into_iter()
                .flat_map(|(word, separator)| [word, separator])
                .collect()
        })
    }

    /// Text built from fragments that trigger every scanner, to look for panics.
    fn secret_like_text() -> impl Strategy<Value = String> {
        let fragments = prop::sample::select(vec![
            "Bearer ",
            "basic ",
            "Digest ",
            "a=\"",
            "\\\"",
            "\"",
            "token=",
            "api_key=",
            "\"authorization\":",
            "\\\"x-api-key\\\":",
            "Cookie: ",
            "Set-Cookie:",
            "eyJhbGciOiJIUzI1NiJ9",
            ".",
            "eyJ",
            "://",
            "u:p@",
            "@",
            ":",
            "=",
            ",",
            ";",
            "&",
            "é",
            "日本",
            "\\u0026",
            "h1:0123456789abcdef0123456789abcdef",
            "%",
            "%2",
            "%ZZ",
            "\r\n",
            "abcDEF123456",
            " ",
        ]);
        prop::collection::vec(fragments, 0..32).prop_map(|parts| parts.concat())
    }

    /// Log lines made of common fields, some of which carry secrets, separated by blanks.
    fn log_line_with_secrets() -> impl Strategy<Value = String> {
        let fields = prop::sample::select(vec![
            "203.0.113.7",
            "\"GET /v1/orders?api_key=AKIAIOSFODNN7EXAMPLE&page=2 HTTP/1.1\"",
            "\"POST /oauth/token?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz HTTP/2.0\"",
            "200",
            "\"Authorization: Bearer mF_9.B5f-4.1JqM\"",
            "authorization=\"Basic dXNlcjpwYXNz\"",
            "{\"x-api-key\":\"k3y-for-tests-only\",\"status\":401}",
            "{\"password\": \"hunter2\", \"user\": \"bob\"}",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "\"Cookie: sid=31d4d96e407aad42; theme=dark\"",
            "https://bob:hunter2@db.example.com/x",
            "Digest username=\"bob\", response=\"6629fae4\"",
            "[31/Jan/2024:10:00:00 +0000]",
            "\"Mozilla/5.0 (X11; Linux x86_64)\"",
            "rt=0.012",
            "ü→日本",
        ]);
        let separators = prop::sample::select(vec![" ", "  ", "\t", " | "]);
        prop::collection::vec((fields, separators), 0..12).prop_map(|parts| {
            parts
                .into_iter()
                .flat_map(|(field, separator)| [field, separator])
                .collect()
        })
    }

    proptest! {
        #[test]
        fn scrub_keeps_secret_free_text(text in secret_free_text()) {
            let scrubbed = redactor().scrub_text(&text);
            prop_assert!(scrubbed.len() <= text.len());
            prop_assert_eq!(scrubbed, text);
        }

        #[test]
        fn scrub_never_panics(text in any::<String>()) {
            redactor().scrub_text(&text);
        }

        #[test]
        fn scrub_never_panics_on_secret_like_text(text in secret_like_text()) {
            let redactor = redactor();
            redactor.scrub_text(&text);
            redactor.redact_query(&text);
            redactor.redact_attribute("cookie", &text);
            redactor.redact_attribute("set-cookie", &text);
            redactor.redact_attribute("authorization", &text);
            redactor.redact_attribute("redirect_url", &text);
        }

        #[test]
        fn scrub_hides_log_line_secrets(text in log_line_with_secrets()) {
            let redactor = redactor();
            let once = redactor.scrub_text(&text);
            for secret in [
                "AKIAIOSFODNN7EXAMPLE",
                "SplxlOBeZQQYbYS6WxSbIA",
                "mF_9.B5f-4.1JqM",
                "dXNlcjpwYXNz",
                "k3y-for-tests-only",
                "hunter2",
                "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "31d4d96e407aad42",
                "6629fae4",
            ] {
                prop_assert!(!once.contains(secret), "{} in {}", secret, once);
            }
            prop_assert_eq!(redactor.scrub_text(&once), once);
        }

        #[test]
        fn query_keeps_part_count(query in "[a-z_=&%0-9A-F]{0,40}") {
            let redacted = redactor().redact_query(&query);
            prop_assert_eq!(redacted.split('&').count(), query.split('&').count());
        }
    }
}
