//! Authentication of Flight SQL calls, and of the other gRPC services.
//!
//! Every call passes through [`AuthInterceptor`], which reads the
//! `authorization` metadata: a Bearer token, or Basic credentials (token
//! name and secret) as drivers send them for the `Handshake` call. All
//! Flight SQL calls are queries, so the token needs the `read` role; the
//! OTLP/gRPC receiver uses the same interceptor with the `ingest` role.
//! `Handshake` returns, for Basic credentials, the Bearer header that the
//! client sends from then on, which is how the ADBC and JDBC drivers log in with a
//! user name and password.

use std::pin::Pin;

use arrow_flight::HandshakeResponse;
use futures::Stream;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Response, Status};

use crate::auth::{AuthError, Authenticator, Credentials, Role, Schemes, parse_authorization};

/// Checks the credentials of every call before it reaches the service.
#[derive(Clone)]
pub struct AuthInterceptor {
    auth: Authenticator,
    role: Role,
    /// Label of the service in the `apitrail_auth_failures_total` metric and in logs.
    protocol: &'static str,
}

impl AuthInterceptor {
    /// Returns the interceptor of Flight SQL, whose calls need the `read` role.
    pub fn new(auth: Authenticator) -> Self {
        AuthInterceptor::for_role(auth, Role::Read, "flight")
    }

    /// Returns an interceptor whose calls need `role`.
    pub fn for_role(auth: Authenticator, role: Role, protocol: &'static str) -> Self {
        AuthInterceptor {
            auth,
            role,
            protocol,
        }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let protocol = self.protocol;
        let credentials = credentials(&request).map_err(|error| rejected(error, protocol))?;
        let principal = self
            .auth
            .authorize(credentials.as_ref(), self.role)
            .map_err(|error| rejected(error, protocol))?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Reads the `authorization` metadata of a call.
fn credentials<T>(request: &Request<T>) -> Result<Option<Credentials>, AuthError> {
    let Some(value) = request.metadata().get("authorization") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AuthError::Malformed("not visible ASCII".into()))?;
    parse_authorization(text, Schemes::Shipper).map(Some)
}

fn rejected(error: AuthError, protocol: &'static str) -> Status {
    metrics::counter!("apitrail_auth_failures_total", "protocol" => protocol).increment(1);
    tracing::info!(protocol, error = %error, "gRPC call rejected");
    if error.is_unauthenticated() {
        Status::unauthenticated(error.to_string())
    } else {
        Status::permission_denied(error.to_string())
    }
}

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// Handles `Handshake`: the interceptor has checked the credentials, so
/// this returns the Bearer header for the secret that was sent, or nothing
/// for an anonymous loopback client.
pub fn handshake<T>(request: &Request<T>) -> Result<Response<HandshakeStream>, Status> {
    let credentials = credentials(request).map_err(|error| rejected(error, "flight"))?;
    let response: HandshakeStream = Box::pin(futures::stream::once(async {
        Ok(HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        })
    }));
    let mut response = Response::new(response);
    let secret = match credentials {
        Some(Credentials::Bearer(secret))
        | Some(Credentials::Secret(secret))
        | Some(Credentials::NameAndSecret { secret, .. }) => secret,
        None => return Ok(response),
    };
    let mut value: MetadataValue<_> = format!("Bearer {secret}").parse().map_err(|_| {
        Status::invalid_argument("the token contains characters metadata cannot hold")
    })?;
    value.set_sensitive(true);
    response.metadata_mut().insert("authorization", value);
    Ok(response)
}
