//! NoticeResponse messages that a query's row stream raises, such as the
//! warning that a result was cut at the row limit.
//!
//! pgwire sends a result's rows after `do_query` has returned, from a stream
//! that has no access to the connection. The stream therefore queues its
//! notices in [`PendingNotices`], and [`NoticeClient`], which wraps the
//! connection while pgwire sends a result, writes them right after the
//! result's CommandComplete and before the next message.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, SessionExtensions,
};
use datafusion_postgres::pgwire::error::ErrorInfo;
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::messages::ProtocolVersion;
use datafusion_postgres::pgwire::messages::response::{NoticeResponse, TransactionStatus};
use datafusion_postgres::pgwire::messages::startup::SecretKey;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls::pki_types::CertificateDer;
use futures::Sink;

/// SQLSTATE of a notice with severity WARNING: `warning`.
const WARNING: &str = "01000";

/// Warnings waiting for the CommandComplete of the result that raised them,
/// kept per connection in its session extensions.
#[derive(Debug, Default)]
pub struct PendingNotices {
    messages: Mutex<Vec<String>>,
}

impl PendingNotices {
    /// Returns the queue of the connection of `client`, creating it on first use.
    pub fn of(client: &impl ClientInfo) -> Arc<PendingNotices> {
        client
            .session_extensions()
            .get_or_insert_with(PendingNotices::default)
    }

    /// Queues a WARNING with `message`.
    pub fn warn(&self, message: String) {
        self.messages
            .lock()
            .expect("the notice queue lock is never poisoned")
            .push(message);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .messages
                .lock()
                .expect("the notice queue lock is never poisoned"),
        )
    }
}

fn warning(message: String) -> PgWireBackendMessage {
    let info = ErrorInfo::new("WARNING".to_owned(), WARNING.to_owned(), message);
    PgWireBackendMessage::NoticeResponse(NoticeResponse::from(info))
}

/// A connection that sends the [`PendingNotices`] of a result after its
/// CommandComplete. Every other call goes to the wrapped connection.
pub struct NoticeClient<'a, C> {
    inner: &'a mut C,
    pending: Arc<PendingNotices>,
    /// Notices taken from `pending`, sent before the next message or flush.
    queued: VecDeque<PgWireBackendMessage>,
}

impl<'a, C: ClientInfo> NoticeClient<'a, C> {
    pub fn new(inner: &'a mut C) -> Self {
        let pending = PendingNotices::of(&*inner);
        NoticeClient {
            inner,
            pending,
            queued: VecDeque::new(),
        }
    }
}

impl<C> NoticeClient<'_, C>
where
    C: Sink<PgWireBackendMessage> + Unpin,
{
    /// Writes the queued notices to the connection.
    fn poll_send_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        while !self.queued.is_empty() {
            ready!(Pin::new(&mut *self.inner).poll_ready(cx))?;
            if let Some(message) = self.queued.pop_front() {
                Pin::new(&mut *self.inner).start_send(message)?;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<C> Sink<PgWireBackendMessage> for NoticeClient<'_, C>
where
    C: Sink<PgWireBackendMessage> + Unpin,
{
    type Error = C::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_send_queued(cx))?;
        Pin::new(&mut *this.inner).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let completes = matches!(item, PgWireBackendMessage::CommandComplete(_));
        Pin::new(&mut *this.inner).start_send(item)?;
        if completes {
            this.queued
                .extend(this.pending.take().into_iter().map(warning));
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_send_queued(cx))?;
        Pin::new(&mut *this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_send_queued(cx))?;
        Pin::new(&mut *this.inner).poll_close(cx)
    }
}

impl<C: ClientInfo> ClientInfo for NoticeClient<'_, C> {
    fn socket_addr(&self) -> SocketAddr {
        self.inner.socket_addr()
    }

    fn is_secure(&self) -> bool {
        self.inner.is_secure()
    }

    fn protocol_version(&self) -> ProtocolVersion {
        self.inner.protocol_version()
    }

    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.inner.set_protocol_version(version);
    }

    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.inner.pid_and_secret_key()
    }

    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.inner.set_pid_and_secret_key(pid, secret_key);
    }

    fn state(&self) -> PgWireConnectionState {
        self.inner.state()
    }

    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.inner.set_state(new_state);
    }

    fn transaction_status(&self) -> TransactionStatus {
        self.inner.transaction_status()
    }

    fn set_transaction_status(&mut self, new_status: TransactionStatus) {
        self.inner.set_transaction_status(new_status);
    }

    fn metadata(&self) -> &HashMap<String, String> {
        self.inner.metadata()
    }

    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.inner.metadata_mut()
    }

    fn session_extensions(&self) -> &SessionExtensions {
        self.inner.session_extensions()
    }

    fn sni_server_name(&self) -> Option<&str> {
        self.inner.sni_server_name()
    }

    fn client_certificates<'a>(&self) -> Option<&[CertificateDer<'a>]> {
        self.inner.client_certificates()
    }
}

impl<C: ClientPortalStore> ClientPortalStore for NoticeClient<'_, C> {
    type PortalStore = C::PortalStore;

    fn portal_store(&self) -> &Self::PortalStore {
        self.inner.portal_store()
    }
}
