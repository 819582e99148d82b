//! HTTPS listener of the HTTP API.
//!
//! `axum::serve` accepts plain TCP only. This accept loop runs the TLS
//! handshake with tokio-rustls and serves each connection with hyper-util's
//! automatic builder, which speaks HTTP/2 or HTTP/1.1 as ALPN chose. Like
//! `axum::serve`, it gives handlers `ConnectInfo<SocketAddr>`, passes
//! response trailers through, and on shutdown stops accepting, then waits
//! for open requests to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::tls::HANDSHAKE_TIMEOUT;

/// Serves `router` over TLS on `listener` until `signal` completes, then
/// waits for every open connection to finish its requests.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    signal: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut signal = pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                // Taken before the handshake, so shutdown also waits for
                // connections still in their handshake.
                let watcher = graceful.watcher();
                tokio::spawn(serve_connection(
                    socket,
                    peer,
                    acceptor.clone(),
                    builder.clone(),
                    router.clone(),
                    watcher,
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "accepting an HTTPS connection failed");
                // Usually out of file descriptors: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    tracing::info!(
        open_connections = graceful.count(),
        "HTTPS listener stopped; waiting for open connections"
    );
    graceful.shutdown().await;
}

/// Runs the TLS handshake, then serves HTTP on the connection until the
/// client closes it or `watcher` reports shutdown and the open requests end.
async fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    watcher: Watcher,
) {
    if let Err(error) = socket.set_nodelay(true) {
        tracing::debug!(%peer, %error, "setting TCP_NODELAY failed");
    }
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            handshake_failed(peer, &error);
            return;
        }
        Err(_elapsed) => {
            handshake_failed(peer, &format!("timed out after {HANDSHAKE_TIMEOUT:?}"));
            return;
        }
    };

    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "HTTPS connection ended with an error");
    }
}

/// Logs and counts a failed handshake, such as a client that rejects the
/// certificate or sends plain HTTP to the TLS port.
fn handshake_failed(peer: SocketAddr, error: &dyn std::fmt::Display) {
    tracing::debug!(%peer, %error, "TLS handshake on the HTTP port failed");
    metrics::counter!("apitrail_tls_handshake_failures_total", "protocol" => "http").increment(1);
}
