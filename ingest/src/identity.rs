//! Consumer identity: who made each call, for the `consumer`, `consumer_kind`
//! and `auth_scheme` columns.
//!
//! [`IdentityConfig::resolve`] reads a raw event before redaction, because it
//! hashes API keys and decodes JWTs, and tries the configured rules in order.
//! The first rule that finds a consumer wins. The default order is the order
//! of this table:
//!
//! | rule (`rule =`) | reads | consumer | `consumer_kind` |
//! |---|---|---|---|
//! | `gateway` | the consumer a parser set, else attributes such as Kong's `consumer.id` | the value | `gateway` |
//! | `api_key` | attributes such as `x-api-key` | keyed hash of the key | `api_key` |
//! | `jwt` | `Authorization: Bearer <JWT>` | claims `iss\|sub`, else `client_id`, else `azp` | `jwt` |
//! | `mtls` | the client certificate subject, such as `ssl_client_s_dn` | the subject | `mtls` |
//! | `basic` | `Authorization: Basic`, else a remote-user attribute | the user | `basic` |
//! | `client_ip` | the `client_ip` column | the address | `ip` |
//!
//! # Matching
//!
//! - Attribute names match case-insensitively, because header names are
//!   case-insensitive. A rule reads the first of its attribute names that is
//!   present with a value, in the order the rule lists them. An empty or
//!   blank value and `-` (what nginx logs for a missing header) count as
//!   missing.
//! - `gateway` takes the event's `consumer` when a parser set it with kind
//!   `gateway` or with no kind, as the API Gateway parser does for `apiKeyId`
//!   and the authorizer's `principalId`.
//! - `api_key` hashes the value exactly as logged with [`Redactor::hash`], so
//!   the consumer equals the value that redaction later stores in the
//!   attribute. A value that is already a hash (`h1:…`) is kept as it is.
//!   [`Identity::aliases`] contains the hashes under the redactor's previous
//!   keys, so a mapping entry written before a key rotation still matches.
//! - `jwt` decodes the payload WITHOUT verifying the signature, so the claims
//!   name the consumer a caller claims to be, which is what a gateway that
//!   verified the token has accepted. Each entry of `claims` is one claim
//!   name or several joined by `|`. An entry matches when every claim it
//!   names is a non-empty string, and the consumer is their values joined by
//!   `|`. A claim that is not a string counts as missing. A token does not
//!   match when it is longer than [`MAX_JWT_LEN`], does not have exactly
//!   three `.`-separated segments (so encrypted JWE tokens do not match), or
//!   its payload is not base64url of one JSON object.
//! - `basic` takes the user before the first `:` of the decoded credentials
//!   and discards the password, which is never part of the result.
//!   Credentials without a colon do not match, because the user cannot be
//!   separated from the password. An empty user does not match. A user with an
//!   empty password (`key:`) is how several APIs send an API key, so that
//!   user is hashed like an API key and gets kind `api_key`. When the header
//!   does not match, the rule reads `user_fields`, such as the `remote_user`
//!   of the common log format.
//!
//! # Authentication scheme
//!
//! [`Identity::auth_scheme`] is `api_key`, `bearer`, `basic` or `mtls` when
//! the matching rule read a credential of that scheme. After `gateway`, a
//! remote user or `client_ip`, it is [`auth_scheme_of`] the first logged
//! `Authorization` value (see [`IdentityConfig::authorization_fields`]), else
//! `api_key` or `mtls` when an attribute of an `api_key` or `mtls` rule is
//! present, else `None`. The value `none` is never returned, because missing
//! fields do not prove a request had no credentials: a log that lacks a
//! header does not show that the request lacked it, and a key can travel in
//! the query string.
//!
//! # Speed
//!
//! `resolve` runs for every event. A rule whose attributes are absent
//! allocates nothing: names are compared with `eq_ignore_ascii_case` instead
//! of lowercased copies, and base64 is decoded into stack buffers. The JSON
//! parser may allocate its error for a malformed JWT, and a claim with JSON
//! escapes is unescaped into a new string.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::event::Event;
use crate::redact::{Redactor, auth_scheme_of, is_hash};

/// Maximum length in bytes of a JWT that the `jwt` rule decodes.
///
/// nginx (`large_client_header_buffers 4 8k`) and Apache httpd
/// (`LimitRequestFieldSize 8190`) reject longer header lines by default.
pub const MAX_JWT_LEN: usize = 8 * 1024;

/// Maximum number of claim names in a `jwt` rule, counted over all its `claims` entries.
pub const MAX_JWT_CLAIM_NAMES: usize = 16;

/// Maximum length in base64 characters of `Basic` credentials that the `basic` rule decodes.
pub const MAX_BASIC_LEN: usize = 1024;

/// Attributes that name a gateway's consumer: Kong, then AWS API Gateway.
pub const DEFAULT_GATEWAY_FIELDS: &[&str] = &[
    "consumer.id",
    "consumer.username",
    "identity.apiKeyId",
    "apiKeyId",
    "authorizer.principalId",
    "principalId",
];

/// Attributes that carry an API key header: plain, Kong, OpenTelemetry and nginx variable names.
pub const DEFAULT_API_KEY_FIELDS: &[&str] = &[
    "x-api-key",
    "apikey",
    "api-key",
    "request.headers.x-api-key",
    "request.headers.apikey",
    "http.request.header.x-api-key",
    "http_x_api_key",
];

/// Attributes that carry the `Authorization` header: plain, Kong, OpenTelemetry and nginx variable names.
pub const DEFAULT_AUTHORIZATION_FIELDS: &[&str] = &[
    "authorization",
    "request.headers.authorization",
    "http.request.header.authorization",
    "http_authorization",
];

/// JWT claim entries tried in order: issuer and subject together, then the OAuth client.
pub const DEFAULT_JWT_CLAIMS: &[&str] = &["iss|sub", "client_id", "azp"];

/// Attributes that carry the client certificate subject: nginx, AWS API Gateway, Elastic Common Schema.
pub const DEFAULT_MTLS_FIELDS: &[&str] = &[
    "ssl_client_s_dn",
    "identity.clientCert.subjectDN",
    "tls.client.subject",
    "tls.client.x509.subject.distinguished_name",
];

/// Attributes that carry the user a web server authenticated, as the CLF parser names it.
pub const DEFAULT_REMOTE_USER_FIELDS: &[&str] = &["remote_user"];

const KIND_GATEWAY: &str = "gateway";
const KIND_API_KEY: &str = "api_key";
const KIND_JWT: &str = "jwt";
const KIND_MTLS: &str = "mtls";
const KIND_BASIC: &str = "basic";
const KIND_IP: &str = "ip";

const SCHEME_API_KEY: &str = "api_key";
const SCHEME_BEARER: &str = "bearer";
const SCHEME_BASIC: &str = "basic";
const SCHEME_MTLS: &str = "mtls";

