//! Accepting IMAP connections: implicit TLS on `imap.listen_tls`, STARTTLS on
//! `imap.listen`; connection limits in all and per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::session::{self, Context, End};

/// Longest a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(30);

/// Open connections, in all and per address.
#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Releases a connection slot when the session ends.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts on both listeners until shutdown.
pub async fn run(plain: TcpListener, implicit: TcpListener, acceptor: TlsAcceptor, ctx: Context) {
    let counts = Arc::new(Mutex::new(Counts::default()));
    loop {
        let (tcp, peer, tls) = tokio::select! {
            () = ctx.shutdown.stop.cancelled() => return,
            a = plain.accept() => match a { Ok((t, p)) => (t, p, false), Err(_) => continue },
            a = implicit.accept() => match a { Ok((t, p)) => (t, p, true), Err(_) => continue },
        };
        let slot = {
            let mut c = counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let per_ip = c.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if c.total >= ctx.config.imap.max_connections
                || per_ip >= ctx.config.imap.max_connections_per_ip
            {
                tracing::warn!(ip = %peer.ip(), "imap: connection limit reached");
                drop(c);
                tokio::spawn(refuse(tcp, tls, acceptor.clone()));
                continue;
            }
            c.total += 1;
            *c.per_ip.entry(peer.ip()).or_insert(0) += 1;
            Slot {
                counts: Arc::clone(&counts),
                ip: peer.ip(),
            }
        };
        let (ctx, acceptor) = (ctx.clone(), acceptor.clone());
        ctx.shutdown.tracker.clone().spawn(async move {
            let _slot = slot;
            let _ = tcp.set_nodelay(true);
            serve(tcp, tls, peer.ip(), acceptor, &ctx).await;
        });
    }
}

async fn serve(tcp: TcpStream, implicit: bool, ip: IpAddr, acceptor: TlsAcceptor, ctx: &Context) {
    // One deadline from accepting to logging in, across the TLS handshake and STARTTLS.
    let login_by = tokio::time::Instant::now() + ctx.config.imap.login_timeout;
    if implicit {
        if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
            session::run(tls, true, true, ip, login_by, ctx).await;
        }
        return;
    }
    if let End::StartTls(tcp) = session::run(tcp, false, true, ip, login_by, ctx).await
        && let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await
    {
        // No second greeting after STARTTLS (RFC 3501 §6.2.1).
        session::run(tls, true, false, ip, login_by, ctx).await;
    }
}

/// Tells a client over the limit why it is turned away.
async fn refuse(tcp: TcpStream, tls: bool, acceptor: TlsAcceptor) {
    use tokio::io::AsyncWriteExt as _;
    const BYE: &[u8] = b"* BYE too many connections, try again later\r\n";
    if tls {
        if let Ok(Ok(mut s)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
            let _ = s.write_all(BYE).await;
            let _ = s.shutdown().await;
        }
    } else {
        let mut tcp = tcp;
        let _ = tcp.write_all(BYE).await;
    }
}
