//! Connection startup: login, startup parameters and the cancel registry.
//!
//! A client logs in with a token's name as user name and its secret as
//! password. Without TLS the password is checked by SCRAM-SHA-256, so it
//! never crosses the wire. On a TLS connection the server may request it in
//! clear text instead (`pg_password_method = "password"`), for clients that
//! lack SCRAM. A loopback listener of a server without tokens skips the
//! login, as the HTTP API does.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};

use crate::auth::scram::{self, ScramVerifier, ServerExchange};
use crate::auth::{AuthError, Authenticator, Credentials, Principal, Role};
use crate::config::PgPasswordMethod;
use crate::pg::handlers::{ConnectionState, DisconnectTokens};
use crate::pg::settings::STARTUP_PARAMETERS;

/// SQLSTATE of a failed password check.
const INVALID_PASSWORD: &str = "28P01";
/// SQLSTATE of a login that is not allowed, such as a token without `read`.
const INVALID_AUTHORIZATION: &str = "28000";
/// SQLSTATE of a message that breaks the protocol.
const PROTOCOL_VIOLATION: &str = "08P01";

/// Login settings of one listener.
#[derive(Debug, Clone)]
pub struct LoginPolicy {
    pub auth: Authenticator,
    pub password_method: PgPasswordMethod,
}

/// Progress of a connection's login, kept in its session extensions.
enum LoginStep {
    /// AuthenticationSASL was sent; the SASLInitialResponse comes next.
    ScramStarted,
    /// The server-first message was sent; the client-final message comes next.
    ScramContinued(Box<ServerExchange>),
    /// AuthenticationCleartextPassword was sent on a TLS connection.
    PasswordRequested,
}

#[derive(Default)]
struct Login(Mutex<Option<LoginStep>>);

/// The startup handler of one listener; per-connection state lives in the
/// connection's session extensions.
pub struct ApitrailStartup {
    manager: Arc<ConnectionManager>,
    pid_generator: RandomPidSecretKeyGenerator,
    tokens: DisconnectTokens,
    login: LoginPolicy,
}

impl ApitrailStartup {
    pub fn new(
        manager: Arc<ConnectionManager>,
        tokens: DisconnectTokens,
        login: LoginPolicy,
    ) -> Self {
        ApitrailStartup {
            manager,
            pid_generator: RandomPidSecretKeyGenerator::default(),
            tokens,
            login,
        }
    }

    /// Handles the startup message: requests a password, or completes the
    /// login at once where no token is required.
    async fn start<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !self.login.auth.required() {
            let principal = self
                .login
                .auth
                .authorize(None, Role::Read)
                .map_err(|error| login_forbidden(&user_name(client), &error))?;
            return self.finish(client, principal).await;
        }
        if user_name(client).is_empty() {
            return Err(PgWireError::UserNameRequired);
        }
        let cleartext =
            client.is_secure() && self.login.password_method == PgPasswordMethod::Password;
        let (request, step) = if cleartext {
            (
                Authentication::CleartextPassword,
                LoginStep::PasswordRequested,
            )
        } else {
            (
                Authentication::SASL(vec![scram::MECHANISM.to_owned()]),
                LoginStep::ScramStarted,
            )
        };
        set_step(client, Some(step));
        client
            .send(PgWireBackendMessage::Authentication(request))
            .await?;
        Ok(())
    }

    /// Handles a password-family message according to the login step.
    async fn continue_login<C>(
        &self,
        client: &mut C,
        message: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = user_name(client);
        let step = client
            .session_extensions()
            .get::<Login>()
            .and_then(|login| login.0.lock().expect("login state poisoned").take());
        match step {
            Some(LoginStep::PasswordRequested) => {
                let password = message.into_password()?.password;
                let credentials = Credentials::NameAndSecret {
                    name: user.clone(),
                    secret: password,
                };
                let principal = self
                    .login
                    .auth
                    .authorize(Some(&credentials), Role::Read)
                    .map_err(|error| login_rejected(&user, &error))?;
                self.finish(client, principal).await
            }
            Some(LoginStep::ScramStarted) => {
                let initial = message.into_sasl_initial_response()?;
                if initial.auth_method != scram::MECHANISM {
                    return Err(PgWireError::UnsupportedSASLAuthMethod(initial.auth_method));
                }
                let data = initial.data.unwrap_or_default();
                let client_first = std::str::from_utf8(&data)
                    .map_err(|_| fatal(PROTOCOL_VIOLATION, "SCRAM message is not UTF-8"))?;
                let verifier = self
                    .login
                    .auth
                    .tokens()
                    .current()
                    .get(&user)
                    .map(|record| record.scram.clone())
                    .unwrap_or_else(|| ScramVerifier::decoy(user.as_bytes()));
                let (exchange, server_first) = scram::server_first(client_first, verifier)
                    .map_err(|e| fatal(PROTOCOL_VIOLATION, e.to_string()))?;
                set_step(client, Some(LoginStep::ScramContinued(Box::new(exchange))));
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(server_first.into_bytes().into()),
                    ))
                    .await?;
                Ok(())
            }
            Some(LoginStep::ScramContinued(exchange)) => {
                let response = message.into_sasl_response()?;
                let client_final = std::str::from_utf8(&response.data)
                    .map_err(|_| fatal(PROTOCOL_VIOLATION, "SCRAM message is not UTF-8"))?;
                let server_final = exchange.finish(client_final).map_err(|error| match error {
                    scram::ScramError::WrongProof => login_failed(&user, "wrong password"),
                    other => fatal(PROTOCOL_VIOLATION, other.to_string()),
                })?;
                let principal = self.principal_after_scram(&user)?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into_bytes().into()),
                    ))
                    .await?;
                self.finish(client, principal).await
            }
            None => Err(fatal(
                PROTOCOL_VIOLATION,
                "unexpected password message: the server did not ask for one",
            )),
        }
    }

    /// Looks up the token of a user whose SCRAM proof was right, and checks its role.
    fn principal_after_scram(&self, user: &str) -> PgWireResult<Principal> {
        let tokens = self.login.auth.tokens().current();
        // Revoked between the two SCRAM messages: the proof matched a token
        // that no longer exists.
        let record = tokens
            .get(user)
            .ok_or_else(|| login_failed(user, "the token was revoked"))?;
        if !record.roles.allows(Role::Read) {
            let error = AuthError::Forbidden {
                token: record.name.clone(),
                needed: Role::Read,
            };
            return Err(login_forbidden(user, &error));
        }
        Ok(Principal {
            token: Some(record.name.clone()),
            roles: record.roles.clone(),
        })
    }

    /// Registers the connection for cancellation, sends AuthenticationOk,
    /// the parameters and ReadyForQuery, and logs the login.
    async fn finish<C>(&self, client: &mut C, principal: Principal) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret_key) = self.pid_generator.generate(&*client);
        client.set_pid_and_secret_key(pid, secret_key.clone());
        let (cancel_handle, guard) = self.manager.register(pid, secret_key);
        let disconnected = self
            .tokens
            .lock()
            .expect("disconnect token map poisoned")
            .remove(&client.socket_addr())
            .unwrap_or_default();
        client.session_extensions().insert(ConnectionState {
            cancel_handle,
            disconnected,
            _guard: guard,
        });

        finish_authentication(client, &ApitrailParameters).await?;
        let metadata = client.metadata();
        tracing::info!(
            peer = %client.socket_addr(),
            user = metadata.get("user").map(String::as_str).unwrap_or(""),
            token = principal.name(),
            tls = client.is_secure(),
            database = metadata.get("database").map(String::as_str).unwrap_or(""),
            application = metadata.get("application_name").map(String::as_str).unwrap_or(""),
            "postgres connection started"
        );
        client.session_extensions().insert(principal);
        Ok(())
    }
}