/// Decoded size of the longest accepted JWT payload, as `base64::decoded_len_estimate` computes it.
const JWT_BUFFER_LEN: usize = MAX_JWT_LEN.div_ceil(4) * 3;
const BASIC_BUFFER_LEN: usize = MAX_BASIC_LEN.div_ceil(4) * 3;

/// Base64url with or without padding, as JWT libraries emit it.
const JWT_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with or without padding, for `Basic` credentials.
const BASIC_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

// ---------------------------------------------------------------------------
// Configuration

/// Identity rules and where to find the `Authorization` header.
///
/// Deserializes from a table such as this TOML, where omitted keys take the
/// defaults above and unknown keys are rejected:
///
/// ```toml
/// authorization_fields = ["authorization"]
///
/// [[rules]]
/// rule = "api_key"
/// fields = ["x-api-key"]
///
/// [[rules]]
/// rule = "jwt"
/// claims = ["client_id", "iss|sub"]
///
/// [[rules]]
/// rule = "client_ip"
/// ```
///
/// Deserializing validates the result with [`IdentityConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Rules in the order they are tried.
    pub rules: Vec<IdentityRule>,
    /// Attributes holding the `Authorization` header, read for `auth_scheme`
    /// when the matching rule did not read a credential.
    pub authorization_fields: Vec<String>,
}

/// One way to identify a consumer. See the module documentation for each rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentityRule {
    /// The consumer a parser set, else the first of `fields`.
    Gateway {
        #[serde(default = "default_gateway_fields")]
        fields: Vec<String>,
    },
    /// The keyed hash of the API key in the first of `fields`.
    ///
    /// NOTE: a key sent in the query string (`?api_key=`) is not read, so such
    /// a call falls through to the later rules.
    ApiKey {
        #[serde(default = "default_api_key_fields")]
        fields: Vec<String>,
    },
    /// Claims of the unverified JWT in the first of `fields` (`Authorization` values).
    Jwt {
        #[serde(default = "default_authorization_fields")]
        fields: Vec<String>,
        /// Claim entries tried in order, each a name or names joined by `|`.
        #[serde(default = "default_jwt_claims")]
        claims: Vec<String>,
    },
    /// The client certificate subject in the first of `fields`.
    Mtls {
        #[serde(default = "default_mtls_fields")]
        fields: Vec<String>,
    },
    /// The user of `Basic` credentials in the first of `fields` (`Authorization`
    /// values), else the user name in the first of `user_fields`.
    Basic {
        #[serde(default = "default_authorization_fields")]
        fields: Vec<String>,
        #[serde(default = "default_remote_user_fields")]
        user_fields: Vec<String>,
    },
    /// The `client_ip` column.
    ClientIp,
}

impl IdentityRule {
    /// Name of the rule as written in the configuration (`rule = "api_key"`).
    pub fn name(&self) -> &'static str {
        match self {
            IdentityRule::Gateway { .. } => "gateway",
            IdentityRule::ApiKey { .. } => "api_key",
            IdentityRule::Jwt { .. } => "jwt",
            IdentityRule::Mtls { .. } => "mtls",
            IdentityRule::Basic { .. } => "basic",
            IdentityRule::ClientIp => "client_ip",
        }
    }
}

/// Error of [`IdentityConfig::validate`], naming the rule by its position from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityConfigError {
    #[error(
        "identity rule {position} ({rule}) reads no attribute: list attribute names in {lists}, or remove the rule"
    )]
    NoFields {
        position: usize,
        rule: &'static str,
        lists: &'static str,
    },
    #[error(
        "identity rule {position} (jwt) lists no claims: list claim entries such as \"iss|sub\" and \"client_id\" in `claims`, or remove the rule"
    )]
    NoClaims { position: usize },
    #[error(
        "identity rule {position} ({rule}) has the invalid name {name:?} in `{list}`: names must be non-empty and have no surrounding whitespace"
    )]
    InvalidName {
        position: usize,
        rule: &'static str,
        list: &'static str,
        name: String,
    },
    #[error(
        "identity rule {position} (jwt) names {count} claims in `claims`, more than the maximum of {max}"
    )]
    TooManyClaims {
        position: usize,
        count: usize,
        max: usize,
    },
    #[error(
        "`authorization_fields` has the invalid name {name:?}: names must be non-empty and have no surrounding whitespace"
    )]
    InvalidAuthorizationField { name: String },
}

impl Default for IdentityConfig {
    /// Returns the rules in the order of the module documentation, each with its default attribute names.
    fn default() -> Self {
        IdentityConfig {
            rules: default_rules(),
            authorization_fields: default_authorization_fields(),
        }
    }
}

impl<'de> Deserialize<'de> for IdentityConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawIdentityConfig {
            #[serde(default = "default_rules")]
            rules: Vec<IdentityRule>,
            #[serde(default = "default_authorization_fields")]
            authorization_fields: Vec<String>,
        }

        let raw = RawIdentityConfig::deserialize(deserializer)?;
        let config = IdentityConfig {
            rules: raw.rules,
            authorization_fields: raw.authorization_fields,
        };
        config.validate().map_err(de::Error::custom)?;
        Ok(config)
    }
}

impl IdentityConfig {
    /// Checks that every rule reads at least one attribute and that every name is usable.
    ///
    /// An empty `rules` list is valid and resolves no consumer.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the rule by its position from 1.
    pub fn validate(&self) -> Result<(), IdentityConfigError> {
        if let Some(name) = self.authorization_fields.iter().find(|n| !is_valid_name(n)) {
            return Err(IdentityConfigError::InvalidAuthorizationField { name: name.clone() });
        }
        for (index, rule) in self.rules.iter().enumerate() {
            validate_rule(index + 1, rule)?;
        }
        Ok(())
    }

    /// Finds the consumer of a raw, not yet redacted event by the first rule that matches.
    ///
    /// Returns `None` when no rule matches, for example when the only rule
    /// left is `client_ip` and the event has no client address.
    pub fn resolve(&self, event: &Event, redactor: &Redactor) -> Option<Identity> {
        self.rules
            .iter()
            .find_map(|rule| self.apply_rule(rule, event, redactor))
    }

