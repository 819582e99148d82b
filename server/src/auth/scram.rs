//! SCRAM-SHA-256 (RFC 5802 and RFC 7677) on the server side, as PostgreSQL
//! uses it for password logins.
//!
//! The server stores only a verifier: the salt, the iteration count,
//! `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`. Neither lets anyone log
//! in: the client proves that it has `ClientKey`, whose hash is `StoredKey`.
//! Channel binding (`SCRAM-SHA-256-PLUS`) is not offered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::tokens::constant_time_eq;

/// Iterations of PBKDF2 for new verifiers; PostgreSQL's default
/// (`scram_iterations`) is also 4096.
pub const ITERATIONS: u32 = 4096;

/// Name of the SASL mechanism.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// Stored verifier of a SCRAM-SHA-256 password, with every field in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramVerifier {
    pub salt: String,
    pub iterations: u32,
    pub stored_key: String,
    pub server_key: String,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA256 with one block of output, the `Hi` function of RFC 5802.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = Vec::with_capacity(salt.len() + 4);
    block.extend_from_slice(salt);
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut previous = hmac(password, &block);
    let mut result = previous;
    for _ in 1..iterations {
        previous = hmac(password, &previous);
        for (r, p) in result.iter_mut().zip(previous.iter()) {
            *r ^= p;
        }
    }
    result
}

impl ScramVerifier {
    /// Derives a verifier for `password` with a new random salt.
    ///
    /// Token secrets are ASCII letters, digits, `_` and `-`, which SASLprep
    /// leaves unchanged, so the password is used as it is.
    pub fn generate(password: &str) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self::derive(password, &salt, ITERATIONS)
    }

    fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = salted_password(password.as_bytes(), salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        ScramVerifier {
            salt: STANDARD.encode(salt),
            iterations,
            stored_key: STANDARD.encode(stored_key),
            server_key: STANDARD.encode(server_key),
        }
    }

    /// Builds a verifier that no password matches, with a salt derived from `seed`
    /// so that repeated attempts for one unknown user see the same salt.
    /// It lets the exchange run to the end for a user that does not exist,
    /// so a client cannot tell unknown users from wrong passwords.
    pub fn decoy(seed: &[u8]) -> Self {
        let salt = &Sha256::digest(seed)[..16];
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        ScramVerifier {
            salt: STANDARD.encode(salt),
            iterations: ITERATIONS,
            stored_key: STANDARD.encode(random),
            server_key: STANDARD.encode(random),
        }
    }
}

/// A failed exchange: a malformed message or a wrong proof.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("the client asked for channel binding, which this server does not offer")]
    ChannelBinding,
    #[error("the password is wrong")]
    WrongProof,
}

