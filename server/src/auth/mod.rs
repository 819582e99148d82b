//! Authentication and roles, shared by HTTP, Flight SQL and PostgreSQL.
//!
//! A client presents a token: its secret as `Authorization: Bearer`, or its
//! name and secret as HTTP Basic credentials, an Elasticsearch-style
//! `ApiKey`, or a PostgreSQL user name and password. Each token carries
//! roles: `read` runs queries, `ingest` sends events, `admin` manages the
//! server and includes the other two.
//!
//! Every listener decides on its own whether it requires a token
//! ([`Authenticator::new`]): always when it listens beyond loopback or when
//! the configuration sets `required`, and on loopback as soon as any token exists.
//! A loopback listener of a server without tokens lets anonymous clients
//! read and ingest, never administer.

pub mod scram;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};

pub use tokens::TokenStore;

/// Permission of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Run queries on every protocol.
    Read,
    /// Send events: ingest endpoints and the shipper-compatible APIs.
    Ingest,
    /// Administer the server; includes `read` and `ingest`.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Ingest => "ingest",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles of one token, sorted and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn from_roles(roles: &[Role]) -> Self {
        let mut roles = roles.to_vec();
        roles.sort_by_key(|r| *r as u8);
        roles.dedup();
        RoleSet(roles)
    }

    /// Returns whether these roles include `role`, which `admin` always does.
    pub fn allows(&self, role: Role) -> bool {
        self.0.contains(&role) || self.0.contains(&Role::Admin)
    }
}

impl std::fmt::Display for RoleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|r| r.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

/// Identity of an authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name of the token; `None` for an anonymous loopback client.
    pub token: Option<String>,
    pub roles: RoleSet,
}

impl Principal {
    fn anonymous() -> Self {
        Principal {
            token: None,
            roles: RoleSet::from_roles(&[Role::Read, Role::Ingest]),
        }
    }

    /// Name for logs: the token name or `anonymous`.
    pub fn name(&self) -> &str {
        self.token.as_deref().unwrap_or("anonymous")
    }
}

/// Credentials as a client sent them.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer SECRET`.
    Bearer(String),
    /// Token name and secret: HTTP Basic, or `ApiKey` in the form `name:secret`.
    NameAndSecret { name: String, secret: String },
    /// `Authorization: ApiKey SECRET` without a name.
    Secret(String),
}

// Secrets must never reach a log line, so Debug shows only the kind.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::NameAndSecret { name, .. } => write!(f, "NameAndSecret({name:?}, ..)"),
            Credentials::Secret(_) => f.write_str("Secret(..)"),
        }
    }
}

/// Set of `Authorization` schemes that a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// `Bearer` only.
    Bearer,
    /// `Bearer`, `Basic` and `ApiKey`, as log shippers send them.
    Shipper,
}

/// Reason a request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "authentication required: send a token as 'Authorization: Bearer <secret>' \
         (create one with 'apitrail token create')"
    )]
    Missing,
    #[error("invalid Authorization header: {0}")]
    Malformed(String),
    #[error("the token is unknown or revoked")]
    Invalid,
    #[error("token {token:?} lacks the {needed} role this request needs")]
    Forbidden { token: String, needed: Role },
    #[error(
        "this request needs the {needed} role, which anonymous clients never have; \
         send a token that has it"
    )]
    AnonymousForbidden { needed: Role },
}

impl AuthError {
    /// Whether the client should authenticate (HTTP 401) rather than use
    /// another token (403).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::Missing | AuthError::Malformed(_) | AuthError::Invalid
        )
    }
}

