//! The DNS resolver for ratspost's own lookups of what others publish: the DKIM keys and ARC
//! sealers' keys of incoming mail ([`crate::arc`]).
//!
//! It uses the name servers of `delivery.resolvers` when that list is set (the same setting
//! direct MX delivery uses, so one line points all of ratspost's DNS at the city's
//! resolvers, or a test at its own server), the system's configuration otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Longest wait for one reply from one name server; a lookup tries each server at most
/// twice, so a dead server costs little more than this per server.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolver asking `servers` (each over UDP, then TCP, on its own port), or the system's
/// name servers when `servers` is empty; one reply is waited for at most `timeout` (and never
/// longer than [`QUERY_TIMEOUT`]).
///
/// # Errors
/// When `servers` is empty and the system's DNS configuration (`/etc/resolv.conf`) cannot be
/// read, or the resolver cannot be built.
pub fn resolver(servers: &[SocketAddr], timeout: Duration) -> anyhow::Result<TokioResolver> {
    use anyhow::Context as _;
    let mut builder = builder(servers)?;
    let options = builder.options_mut();
    options.timeout = timeout.clamp(Duration::from_millis(100), QUERY_TIMEOUT);
    options.attempts = 2;
    builder.build().context("DNS resolver")
}

/// A resolver builder for `servers` (each over UDP, then TCP, on its own port), or for the
/// system's name servers when `servers` is empty; callers set their own options. Shared by
/// ARC verification and direct MX delivery, so both ask the same servers.
///
/// # Errors
/// When `servers` is empty and the system's DNS configuration (`/etc/resolv.conf`) cannot be
/// read.
pub fn builder(
    servers: &[SocketAddr],
) -> anyhow::Result<hickory_resolver::ResolverBuilder<TokioRuntimeProvider>> {
    use anyhow::Context as _;
    if servers.is_empty() {
        return TokioResolver::builder_tokio()
            .context("cannot read the system's DNS configuration (set delivery.resolvers)");
    }
    let servers = servers
        .iter()
        .map(|addr| {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            server.connections = [ProtocolConfig::Udp, ProtocolConfig::Tcp]
                .into_iter()
                .map(|protocol| {
                    let mut c = ConnectionConfig::new(protocol);
                    c.port = addr.port();
                    c
                })
                .collect();
            server
        })
        .collect();
    Ok(TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    ))
}
