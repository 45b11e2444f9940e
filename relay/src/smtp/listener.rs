//! Accepting SMTP connections: the upstream allow-list (intake) and connection limits,
//! before any session state exists; for submission's implicit-TLS port the TLS handshake
//! comes first (RFC 8314 §3.3).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument as _;

use super::reply::Reply;
use super::session::{self, Context, Role};

/// Longest a TLS handshake on an implicit-TLS port may take.
const HANDSHAKE: Duration = Duration::from_secs(30);

/// Counts open connections per client IP; a guard gives its slot back on drop.
#[derive(Debug, Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            per_ip: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.per_ip.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections on `listener` until `ctx.shutdown.stop` is cancelled. Each session
/// runs in its own task, tracked by `ctx.shutdown.tracker`. With `implicit_tls` every
/// connection starts with a TLS handshake (submission's `listen_tls`).
pub async fn run(listener: TcpListener, ctx: Context, implicit_tls: bool) {
    let (max_connections, _) = limits(&ctx);
    let total = Arc::new(Semaphore::new(max_connections));
    let per_ip = Arc::new(PerIp::default());
    let mut backoff = Duration::from_millis(10);
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(err) => {
                // Typically EMFILE: wait and try again, never leave the loop.
                tracing::warn!(error = %err, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        next_id += 1;
        let span = match ctx.role {
            Role::Intake => tracing::info_span!("smtp", session = next_id, peer = %peer),
            Role::Submission(_) => {
                tracing::info_span!("submission", session = next_id, peer = %peer)
            }
        };
        let _ = stream.set_nodelay(true);
        let admission = admit(&ctx, &total, &per_ip, peer);
        let ctx = ctx.clone();
        ctx.shutdown.tracker.clone().spawn(
            async move {
                match admission {
                    Ok(slots) => {
                        tracing::debug!("connected");
                        serve(&ctx, stream, peer, implicit_tls).await;
                        drop(slots);
                        tracing::debug!("closed");
                    }
                    Err(reply) => {
                        tracing::info!(code = reply.code, reason = %reply.text, "connection refused");
                        match (&ctx.tls, implicit_tls) {
                            (Some(acceptor), true) => {
                                if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                                    session::refuse(tls, &reply).await;
                                }
                            }
                            _ => session::refuse(stream, &reply).await,
                        }
                    }
                }
            }
            .instrument(span),
        );
    }
}

async fn serve(ctx: &Context, stream: TcpStream, peer: SocketAddr, implicit_tls: bool) {
    let session = async {
        if !implicit_tls {
            return session::serve(ctx, stream, peer).await;
        }
        let Some(acceptor) = &ctx.tls else { return };
        match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => session::serve_tls(ctx, tls, peer).await,
            Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    };
    // Abort cuts off a session that outlives the grace period.
    tokio::select! {
        () = ctx.shutdown.abort.cancelled() => tracing::debug!("aborted by shutdown"),
        () = session => {}
    }
}

/// Connections in all and per client address for this listener's role.
fn limits(ctx: &Context) -> (usize, usize) {
    match ctx.role {
        Role::Intake => (
            ctx.config.smtp.max_connections,
            ctx.config.smtp.max_connections_per_ip,
        ),
        Role::Submission(_) => (
            ctx.config.submission.max_connections,
            ctx.config.submission.max_connections_per_ip,
        ),
    }
}

/// Decides whether a new connection gets a session; the permits travel with it.
fn admit(
    ctx: &Context,
    total: &Arc<Semaphore>,
    per_ip: &Arc<PerIp>,
    peer: SocketAddr,
) -> Result<(OwnedSemaphorePermit, IpSlot), Reply> {
    // Submission is for staff devices anywhere; intake only for the city's servers.
    if matches!(ctx.role, Role::Intake) && !ctx.config.smtp.is_upstream(peer.ip()) {
        return Err(Reply::new(
            554,
            [5, 7, 1],
            format!("{} is not allowed to send mail here", peer.ip()),
        )
        .and_close());
    }
    let permit = Arc::clone(total).try_acquire_owned().map_err(|_| {
        Reply::new(421, [4, 7, 0], "Too many connections, try again later").and_close()
    })?;
    let slot = per_ip.try_take(peer.ip(), limits(ctx).1).ok_or_else(|| {
        Reply::new(421, [4, 7, 0], "Too many connections from your address").and_close()
    })?;
    Ok((permit, slot))
}