    fn apply_rule(
        &self,
        rule: &IdentityRule,
        event: &Event,
        redactor: &Redactor,
    ) -> Option<Identity> {
        let attributes = event.attributes.as_slice();
        match rule {
            IdentityRule::Gateway { fields } => self.gateway_identity(fields, event),
            IdentityRule::ApiKey { fields } => {
                let (_, key) = find_attribute(attributes, fields)?;
                Some(api_key_identity(key, redactor, SCHEME_API_KEY))
            }
            IdentityRule::Jwt { fields, claims } => {
                let (_, authorization) = find_attribute(attributes, fields)?;
                let token = credentials_of(authorization, "bearer")?;
                let consumer = jwt_consumer(token, claims)?;
                Some(Identity::new(consumer, KIND_JWT, Some(SCHEME_BEARER)))
            }
            IdentityRule::Mtls { fields } => {
                let (_, subject) = find_attribute(attributes, fields)?;
                Some(Identity::new(
                    subject.trim().to_string(),
                    KIND_MTLS,
                    Some(SCHEME_MTLS),
                ))
            }
            IdentityRule::Basic {
                fields,
                user_fields,
            } => self.basic_identity(fields, user_fields, attributes, redactor),
            IdentityRule::ClientIp => {
                let address = event.client_ip.as_deref().filter(|ip| !is_missing(ip))?;
                Some(Identity::new(
                    address.trim().to_string(),
                    KIND_IP,
                    self.observed_scheme(attributes),
                ))
            }
        }
    }

    fn gateway_identity(&self, fields: &[String], event: &Event) -> Option<Identity> {
        let attributes = event.attributes.as_slice();
        let set_by_gateway = event
            .consumer_kind
            .as_deref()
            .is_none_or(|kind| kind == KIND_GATEWAY);
        if set_by_gateway
            && let Some(consumer) = event.consumer.as_deref()
            && !is_missing(consumer)
        {
            return Some(Identity::new(
                consumer.trim().to_string(),
                KIND_GATEWAY,
                self.observed_scheme(attributes),
            ));
        }

        let (name, consumer) = find_attribute(attributes, fields)?;
        let scheme = if names_api_key(name) {
            Some(SCHEME_API_KEY)
        } else {
            self.observed_scheme(attributes)
        };
        Some(Identity::new(
            consumer.trim().to_string(),
            KIND_GATEWAY,
            scheme,
        ))
    }

    fn basic_identity(
        &self,
        fields: &[String],
        user_fields: &[String],
        attributes: &[(String, String)],
        redactor: &Redactor,
    ) -> Option<Identity> {
        let from_header = find_attribute(attributes, fields)
            .and_then(|(_, authorization)| credentials_of(authorization, "basic"))
            .and_then(|credentials| basic_credentials_identity(credentials, redactor));
        if from_header.is_some() {
            return from_header;
        }

        let (_, user) = find_attribute(attributes, user_fields)?;
        Some(Identity::new(
            user.trim().to_string(),
            KIND_BASIC,
            self.observed_scheme(attributes),
        ))
    }

    /// Returns the scheme that the logged credentials show, for rules that read none themselves.
    fn observed_scheme(&self, attributes: &[(String, String)]) -> Option<&'static str> {
        if let Some((_, authorization)) = find_attribute(attributes, &self.authorization_fields) {
            return Some(auth_scheme_of(authorization));
        }
        for rule in &self.rules {
            let (fields, scheme) = match rule {
                IdentityRule::ApiKey { fields } => (fields, SCHEME_API_KEY),
                IdentityRule::Mtls { fields } => (fields, SCHEME_MTLS),
                _ => continue,
            };
            if find_attribute(attributes, fields).is_some() {
                return Some(scheme);
            }
        }
        None
    }
}

fn validate_rule(position: usize, rule: &IdentityRule) -> Result<(), IdentityConfigError> {
    let name = rule.name();
    let check_names =
        |list: &'static str, names: &[String]| match names.iter().find(|n| !is_valid_name(n)) {
            Some(invalid) => Err(IdentityConfigError::InvalidName {
                position,
                rule: name,
                list,
                name: invalid.clone(),
            }),
            None => Ok(()),
        };
    let no_fields = |lists: &'static str| IdentityConfigError::NoFields {
        position,
        rule: name,
        lists,
    };

    match rule {
        IdentityRule::Gateway { fields }
        | IdentityRule::ApiKey { fields }
        | IdentityRule::Mtls { fields } => {
            if fields.is_empty() {
                return Err(no_fields("`fields`"));
            }
            check_names("fields", fields)
        }
        IdentityRule::Jwt { fields, claims } => {
            if fields.is_empty() {
                return Err(no_fields("`fields`"));
            }
            check_names("fields", fields)?;
            if claims.is_empty() {
                return Err(IdentityConfigError::NoClaims { position });
            }
            for entry in claims {
                if let Some(invalid) = entry.split('|').find(|n| !is_valid_name(n)) {
                    return Err(IdentityConfigError::InvalidName {
                        position,
                        rule: name,
                        list: "claims",
                        name: invalid.to_string(),
                    });
                }
            }
            let count = claim_name_count(claims);
            if count > MAX_JWT_CLAIM_NAMES {
                return Err(IdentityConfigError::TooManyClaims {
                    position,
                    count,
                    max: MAX_JWT_CLAIM_NAMES,
                });
            }
            Ok(())
        }
        IdentityRule::Basic {
            fields,
            user_fields,
        } => {
            if fields.is_empty() && user_fields.is_empty() {
                return Err(no_fields("`fields` or `user_fields`"));
            }
            check_names("fields", fields)?;
            check_names("user_fields", user_fields)
        }
        IdentityRule::ClientIp => Ok(()),
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.trim() == name
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn default_rules() -> Vec<IdentityRule> {
    vec![
        IdentityRule::Gateway {
            fields: default_gateway_fields(),
        },
        IdentityRule::ApiKey {
            fields: default_api_key_fields(),
        },
        IdentityRule::Jwt {
            fields: default_authorization_fields(),
            claims: default_jwt_claims(),
        },
        IdentityRule::Mtls {
            fields: default_mtls_fields(),
        },
        IdentityRule::Basic {
            fields: default_authorization_fields(),
            user_fields: default_remote_user_fields(),
        },
        IdentityRule::ClientIp,
    ]
}

fn default_gateway_fields() -> Vec<String> {
    strings(DEFAULT_GATEWAY_FIELDS)
}

fn default_api_key_fields() -> Vec<String> {
    strings(DEFAULT_API_KEY_FIELDS)
}

fn default_authorization_fields() -> Vec<String> {
    strings(DEFAULT_AUTHORIZATION_FIELDS)
}

fn default_jwt_claims() -> Vec<String> {
    strings(DEFAULT_JWT_CLAIMS)
}

fn default_mtls_fields() -> Vec<String> {
    strings(DEFAULT_MTLS_FIELDS)
}

fn default_remote_user_fields() -> Vec<String> {
    strings(DEFAULT_REMOTE_USER_FIELDS)
}

// ---------------------------------------------------------------------------
// Result

/// The consumer of one event and how it was identified.
///
/// Holds no secret: an API key appears only as its keyed hashes, and a
/// password never appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Value for the `consumer` column.
    pub consumer: String,
    /// Value for the `consumer_kind` column: `gateway`, `api_key`, `jwt`, `mtls`, `basic` or `ip`.
    pub kind: &'static str,
    /// Value for the `auth_scheme` column (`basic`, `bearer`, `api_key`,
    /// `mtls` or `other`), or `None` when the event does not show it.
    pub auth_scheme: Option<&'static str>,
    /// Hashes of the same API key under the redactor's previous keys, in the
    /// order the keys were added. Empty for consumers that are not key hashes.
    pub aliases: Vec<String>,
}