/// Parses an `Authorization` header value into credentials.
///
/// The scheme name is case-insensitive, as HTTP specifies. `ApiKey` carries
/// base64 of `name:secret` as Elasticsearch clients send it; a value that is
/// not such base64 is taken as the secret itself.
pub fn parse_authorization(value: &str, schemes: Schemes) -> Result<Credentials, AuthError> {
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| AuthError::Malformed("expected '<scheme> <credentials>'".into()))?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(AuthError::Malformed("empty credentials".into()));
    }
    let shipper = schemes == Schemes::Shipper;
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(rest.to_owned()))
    } else if shipper && scheme.eq_ignore_ascii_case("basic") {
        let (name, secret) = decode_pair(rest).ok_or_else(|| {
            AuthError::Malformed("Basic credentials are not base64 of 'name:secret'".into())
        })?;
        Ok(Credentials::NameAndSecret { name, secret })
    } else if shipper && scheme.eq_ignore_ascii_case("apikey") {
        Ok(match decode_pair(rest) {
            Some((name, secret)) => Credentials::NameAndSecret { name, secret },
            None => Credentials::Secret(rest.to_owned()),
        })
    } else {
        let accepted = if shipper {
            "Bearer, Basic or ApiKey"
        } else {
            "Bearer"
        };
        Err(AuthError::Malformed(format!(
            "unsupported scheme {scheme:?}; this endpoint accepts {accepted}"
        )))
    }
}

/// Decodes base64 of `name:secret`, padded or not: the Arrow Flight Go
/// client, which the ADBC driver uses, sends Basic credentials unpadded.
fn decode_pair(encoded: &str) -> Option<(String, String)> {
    let bytes = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, secret) = text.split_once(':')?;
    Some((name.to_owned(), secret.to_owned()))
}

/// Authentication policy of one listener.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: Arc<TokenStore>,
    /// Whether a token is needed even when the token file is empty.
    always_required: bool,
}

impl Authenticator {
    /// Builds the policy of a listener on `addr`. A token is always required
    /// beyond loopback or when `require_tokens` is set.
    pub fn new(tokens: Arc<TokenStore>, addr: SocketAddr, require_tokens: bool) -> Self {
        Authenticator {
            tokens,
            always_required: require_tokens || !addr.ip().is_loopback(),
        }
    }

    /// Whether clients must present a token now.
    pub fn required(&self) -> bool {
        self.always_required || !self.tokens.current().is_empty()
    }

    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// Checks `credentials` and the `needed` role.
    ///
    /// Credentials that were sent are always checked, even where anonymous
    /// access would be allowed, so a wrong token fails instead of being
    /// ignored.
    pub fn authorize(
        &self,
        credentials: Option<&Credentials>,
        needed: Role,
    ) -> Result<Principal, AuthError> {
        let tokens = self.tokens.current();
        let principal = match credentials {
            None if self.always_required || !tokens.is_empty() => return Err(AuthError::Missing),
            None => Principal::anonymous(),
            Some(credentials) => {
                let record = match credentials {
                    Credentials::Bearer(secret) | Credentials::Secret(secret) => {
                        tokens.find_by_secret(secret)
                    }
                    Credentials::NameAndSecret { name, secret } => {
                        tokens.check_name_and_secret(name, secret)
                    }
                }
                .ok_or(AuthError::Invalid)?;
                Principal {
                    token: Some(record.name.clone()),
                    roles: record.roles.clone(),
                }
            }
        };
        if principal.roles.allows(needed) {
            return Ok(principal);
        }
        Err(match principal.token {
            Some(token) => AuthError::Forbidden { token, needed },
            None => AuthError::AnonymousForbidden { needed },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:7070".parse().unwrap()
    }

    fn store(dir: &std::path::Path) -> Arc<TokenStore> {
        Arc::new(TokenStore::open(dir).unwrap())
    }

    #[test]
    fn loopback_without_tokens_reads_and_ingests() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::new(store(dir.path()), loopback(), false);
        assert!(!auth.required());
        assert!(auth.authorize(None, Role::Read).is_ok());
        assert!(auth.authorize(None, Role::Ingest).is_ok());
        assert_eq!(
            auth.authorize(None, Role::Admin),
            Err(AuthError::AnonymousForbidden {
                needed: Role::Admin
            })
        );
    }

    #[test]
    fn beyond_loopback_requires_token() {
        let dir = tempfile::tempdir().unwrap();
        for addr in ["0.0.0.0:7070", "[::]:7070", "192.0.2.10:7070"] {
            let auth = Authenticator::new(store(dir.path()), addr.parse().unwrap(), false);
            assert!(auth.required(), "{addr} does not require a token");
            assert_eq!(
                auth.authorize(None, Role::Read),
                Err(AuthError::Missing),
                "{addr}"
            );
        }
        let ipv6_loopback =
            Authenticator::new(store(dir.path()), "[::1]:7070".parse().unwrap(), false);
        assert!(!ipv6_loopback.required());
    }

    #[test]
    fn configuration_can_require_tokens_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::new(store(dir.path()), loopback(), true);
        assert_eq!(auth.authorize(None, Role::Read), Err(AuthError::Missing));
    }