/// State of a server exchange after the client-first message, which the
/// client-final message is checked against.
#[derive(Debug)]
pub struct ServerExchange {
    verifier: ScramVerifier,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Parses a client-first message and returns the exchange and the
/// server-first message to send.
///
/// The user name inside the message is ignored, as PostgreSQL does: the
/// user is the one of the startup message.
pub fn server_first(
    client_first: &str,
    verifier: ScramVerifier,
) -> Result<(ServerExchange, String), ScramError> {
    // gs2-header: a channel-binding flag, an optional authzid, then the bare message.
    let (flag, rest) = client_first
        .split_once(',')
        .ok_or(ScramError::Malformed("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        flag if flag.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("unknown channel-binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("no authorization identity field"))?;
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(ScramError::Malformed("invalid authorization identity"));
    }
    let gs2_header = format!("{flag},{authzid},");

    let client_nonce = bare
        .split(',')
        .find_map(|part| part.strip_prefix("r="))
        .ok_or(ScramError::Malformed("no client nonce"))?;
    if client_nonce.is_empty() || client_nonce.contains(',') {
        return Err(ScramError::Malformed("empty client nonce"));
    }
    if bare.split(',').next().is_some_and(|p| p.starts_with("m=")) {
        return Err(ScramError::Malformed(
            "mandatory extensions are not supported",
        ));
    }

    let mut server_nonce = [0u8; 18];
    rand::rng().fill_bytes(&mut server_nonce);
    let nonce = format!("{client_nonce}{}", STANDARD.encode(server_nonce));
    let server_first = format!("r={nonce},s={},i={}", verifier.salt, verifier.iterations);
    let exchange = ServerExchange {
        verifier,
        gs2_header,
        client_first_bare: bare.to_owned(),
        server_first: server_first.clone(),
        nonce,
    };
    Ok((exchange, server_first))
}

impl ServerExchange {
    /// Checks the client-final message and returns the server-final message.
    pub fn finish(&self, client_final: &str) -> Result<String, ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for part in without_proof.split(',') {
            if let Some(value) = part.strip_prefix("c=") {
                binding = Some(value);
            } else if let Some(value) = part.strip_prefix("r=") {
                nonce = Some(value);
            }
        }
        let binding = binding.ok_or(ScramError::Malformed("no channel binding"))?;
        if binding != STANDARD.encode(&self.gs2_header) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("the nonce does not match"));
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Malformed("the proof is not base64"))?;

        let stored_key = STANDARD
            .decode(&self.verifier.stored_key)
            .map_err(|_| ScramError::Malformed("invalid stored key"))?;
        let server_key = STANDARD
            .decode(&self.verifier.server_key)
            .map_err(|_| ScramError::Malformed("invalid server key"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::WrongProof);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(p, s)| p ^ s)
            .collect();
        let computed: [u8; 32] = Sha256::digest(&client_key).into();
        if !constant_time_eq(&computed, &stored_key) {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example exchange of RFC 7677, section 3.
    const RFC_PASSWORD: &str = "pencil";
    const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    /// Runs the RFC exchange with the server nonce of the RFC.
    fn rfc_exchange(verifier: ScramVerifier) -> ServerExchange {
        let (mut exchange, _) = server_first(RFC_CLIENT_FIRST, verifier).unwrap();
        exchange.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_owned();
        exchange.server_first = format!("r={},s={RFC_SALT},i=4096", exchange.nonce);
        exchange
    }

    #[test]
    fn rfc7677_example_verifies() {
        let salt = STANDARD.decode(RFC_SALT).unwrap();
        let verifier = ScramVerifier::derive(RFC_PASSWORD, &salt, 4096);
        let exchange = rfc_exchange(verifier);
        assert_eq!(
            exchange.finish(RFC_CLIENT_FINAL),
            Ok(RFC_SERVER_FINAL.to_owned())
        );
    }

    #[test]
    fn wrong_password_fails() {
        let salt = STANDARD.decode(RFC_SALT).unwrap();
        let verifier = ScramVerifier::derive("not pencil", &salt, 4096);
        let exchange = rfc_exchange(verifier);
        assert_eq!(
            exchange.finish(RFC_CLIENT_FINAL),
            Err(ScramError::WrongProof)
        );
    }

    #[test]
    fn decoy_never_verifies() {
        let exchange = rfc_exchange(ScramVerifier::decoy(b"user"));
        assert_eq!(
            exchange.finish(RFC_CLIENT_FINAL),
            Err(ScramError::WrongProof)
        );
    }

    #[test]
    fn decoy_salt_is_stable() {
        assert_eq!(
            ScramVerifier::decoy(b"ghost").salt,
            ScramVerifier::decoy(b"ghost").salt
        );
    }

    #[test]
    fn server_nonce_extends_client_nonce() {
        let verifier = ScramVerifier::generate("secret");
        let (_, message) = server_first(RFC_CLIENT_FIRST, verifier.clone()).unwrap();
        assert!(message.starts_with("r=rOprNGfwEbeRWgbNEkqO"), "{message}");
        assert!(
            message.contains(&format!(",s={},i=4096", verifier.salt)),
            "{message}"
        );
    }

    #[test]
    fn channel_binding_request_rejected() {
        let verifier = ScramVerifier::generate("secret");
        let result = server_first("p=tls-server-end-point,,n=,r=abc", verifier);
        assert_eq!(result.err(), Some(ScramError::ChannelBinding));
    }

    #[test]
    fn malformed_messages_rejected() {
        for message in [
            "",
            "n",
            "n,,",
            "x,,n=,r=abc",
            "n,,n=user",
            "n,,m=ext,n=,r=a",
        ] {
            let verifier = ScramVerifier::generate("secret");
            assert!(
                server_first(message, verifier).is_err(),
                "{message:?} was accepted"
            );
        }
        let salt = STANDARD.decode(RFC_SALT).unwrap();
        let exchange = rfc_exchange(ScramVerifier::derive(RFC_PASSWORD, &salt, 4096));
        for message in [
            "",
            "c=biws,r=wrongnonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        ] {
            assert!(
                exchange.finish(message).is_err(),
                "{message:?} was accepted"
            );
        }
    }
}