impl Identity {
    fn new(consumer: String, kind: &'static str, auth_scheme: Option<&'static str>) -> Self {
        Identity {
            consumer,
            kind,
            auth_scheme,
            aliases: Vec::new(),
        }
    }
}

/// Identifies a consumer by an API key, which leaves this function only as hashes.
fn api_key_identity(key: &str, redactor: &Redactor, scheme: &'static str) -> Identity {
    if is_hash(key) {
        // Already redacted upstream: hashing again would give a new id per pass.
        return Identity::new(key.to_string(), KIND_API_KEY, Some(scheme));
    }
    Identity {
        consumer: redactor.hash(key),
        kind: KIND_API_KEY,
        auth_scheme: Some(scheme),
        aliases: redactor.previous_hashes(key),
    }
}

// ---------------------------------------------------------------------------
// Attributes and Authorization values

/// Returns the name and value of the first attribute listed in `names`, by
/// the order of `names`, skipping missing values.
fn find_attribute<'e>(
    attributes: &'e [(String, String)],
    names: &[String],
) -> Option<(&'e str, &'e str)> {
    for name in names {
        for (key, value) in attributes {
            // Chosen for speed: `eq_ignore_ascii_case` compares lengths first,
            // so most pairs cost one comparison and no lowercased copy is made.
            if key.eq_ignore_ascii_case(name) && !is_missing(value) {
                return Some((key, value));
            }
        }
    }
    None
}

/// Returns true for values that mean an absent header: empty, blank or `-`.
fn is_missing(value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || value == "-"
}

/// Returns true for attribute names of API key ids, such as `identity.apiKeyId`.
fn names_api_key(name: &str) -> bool {
    name.as_bytes()
        .windows(b"apikey".len())
        .any(|window| window.eq_ignore_ascii_case(b"apikey"))
}

/// Returns the credentials after the scheme word of an `Authorization`
/// value, such as the token of `Bearer <token>`, when the scheme is `scheme`.
///
/// The scheme is compared case-insensitively. Credentials that contain
/// whitespace are not one token and do not match.
fn credentials_of<'v>(authorization: &'v str, scheme: &str) -> Option<&'v str> {
    let value = authorization.trim_ascii();
    let (word, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !word.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let credentials = rest.trim_ascii_start();
    let single_token =
        !credentials.is_empty() && !credentials.bytes().any(|b| b.is_ascii_whitespace());
    single_token.then_some(credentials)
}

/// Identifies the user of `Basic` credentials, discarding the password.
fn basic_credentials_identity(credentials: &str, redactor: &Redactor) -> Option<Identity> {
    if credentials.len() > MAX_BASIC_LEN {
        return None;
    }
    // Chosen for speed: a stack buffer keeps a failed decode free of allocation.
    let mut buffer = [0u8; BASIC_BUFFER_LEN];
    let decoded_len = BASIC_ENGINE.decode_slice(credentials, &mut buffer).ok()?;
    let decoded = &buffer[..decoded_len];

    let colon = memchr::memchr(b':', decoded)?;
    // NOTE: a user name in a charset other than UTF-8, such as ISO-8859-1
    // from older clients, does not match.
    let user = std::str::from_utf8(&decoded[..colon]).ok()?;
    if user.trim().is_empty() {
        return None;
    }
    let password_is_empty = colon + 1 == decoded.len();
    if password_is_empty {
        return Some(api_key_identity(user, redactor, SCHEME_BASIC));
    }
    Some(Identity::new(
        user.to_string(),
        KIND_BASIC,
        Some(SCHEME_BASIC),
    ))
}

// ---------------------------------------------------------------------------
// JWT claims

/// Returns the consumer named by the claims of an unverified JWS compact token.
fn jwt_consumer(token: &str, claims: &[String]) -> Option<String> {
    if token.len() > MAX_JWT_LEN {
        return None;
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let well_formed = !header.is_empty()
        && !payload.is_empty()
        && [header, payload, signature]
            .iter()
            .all(|segment| segment.bytes().all(is_base64url_byte));
    if !well_formed {
        return None;
    }

    // Chosen for speed: a stack buffer keeps a failed decode free of allocation,
    // and claim values borrow from it unless they contain JSON escapes.
    let mut buffer = [0u8; JWT_BUFFER_LEN];
    let decoded_len = JWT_ENGINE.decode_slice(payload, &mut buffer).ok()?;
    let values = ClaimValues::parse(&buffer[..decoded_len], claims)?;
    values.consumer(claims)
}

fn is_base64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='
}

/// Claim names of all entries in order, one per `|`-separated part, up to the maximum.
fn claim_names(claims: &[String]) -> impl Iterator<Item = &str> {
    claims
        .iter()
        .flat_map(|entry| entry.split('|'))
        .take(MAX_JWT_CLAIM_NAMES)
}

fn claim_name_count(claims: &[String]) -> usize {
    claims.iter().map(|entry| entry.split('|').count()).sum()
}

/// String values of the wanted claims, one slot per name of [`claim_names`].
struct ClaimValues<'de> {
    slots: [Option<Cow<'de, str>>; MAX_JWT_CLAIM_NAMES],
}

impl<'de> ClaimValues<'de> {
    /// Reads the wanted claims of a JSON object; `None` when the payload is not exactly one object.
    fn parse(payload: &'de [u8], claims: &[String]) -> Option<Self> {
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        let values = (&mut deserializer)
            .deserialize_map(ClaimsVisitor { claims })
            .ok()?;
        deserializer.end().ok()?;
        Some(values)
    }

    /// Joins the values of the first entry whose claims are all present.
    ///
    /// Entries past [`MAX_JWT_CLAIM_NAMES`] names, which validation rejects,
    /// never match.
    fn consumer(&self, claims: &[String]) -> Option<String> {
        let mut end = 0;
        for entry in claims {
            let start = end;
            end += entry.split('|').count();
            let values = self.slots.get(start..end)?;
            if values.iter().all(Option::is_some) {
                let parts: Vec<&str> = values.iter().flatten().map(|value| &**value).collect();
                return Some(parts.join("|"));
            }
        }
        None
    }
}