    #[test]
    fn any_token_ends_anonymous_access() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::new(store(dir.path()), loopback(), false);
        tokens::create(dir.path(), "a", &[Role::Read]).unwrap();
        assert_eq!(auth.authorize(None, Role::Read), Err(AuthError::Missing));
    }

    #[test]
    fn roles_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let reader = tokens::create(dir.path(), "reader", &[Role::Read]).unwrap();
        let admin = tokens::create(dir.path(), "root", &[Role::Admin]).unwrap();
        let auth = Authenticator::new(store(dir.path()), loopback(), false);
        let reader_credentials = Credentials::Bearer(reader.secret.clone());
        assert!(
            auth.authorize(Some(&reader_credentials), Role::Read)
                .is_ok()
        );
        assert_eq!(
            auth.authorize(Some(&reader_credentials), Role::Ingest),
            Err(AuthError::Forbidden {
                token: "reader".into(),
                needed: Role::Ingest
            })
        );
        let admin_credentials = Credentials::Bearer(admin.secret.clone());
        for role in [Role::Read, Role::Ingest, Role::Admin] {
            assert!(
                auth.authorize(Some(&admin_credentials), role).is_ok(),
                "admin lacks {role}"
            );
        }
    }

    #[test]
    fn wrong_token_fails_even_when_anonymous_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::new(store(dir.path()), loopback(), false);
        let credentials = Credentials::Bearer("apt_nope".into());
        assert_eq!(
            auth.authorize(Some(&credentials), Role::Read),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn authorization_header_schemes() {
        assert_eq!(
            parse_authorization("Bearer abc", Schemes::Bearer),
            Ok(Credentials::Bearer("abc".into()))
        );
        assert_eq!(
            parse_authorization("bearer   abc ", Schemes::Bearer),
            Ok(Credentials::Bearer("abc".into()))
        );
        let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("a:apt_x"));
        assert_eq!(
            parse_authorization(&unpadded, Schemes::Shipper),
            Ok(Credentials::NameAndSecret {
                name: "a".into(),
                secret: "apt_x".into()
            })
        );
        let basic = format!("Basic {}", STANDARD.encode("vector:apt_x"));
        assert!(parse_authorization(&basic, Schemes::Bearer).is_err());
        assert_eq!(
            parse_authorization(&basic, Schemes::Shipper),
            Ok(Credentials::NameAndSecret {
                name: "vector".into(),
                secret: "apt_x".into()
            })
        );
        let api_key = format!("ApiKey {}", STANDARD.encode("fluent:apt_y"));
        assert_eq!(
            parse_authorization(&api_key, Schemes::Shipper),
            Ok(Credentials::NameAndSecret {
                name: "fluent".into(),
                secret: "apt_y".into()
            })
        );
        assert_eq!(
            parse_authorization("ApiKey apt_z", Schemes::Shipper),
            Ok(Credentials::Secret("apt_z".into()))
        );
        for bad in ["", "Bearer", "Bearer ", "Digest x", "Basic !!!"] {
            assert!(
                parse_authorization(bad, Schemes::Shipper).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let text = format!(
            "{:?} {:?}",
            Credentials::Bearer("apt_secret".into()),
            Credentials::NameAndSecret {
                name: "n".into(),
                secret: "apt_secret".into()
            }
        );
        assert!(!text.contains("apt_secret"), "{text}");
    }
}