fn user_name<C: ClientInfo>(client: &C) -> String {
    client.metadata().get("user").cloned().unwrap_or_default()
}

fn set_step<C: ClientInfo>(client: &C, step: Option<LoginStep>) {
    let login = client
        .session_extensions()
        .get_or_insert_with(Login::default);
    *login.0.lock().expect("login state poisoned") = step;
}

/// Builds a FATAL error, after which pgwire closes the connection.
fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// Builds the error of a failed password check. The client sees PostgreSQL's
/// wording, which does not tell an unknown user from a wrong password; the
/// log keeps the reason.
fn login_failed(user: &str, reason: &str) -> PgWireError {
    metrics::counter!("apitrail_auth_failures_total", "protocol" => "postgres").increment(1);
    tracing::info!(user, reason, "postgres login failed");
    fatal(
        INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

/// Builds the error of a login whose token is valid but lacks the role queries need.
fn login_forbidden(user: &str, error: &AuthError) -> PgWireError {
    metrics::counter!("apitrail_auth_failures_total", "protocol" => "postgres").increment(1);
    tracing::info!(user, error = %error, "postgres login rejected");
    fatal(INVALID_AUTHORIZATION, error.to_string())
}

/// Maps a rejected token check to its login error.
fn login_rejected(user: &str, error: &AuthError) -> PgWireError {
    if error.is_unauthenticated() {
        login_failed(user, &error.to_string())
    } else {
        login_forbidden(user, error)
    }
}

/// Makes every startup error FATAL: pgwire treats a non-fatal error during
/// startup as the end of the startup phase, which would skip the login.
fn ensure_fatal(error: PgWireError) -> PgWireError {
    let info = ErrorInfo::from(error);
    if info.is_fatal() {
        return PgWireError::UserError(Box::new(info));
    }
    fatal(&info.code, info.message)
}

struct ApitrailParameters;

impl ServerParameterProvider for ApitrailParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut parameters: HashMap<String, String> = STARTUP_PARAMETERS
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let metadata = client.metadata();
        parameters.insert(
            "application_name".to_owned(),
            metadata
                .get("application_name")
                .cloned()
                .unwrap_or_default(),
        );
        if let Some(user) = metadata.get("user") {
            parameters.insert("session_authorization".to_owned(), user.clone());
        }
        Some(parameters)
    }
}

#[async_trait]
impl StartupHandler for ApitrailStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                self.start(client).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                self.continue_login(client, message).await
            }
            _ => Ok(()),
        };
        result.map_err(ensure_fatal)
    }
}