struct ClaimsVisitor<'c> {
    claims: &'c [String],
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = ClaimValues<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object of JWT claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = ClaimValues {
            slots: std::array::from_fn(|_| None),
        };
        while let Some(JsonText(name)) = map.next_key::<JsonText<'de>>()? {
            if !claim_names(self.claims).any(|wanted| wanted == name) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            // A repeated claim takes its last value, as RFC 7519 section 4 allows.
            let ClaimValue(value) = map.next_value::<ClaimValue<'de>>()?;
            for (slot, wanted) in claim_names(self.claims).enumerate() {
                if wanted == name {
                    values.slots[slot] = value.clone();
                }
            }
        }
        Ok(values)
    }
}

/// A JSON string that borrows from the input unless it contains escapes.
struct JsonText<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for JsonText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = JsonText<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(JsonText(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(JsonText(Cow::Owned(text.to_string())))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// A claim value: `Some` for a non-empty string, `None` for any other JSON value.
struct ClaimValue<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for ClaimValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = ClaimValue<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(ClaimValue(
                    (!text.trim().is_empty()).then_some(Cow::Borrowed(text)),
                ))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(ClaimValue(
                    (!text.trim().is_empty()).then(|| Cow::Owned(text.to_string())),
                ))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ClaimValue(None))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ClaimValue(None))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ClaimValue(None))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ClaimValue(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ClaimValue(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ClaimValue(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ClaimValue(None))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use proptest::prelude::*;

    fn redactor() -> Redactor {
        Redactor::new(b"identity test key".to_vec(), 1)
    }

    fn event(attributes: &[(&str, &str)]) -> Event {
        let mut event = Event::new("clf", 0);
        event.client_ip = Some("203.0.113.7".to_string());
        event.attributes = attributes
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        event
    }

    fn resolve(event: &Event) -> Option<Identity> {
        IdentityConfig::default().resolve(event, &redactor())
    }

    fn config(toml_text: &str) -> IdentityConfig {
        toml::from_str(toml_text).expect("test configuration is valid")
    }

    fn config_error(toml_text: &str) -> String {
        toml::from_str::<IdentityConfig>(toml_text)
            .expect_err("test configuration is invalid")
            .to_string()
    }

    /// Builds an unsigned-looking JWS compact token with `payload` as its claims JSON.
    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn bearer(payload: &str) -> String {
        format!("Bearer {}", jwt(payload))
    }

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    // --- gateway ---

    #[test]
    fn gateway_uses_parser_consumer() {
        let mut event = event(&[("x-api-key", "k3y")]);
        event.consumer = Some("qqvqzk33df".to_string());
        event.consumer_kind = Some("gateway".to_string());
        let identity = resolve(&event).expect("a parser consumer matches");
        assert_eq!(identity.consumer, "qqvqzk33df");
        assert_eq!(identity.kind, "gateway");
        assert_eq!(
            identity.auth_scheme,
            Some("api_key"),
            "an API key header shows the scheme"
        );
    }

    #[test]
    fn gateway_reads_kong_consumer() {
        let event = event(&[
            ("consumer.username", "acme"),
            ("consumer.id", "8f1c-42"),
            ("request.headers.authorization", "Bearer opaque-token"),
        ]);
        let identity = resolve(&event).expect("consumer.id matches");
        assert_eq!(identity.consumer, "8f1c-42", "consumer.id is listed first");
        assert_eq!(identity.kind, "gateway");
        assert_eq!(identity.auth_scheme, Some("bearer"));
    }

    #[test]
    fn gateway_api_key_id_sets_scheme() {
        let identity = resolve(&event(&[("identity.apiKeyId", "qqvqzk33df")]))
            .expect("identity.apiKeyId matches");
        assert_eq!(identity.consumer, "qqvqzk33df");
        assert_eq!(identity.auth_scheme, Some("api_key"));
    }

    #[test]
    fn gateway_skips_other_consumer_kind() {
        let mut event = event(&[]);
        event.consumer = Some("198.51.100.1".to_string());
        event.consumer_kind = Some("ip".to_string());
        let identity = resolve(&event).expect("client_ip matches");
        assert_eq!(
            identity.kind, "ip",
            "a consumer of another kind is not a gateway's"
        );
        assert_eq!(identity.consumer, "203.0.113.7");
    }

    // --- api_key ---

    #[test]
    fn api_key_hashes_key() {
        let redactor = redactor();
        let identity = IdentityConfig::default()
            .resolve(&event(&[("X-Api-Key", "k3y-for-tests-only")]), &redactor)
            .expect("X-Api-Key matches x-api-key");
        assert_eq!(identity.consumer, redactor.hash("k3y-for-tests-only"));
        assert_eq!(identity.kind, "api_key");
        assert_eq!(identity.auth_scheme, Some("api_key"));
        assert_eq!(
            identity.consumer,
            redactor.redact_attribute("x-api-key", "k3y-for-tests-only"),
            "the consumer equals the redacted attribute"
        );
        assert!(
            !format!("{identity:?}").contains("k3y-for-tests-only"),
            "the key never leaves resolution"
        );
    }

    #[test]
    fn api_key_aliases_after_rotation() {
        let before = Redactor::new(b"key one".to_vec(), 1);
        let after = Redactor::new(b"key two".to_vec(), 2)
            .with_previous_key(b"key one".to_vec(), 1)
            .expect("versions 2 and 1 are distinct");
        let event = event(&[("http.request.header.x-api-key", "k3y")]);

        let old = IdentityConfig::default()
            .resolve(&event, &before)
            .expect("the key matches before the rotation");
        let new = IdentityConfig::default()
            .resolve(&event, &after)
            .expect("the key matches after the rotation");
        assert!(new.consumer.starts_with("h2:"), "{}", new.consumer);
        assert_eq!(
            new.aliases,
            vec![old.consumer],
            "the alias is the hash made before the rotation"
        );
        assert!(old.aliases.is_empty(), "no previous key, no alias");
    }

    #[test]
    fn api_key_keeps_existing_hash() {
        let hash = "h1:0123456789abcdef0123456789abcdef";
        let identity = resolve(&event(&[("apikey", hash)])).expect("apikey matches");
        assert_eq!(identity.consumer, hash, "a hash is not hashed again");
        assert!(identity.aliases.is_empty());
    }

    #[test]
    fn api_key_skips_missing_values() {
        let redactor = redactor();
        let identity = IdentityConfig::default()
            .resolve(
                &event(&[("x-api-key", "-"), ("apikey", " "), ("api-key", "k3y")]),
                &redactor,
            )
            .expect("api-key matches");
        assert_eq!(
            identity.consumer,
            redactor.hash("k3y"),
            "`-` and blank values count as missing"
        );
    }

    // --- jwt ---

    #[test]
    fn jwt_iss_and_sub() {
        let event = event(&[(
            "authorization",
            &bearer(
                r#"{"iss":"https://idp.example.com","sub":"user-42","client_id":"app","exp":1700000000}"#,
            ),
        )]);
        let identity = resolve(&event).expect("the JWT matches");
        assert_eq!(identity.consumer, "https://idp.example.com|user-42");
        assert_eq!(identity.kind, "jwt");
        assert_eq!(identity.auth_scheme, Some("bearer"));
    }

    #[test]
    fn jwt_only_client_id() {
        let event = event(&[(
            "Authorization",
            &bearer(r#"{"sub":"no-issuer","client_id":"billing-app","aud":["a","b"]}"#),
        )]);
        let identity = resolve(&event).expect("the JWT matches");
        assert_eq!(
            identity.consumer, "billing-app",
            "sub without iss does not match iss|sub"
        );
    }

    #[test]
    fn jwt_only_azp() {
        let event = event(&[(
            "request.headers.authorization",
            &bearer(r#"{"azp":"web-frontend","scope":"read"}"#),
        )]);
        let identity = resolve(&event).expect("the JWT matches");
        assert_eq!(identity.consumer, "web-frontend");
    }

    #[test]
    fn jwt_claim_order_configurable() {
        let config = config(
            r#"
            [[rules]]
            rule = "jwt"
            claims = ["client_id", "iss|sub"]
            "#,
        );
        let event = event(&[(
            "authorization",
            &bearer(r#"{"iss":"idp","sub":"user-42","client_id":"app"}"#),
        )]);
        let identity = config
            .resolve(&event, &redactor())
            .expect("the JWT matches");
        assert_eq!(identity.consumer, "app", "client_id is tried first");
    }

    #[test]
    fn jwt_escaped_and_repeated_claims() {
        let event = event(&[(
            "authorization",
            &bearer(r#"{"iss":"idp","sub":"first","sub":"caf\u00e9 \"42\""}"#),
        )]);
        let identity = resolve(&event).expect("the JWT matches");
        assert_eq!(
            identity.consumer, "idp|café \"42\"",
            "escapes are decoded and the last repeated claim wins"
        );
    }

    #[test]
    fn jwt_non_string_claim_is_missing() {
        let event = event(&[(
            "authorization",
            &bearer(r#"{"iss":"idp","sub":42,"client_id":"app"}"#),
        )]);
        let identity = resolve(&event).expect("client_id matches");
        assert_eq!(identity.consumer, "app", "a numeric sub counts as missing");
    }

    #[test]
    fn jwt_padded_payload_matches() {
        let token = format!(
            "eyJhbGciOiJub25lIn0.{}.",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"azp":"padded"}"#)
        );
        assert!(token.contains('='), "the payload has padding: {token}");
        let identity = resolve(&event(&[("authorization", &format!("bearer {token}"))]))
            .expect("a padded payload and an empty signature are accepted");
        assert_eq!(identity.consumer, "padded");
    }

    #[test]
    fn jwt_malformed_does_not_match() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"azp":"x"}"#);
        let huge = jwt(&format!(
            r#"{{"azp":"x","pad":"{}"}}"#,
            "a".repeat(MAX_JWT_LEN)
        ));
        let cases = [
            ("bad base64", format!("eyJhbGciOiJub25lIn0.{payload}!!.sig")),
            ("bad base64 length", "eyJhbGciOiJub25lIn0.e.sig".to_string()),
            ("bad JSON", jwt(r#"{"azp":"x""#)),
            ("not JSON", jwt("azp=x")),
            ("JSON array", jwt(r#"["azp","x"]"#)),
            ("trailing data", jwt(r#"{"azp":"x"} {}"#)),
            (
                "non-string claims",
                jwt(r#"{"iss":1,"sub":true,"client_id":null,"azp":{"a":1}}"#),
            ),
            ("empty claims", jwt(r#"{"iss":"","sub":"s","azp":" "}"#)),
            ("no wanted claim", jwt(r#"{"scope":"read"}"#)),
            ("huge token", huge),
            ("two segments", format!("eyJhbGciOiJub25lIn0.{payload}")),
            (
                "JWE five segments",
                format!("eyJhbGciOiJub25lIn0.{payload}.a.b.c"),
            ),
            ("empty header", format!(".{payload}.sig")),
            ("empty payload", "eyJhbGciOiJub25lIn0..sig".to_string()),
            (
                "space in token",
                format!("eyJhbGciOiJub25lIn0.{payload}.s ig"),
            ),
            (
                "redacted token",
                "h1:0123456789abcdef0123456789abcdef".to_string(),
            ),
        ];
        for (case, token) in cases {
            let mut event = event(&[("authorization", &format!("Bearer {token}"))]);
            event.client_ip = None;
            assert_eq!(resolve(&event), None, "{case}: {token:.80}");
        }
    }

    #[test]
    fn jwt_needs_bearer_scheme() {
        let token = jwt(r#"{"azp":"x"}"#);
        for value in [
            token.clone(),
            format!("Token {token}"),
            "Bearer".to_string(),
        ] {
            let mut event = event(&[("authorization", &value)]);
            event.client_ip = None;
            assert_eq!(resolve(&event), None, "value {value:.40}");
        }
    }

    #[test]
    fn jwt_malformed_falls_back_to_ip() {
        let identity =
            resolve(&event(&[("authorization", "Bearer not.a.jwt!")])).expect("client_ip matches");
        assert_eq!(identity.kind, "ip");
        assert_eq!(
            identity.auth_scheme,
            Some("bearer"),
            "the header still shows the scheme"
        );
    }

    // --- mtls ---

    #[test]
    fn mtls_subject() {
        let event = event(&[(
            "ssl_client_s_dn",
            "CN=billing.partner.example,O=Partner Ltd,C=GB",
        )]);
        let identity = resolve(&event).expect("the subject matches");
        assert_eq!(
            identity.consumer,
            "CN=billing.partner.example,O=Partner Ltd,C=GB"
        );
        assert_eq!(identity.kind, "mtls");
        assert_eq!(identity.auth_scheme, Some("mtls"));
    }

    #[test]
    fn mtls_api_gateway_subject() {
        let event = event(&[("identity.clientCert.subjectDN", "CN=device-7")]);
        let identity = resolve(&event).expect("the subject matches");
        assert_eq!(identity.consumer, "CN=device-7");
    }

    // --- basic ---

    #[test]
    fn basic_header_user() {
        let event = event(&[("authorization", &basic("alice:s3cret-pass"))]);
        let identity = resolve(&event).expect("basic credentials match");
        assert_eq!(identity.consumer, "alice");
        assert_eq!(identity.kind, "basic");
        assert_eq!(identity.auth_scheme, Some("basic"));
    }

    #[test]
    fn basic_password_with_colons() {
        let event = event(&[("authorization", &basic("alice:pa:ss:word"))]);
        let identity = resolve(&event).expect("basic credentials match");
        assert_eq!(
            identity.consumer, "alice",
            "the user ends at the first colon"
        );
    }

    #[test]
    fn basic_without_colon() {
        let mut event = event(&[("authorization", &basic("s3cret-without-user"))]);
        event.client_ip = None;
        assert_eq!(
            resolve(&event),
            None,
            "credentials without a colon do not match"
        );
    }

    #[test]
    fn basic_password_never_output() {
        let password = "Tr0ub4dor-s3cret";
        let config = IdentityConfig::default();
        let redactor = redactor();
        let events = [
            event(&[("authorization", &basic(&format!("alice:{password}")))]),
            event(&[("Authorization", &basic(&format!("alice:{password}")))]),
            event(&[("authorization", &basic(&format!(":{password}")))]),
            event(&[("authorization", &basic(password))]),
            event(&[
                ("authorization", &basic(&format!("alice:{password}"))),
                ("remote_user", "alice"),
            ]),
        ];
        for event in &events {
            let identity = config.resolve(event, &redactor);
            let debug = format!("{identity:?}");
            assert!(!debug.contains(password), "password in {debug}");
            if let Some(identity) = identity {
                assert!(
                    !identity.consumer.contains(password),
                    "password in consumer"
                );
                for alias in &identity.aliases {
                    assert!(!alias.contains(password), "password in alias");
                }
            }
        }
    }

    #[test]
    fn basic_empty_password_hashes_user() {
        let redactor = redactor();
        let identity = IdentityConfig::default()
            .resolve(
                &event(&[("authorization", &basic("sk_live_4eC39HqLyjWDarjtT1zdp7dc:"))]),
                &redactor,
            )
            .expect("basic credentials match");
        assert_eq!(
            identity.consumer,
            redactor.hash("sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            "a user with no password is a key"
        );
        assert_eq!(identity.kind, "api_key");
        assert_eq!(identity.auth_scheme, Some("basic"));
    }

    #[test]
    fn basic_empty_user_falls_back() {
        let identity =
            resolve(&event(&[("authorization", &basic(":token"))])).expect("client_ip matches");
        assert_eq!(identity.kind, "ip", "an empty user does not match");
    }

    #[test]
    fn basic_invalid_base64_falls_back() {
        let identity = resolve(&event(&[("authorization", "Basic !!not-base64!!")]))
            .expect("client_ip matches");
        assert_eq!(identity.kind, "ip");
        assert_eq!(identity.auth_scheme, Some("basic"));
    }

    #[test]
    fn basic_remote_user() {
        let identity = resolve(&event(&[("remote_user", "frank")])).expect("remote_user matches");
        assert_eq!(identity.consumer, "frank");
        assert_eq!(identity.kind, "basic");
        assert_eq!(
            identity.auth_scheme, None,
            "a remote user alone does not show the scheme"
        );
    }

    #[test]
    fn basic_remote_user_with_digest() {
        let identity = resolve(&event(&[
            ("remote_user", "frank"),
            ("authorization", "Digest username=\"frank\""),
        ]))
        .expect("remote_user matches");
        assert_eq!(identity.consumer, "frank");
        assert_eq!(identity.auth_scheme, Some("other"));
    }

    // --- client_ip ---

    #[test]
    fn client_ip_fallback() {
        let identity = resolve(&event(&[("vhost", "api.example.com")])).expect("client_ip matches");
        assert_eq!(identity.consumer, "203.0.113.7");
        assert_eq!(identity.kind, "ip");
        assert_eq!(identity.auth_scheme, None);
        assert!(identity.aliases.is_empty());
    }

    #[test]
    fn client_ip_missing_is_none() {
        let mut event = event(&[]);
        event.client_ip = None;
        assert_eq!(resolve(&event), None);
    }

    // --- order ---

    #[test]
    fn default_order_first_match_wins() {
        let redactor = redactor();
        let all = [
            ("consumer.id", "kong-consumer".to_string()),
            ("x-api-key", "k3y".to_string()),
            ("authorization", bearer(r#"{"azp":"jwt-client"}"#)),
            ("ssl_client_s_dn", "CN=cert-client".to_string()),
            ("remote_user", "frank".to_string()),
        ];
        let expected = [
            ("gateway", "kong-consumer".to_string()),
            ("api_key", redactor.hash("k3y")),
            ("jwt", "jwt-client".to_string()),
            ("mtls", "CN=cert-client".to_string()),
            ("basic", "frank".to_string()),
            ("ip", "203.0.113.7".to_string()),
        ];
        for (skip, (kind, consumer)) in expected.iter().enumerate() {
            let attributes: Vec<(&str, &str)> = all[skip..]
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let identity = IdentityConfig::default()
                .resolve(&event(&attributes), &redactor)
                .expect("some rule matches");
            assert_eq!(identity.kind, *kind, "without the first {skip} credentials");
            assert_eq!(
                &identity.consumer, consumer,
                "without the first {skip} credentials"
            );
        }
    }

    #[test]
    fn config_order_changes_winner() {
        let config = config(
            r#"
            [[rules]]
            rule = "client_ip"

            [[rules]]
            rule = "api_key"
            "#,
        );
        let identity = config
            .resolve(&event(&[("x-api-key", "k3y")]), &redactor())
            .expect("client_ip matches");
        assert_eq!(identity.kind, "ip", "client_ip is listed first");

        let mut event = event(&[("x-api-key", "k3y")]);
        event.client_ip = None;
        let identity = config
            .resolve(&event, &redactor())
            .expect("api_key matches");
        assert_eq!(
            identity.kind, "api_key",
            "a later rule matches when earlier ones do not"
        );
    }

    #[test]
    fn config_api_key_before_gateway() {
        let config = config(
            r#"
            [[rules]]
            rule = "api_key"
            fields = ["X-Partner-Key"]

            [[rules]]
            rule = "gateway"
            "#,
        );
        let event = event(&[("consumer.id", "kong-consumer"), ("x-partner-key", "k3y")]);
        let identity = config
            .resolve(&event, &redactor())
            .expect("api_key matches");
        assert_eq!(identity.kind, "api_key");
        assert_eq!(identity.consumer, redactor().hash("k3y"));
    }

    #[test]
    fn empty_rules_resolve_nothing() {
        let config = config("rules = []");
        assert_eq!(
            config.resolve(&event(&[("x-api-key", "k3y")]), &redactor()),
            None
        );
    }

    // --- configuration ---

    #[test]
    fn config_empty_table_is_default() {
        assert_eq!(config(""), IdentityConfig::default());
    }

    #[test]
    fn config_omitted_lists_take_defaults() {
        let config = config(
            r#"
            [[rules]]
            rule = "jwt"

            [[rules]]
            rule = "basic"
            fields = []
            "#,
        );
        assert_eq!(
            config.rules[0],
            IdentityRule::Jwt {
                fields: strings(DEFAULT_AUTHORIZATION_FIELDS),
                claims: strings(DEFAULT_JWT_CLAIMS),
            }
        );
        assert_eq!(
            config.rules[1],
            IdentityRule::Basic {
                fields: Vec::new(),
                user_fields: strings(DEFAULT_REMOTE_USER_FIELDS),
            },
            "a basic rule may read only the remote user"
        );
    }

    #[test]
    fn config_from_json() {
        let config: IdentityConfig = serde_json::from_str(
            r#"{"rules":[{"rule":"mtls","fields":["tls.client.subject"]}],"authorization_fields":[]}"#,
        )
        .expect("JSON configuration is valid");
        assert_eq!(
            config.rules,
            vec![IdentityRule::Mtls {
                fields: vec!["tls.client.subject".to_string()]
            }]
        );
        assert!(config.authorization_fields.is_empty());
    }

    #[test]
    fn config_rejects_bad_input() {
        let cases = [
            (
                "unknown rule",
                "[[rules]]\nrule = \"cookie\"",
                "unknown variant `cookie`",
            ),
            (
                "unknown rule key",
                "[[rules]]\nrule = \"api_key\"\nheaders = [\"x\"]",
                "unknown field `headers`",
            ),
            (
                "unknown top-level key",
                "rule_order = []",
                "unknown field `rule_order`",
            ),
            (
                "empty fields",
                "[[rules]]\nrule = \"client_ip\"\n[[rules]]\nrule = \"api_key\"\nfields = []",
                "identity rule 2 (api_key) reads no attribute: list attribute names in `fields`",
            ),
            (
                "basic without lists",
                "[[rules]]\nrule = \"basic\"\nfields = []\nuser_fields = []",
                "identity rule 1 (basic) reads no attribute: list attribute names in `fields` or `user_fields`",
            ),
            (
                "empty claims",
                "[[rules]]\nrule = \"jwt\"\nclaims = []",
                "identity rule 1 (jwt) lists no claims",
            ),
            (
                "empty claim name",
                "[[rules]]\nrule = \"jwt\"\nclaims = [\"iss|\"]",
                "identity rule 1 (jwt) has the invalid name \"\" in `claims`",
            ),
            (
                "padded field name",
                "[[rules]]\nrule = \"mtls\"\nfields = [\" ssl_client_s_dn\"]",
                "identity rule 1 (mtls) has the invalid name \" ssl_client_s_dn\" in `fields`",
            ),
            (
                "too many claims",
                "[[rules]]\nrule = \"jwt\"\nclaims = [\"a|b|c|d|e|f|g|h\", \"i|j|k|l|m|n|o|p\", \"q\"]",
                "identity rule 1 (jwt) names 17 claims in `claims`, more than the maximum of 16",
            ),
            (
                "empty authorization field",
                "authorization_fields = [\"\"]",
                "`authorization_fields` has the invalid name \"\"",
            ),
        ];
        for (case, text, expected) in cases {
            let error = config_error(text);
            assert!(error.contains(expected), "{case}: {error}");
        }
    }

    #[test]
    fn validate_checks_built_config() {
        let config = IdentityConfig {
            rules: vec![IdentityRule::Gateway { fields: Vec::new() }],
            authorization_fields: Vec::new(),
        };
        assert_eq!(
            config.validate(),
            Err(IdentityConfigError::NoFields {
                position: 1,
                rule: "gateway",
                lists: "`fields`"
            })
        );
        assert_eq!(IdentityConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unvalidated_claim_overflow_never_matches() {
        let claims: Vec<String> = (0..MAX_JWT_CLAIM_NAMES)
            .map(|index| format!("unused{index}"))
            .chain(["azp".to_string()])
            .collect();
        let config = IdentityConfig {
            rules: vec![IdentityRule::Jwt {
                fields: strings(DEFAULT_AUTHORIZATION_FIELDS),
                claims,
            }],
            authorization_fields: Vec::new(),
        };
        let event = event(&[("authorization", &bearer(r#"{"azp":"x"}"#))]);
        assert_eq!(
            config.resolve(&event, &redactor()),
            None,
            "a claim past the maximum is never read"
        );
    }

    #[test]
    fn names_match_case_insensitively() {
        let identity =
            resolve(&event(&[("SSL_Client_S_DN", "CN=x")])).expect("the subject matches");
        assert_eq!(identity.kind, "mtls");
    }

    #[test]
    fn debug_shows_no_secret() {
        let redactor = Redactor::new(b"debug-visible-key".to_vec(), 2)
            .with_previous_key(b"debug-old-key".to_vec(), 1)
            .expect("versions 2 and 1 are distinct");
        let identity = IdentityConfig::default()
            .resolve(&event(&[("x-api-key", "debug-api-key")]), &redactor)
            .expect("the key matches");
        let debug = format!("{identity:?} {redactor:?}");
        for secret in ["debug-visible-key", "debug-old-key", "debug-api-key"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    // --- properties ---

    /// Attribute values that reach every decoder: bearer and basic values with random payloads.
    fn credential_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            any::<String>().prop_map(|text| format!("Bearer {text}")),
            any::<String>().prop_map(|text| format!("Basic {text}")),
            any::<Vec<u8>>().prop_map(|bytes| format!("Basic {}", STANDARD.encode(bytes))),
            any::<String>().prop_map(|payload| format!("Bearer {}", jwt(&payload))),
            "[a-z\":{}, 0-9\\[\\]|\\\\u]{0,40}"
                .prop_map(|payload| format!("Bearer {}", jwt(&payload))),
            any::<Vec<u8>>().prop_map(|bytes| format!(
                "Bearer eyJhbGciOiJub25lIn0.{}.",
                URL_SAFE_NO_PAD.encode(bytes)
            )),
        ]
    }

    fn attribute_name() -> impl Strategy<Value = String> {
        let known: Vec<&str> = [
            DEFAULT_GATEWAY_FIELDS,
            DEFAULT_API_KEY_FIELDS,
            DEFAULT_AUTHORIZATION_FIELDS,
            DEFAULT_MTLS_FIELDS,
            DEFAULT_REMOTE_USER_FIELDS,
        ]
        .concat();
        prop_oneof![
            prop::sample::select(known).prop_map(str::to_string),
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn resolve_never_panics(
            attributes in prop::collection::vec((attribute_name(), credential_value()), 0..6),
            client_ip in prop::option::of(any::<String>()),
            consumer in prop::option::of(any::<String>()),
        ) {
            let mut event = Event::new("clf", 0);
            event.attributes = attributes;
            event.client_ip = client_ip;
            event.consumer = consumer;
            let identity = IdentityConfig::default().resolve(&event, &redactor());
            if let Some(identity) = identity {
                prop_assert!(!identity.consumer.is_empty(), "an identity always names a consumer");
            }
        }
    }
}
