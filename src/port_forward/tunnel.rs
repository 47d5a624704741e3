//! Port-forward: one accepted connection → a WebSocket tunnel to the pod port resolved for it, and the bytes
//! copied both ways until either side ends (an error from the kubelet ends it as a failure). kube's task behind a
//! tunnel is aborted when the tunnel is dropped: it must not outlive the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, Portforwarder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::error::PortForwardError;
use super::spec::ForwardSpec;
use super::target::resolve;

/// After a connection ended, how long kube's tunnel gets to close its WebSocket cleanly before it is aborted.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// A WebSocket tunnel to one pod port; kube's task behind it is aborted when this is dropped.
pub(super) struct Tunnel {
    pub(super) pod: String,
    pub(super) port: u16,
    pub(super) forwarder: Option<Portforwarder>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(f) = &self.forwarder {
            f.abort();
        }
    }
}

/// Resolves the pod and port a new connection goes to, and opens the tunnel.
pub(super) async fn open(client: &Client, spec: &ForwardSpec) -> Result<Tunnel, PortForwardError> {
    let (pod, port) = resolve(client, spec).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let forwarder = pods
        .portforward(&pod, &[port])
        .await
        .map_err(|e| PortForwardError::api(&spec.target(), e))?;
    Ok(Tunnel {
        pod,
        port,
        forwarder: Some(forwarder),
    })
}

/// The pod side of a tunnel; calls `on_data` when the first bytes arrive from the pod (before they are passed on).
struct Watched<'a, S> {
    inner: S,
    on_data: Option<&'a (dyn Fn() + Sync)>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && let Some(f) = self.on_data.take()
        {
            f();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies bytes both ways until either side ends; an error-channel message from the kubelet ends it as a failure.
/// `works` is called when the pod answers and when the tunnel closes cleanly: the forward is healthy.
pub(super) async fn pipe(
    mut socket: TcpStream,
    mut tunnel: Tunnel,
    spec: &ForwardSpec,
    cancel: &CancellationToken,
    works: &(dyn Fn() + Sync),
) -> Result<(), PortForwardError> {
    let port = tunnel.port;
    let upstream_error = |message: String, pod: &str| PortForwardError::Upstream {
        target: spec.target(),
        pod: pod.to_string(),
        port,
        message: message.trim().to_string(),
    };
    let Some(forwarder) = tunnel.forwarder.as_mut() else {
        return Ok(());
    };
    let (Some(stream), Some(error)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        return Ok(());
    };
    let mut upstream = Watched {
        inner: stream,
        on_data: Some(works),
    };
    let mut error = Box::pin(error);
    let mut error_seen = false;
    {
        let copy = tokio::io::copy_bidirectional(&mut socket, &mut upstream);
        tokio::pin!(copy);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                message = &mut error, if !error_seen => {
                    error_seen = true;
                    if let Some(m) = message {
                        return Err(upstream_error(m, &tunnel.pod));
                    }
                }
                copied = &mut copy => {
                    if let Err(e) = copied {
                        tracing::debug!(error = %e, "port-forward connection ended with an error");
                    }
                    break;
                }
            }
        }
    }
    // Closing our end makes kube send Close; the error future resolves once its task has finished.
    drop(upstream);
    drop(socket);
    if !error_seen {
        let ended = tokio::select! {
            () = cancel.cancelled() => None,
            r = tokio::time::timeout(CLOSE_GRACE, &mut error) => r.ok(),
        };
        match ended {
            Some(Some(m)) => return Err(upstream_error(m, &tunnel.pod)),
            Some(None) => {}
            // Still running: dropping the tunnel aborts it.
            None => return Ok(()),
        }
    }
    if let Some(f) = tunnel.forwarder.take() {
        match f.join().await {
            Ok(()) => works(),
            // kube may report a send after the server's normal Close (STACK.md): not a failure of the forward.
            Err(e) => tracing::debug!(error = %e, "port-forward tunnel closed with an error"),
        }
    }
    Ok(())
}
