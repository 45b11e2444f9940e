//! Direct delivery to the recipient domain's mail exchangers (RFC 5321 §5.1), used when no
//! smarthost is configured.
//!
//! The MX records are tried in order of preference (equal preferences in random order, as
//! §5.1 asks), each host's addresses in turn; a domain without MX records is its own
//! exchanger ("implicit MX"), a domain whose only MX is "." accepts no mail (null MX,
//! RFC 7505). A temporary failure at one address moves on to the next; a permanent refusal
//! (5xx) ends the attempt, as the domain has spoken. TLS is judged per host against the MX
//! name, with the same policy as for a smarthost.
//!
//! Addresses in loopback, private, link-local and similar ranges are refused unless
//! `delivery.mx_private_addresses` allows them: the private address of an exemption is typed
//! in by a user, and its domain's MX must not be able to point ratspost's mail at hosts inside
//! the city's network.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::client::{self, Hop, SendError};
use crate::config::DeliveryConfig;

/// At most this many addresses are tried per attempt, so a domain with many MX hosts cannot
/// keep a delivery slot busy for long.
const MAX_ADDRESSES: usize = 8;

/// Delivery to the MX hosts of each recipient's domain.
pub struct Mx {
    resolver: TokioResolver,
    port: u16,
    private_addresses: bool,
    /// Settings shared by every hop (TLS policy, trust, EHLO name, timeout); address and
    /// name are filled in per host.
    template: Hop,
}

impl Mx {
    /// Direct delivery with `config`'s resolvers (or the system's) and `template`'s settings.
    ///
    /// # Errors
    /// When the system resolver configuration cannot be read.
    pub fn new(config: &DeliveryConfig, template: Hop) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let mut builder = crate::resolver::builder(&config.resolvers)
            .context("direct MX delivery (or set delivery.smarthost)")?;
        let options = builder.options_mut();
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.timeout = config.timeout.min(std::time::Duration::from_secs(30));
        let resolver = builder
            .build()
            .context("direct MX delivery: DNS resolver")?;
        Ok(Self {
            resolver,
            port: config.mx_port,
            private_addresses: config.mx_private_addresses,
            template,
        })
    }

    /// Delivers `body` to `rcpt` at its domain's exchangers.
    ///
    /// # Errors
    /// Permanent when the domain does not exist, accepts no mail, or an exchanger refused
    /// with 5xx; temporary otherwise, naming what was tried.
    pub async fn send(
        &self,
        mail_from: &str,
        rcpt: &str,
        body: &[u8],
        gate: &impl client::EndGate,
    ) -> Result<(), SendError> {
        let domain = rcpt
            .rsplit_once('@')
            .map(|(_, d)| d.trim_matches(['[', ']']))
            .filter(|d| !d.is_empty())
            .ok_or_else(|| SendError::Permanent(format!("{rcpt:?} has no domain")))?;
        let mut errors = Vec::new();
        let mut tried = 0;
        for exchange in self.exchangers(domain).await? {
            let addresses = match self.addresses(&exchange).await {
                Ok(a) => a,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            for ip in addresses {
                if tried == MAX_ADDRESSES {
                    break;
                }
                if !self.private_addresses && !is_public(ip) {
                    errors.push(format!(
                        "{exchange} has the non-public address {ip} \
                         (delivery.mx_private_addresses is off)"
                    ));
                    continue;
                }
                tried += 1;
                let hop = Hop {
                    address: SocketAddr::new(ip, self.port).to_string(),
                    host: exchange.clone(),
                    auth: None,
                    ..self.template.clone()
                };
                match client::send(&hop, mail_from, rcpt, body, gate).await {
                    Ok(()) => return Ok(()),
                    Err(SendError::Permanent(e)) => {
                        return Err(SendError::Permanent(format!("{exchange} ({ip}): {e}")));
                    }
                    Err(SendError::Temporary(e)) => errors.push(format!("{exchange} ({ip}): {e}")),
                }
            }
        }
        Err(SendError::Temporary(if errors.is_empty() {
            format!("no usable mail exchanger for {domain}")
        } else {
            errors.join("; ")
        }))
    }

    /// The exchanger names for `domain`, most preferred first.
    async fn exchangers(&self, domain: &str) -> Result<Vec<String>, SendError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let lookup = match self.resolver.lookup(fqdn.as_str(), RecordType::MX).await {
            Ok(lookup) => lookup,
            Err(err) => {
                return match no_records(&err) {
                    Some(ResponseCode::NXDomain) => Err(SendError::Permanent(format!(
                        "the domain {domain} does not exist (DNS NXDOMAIN)"
                    ))),
                    // No MX at all: the domain itself is the exchanger (RFC 5321 §5.1).
                    Some(_) => Ok(vec![domain.to_owned()]),
                    None => Err(SendError::Temporary(format!(
                        "DNS lookup of MX for {domain}: {err}"
                    ))),
                };
            }
        };
        let mut records: Vec<(u16, u32, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((
                    mx.preference,
                    rand::random::<u32>(),
                    mx.exchange.to_ascii().trim_end_matches('.').to_owned(),
                )),
                _ => None,
            })
            .collect();
        if records.iter().any(|(_, _, name)| name.is_empty()) {
            // RFC 7505: "." as exchanger means the domain accepts no mail.
            return Err(SendError::Permanent(format!(
                "the domain {domain} accepts no mail (null MX)"
            )));
        }
        if records.is_empty() {
            return Ok(vec![domain.to_owned()]);
        }
        records.sort();
        Ok(records.into_iter().map(|(_, _, name)| name).collect())
    }

    /// The addresses of one exchanger.
    async fn addresses(&self, exchange: &str) -> Result<Vec<IpAddr>, String> {
        let fqdn = format!("{exchange}.");
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(err) if no_records(&err).is_some() => Err(format!("{exchange} has no address")),
            Err(err) => Err(format!("DNS lookup of {exchange}: {err}")),
        }
    }
}

/// The response code when `err` says that no records exist (NXDOMAIN or an empty answer).
fn no_records(err: &NetError) -> Option<ResponseCode> {
    match err {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
            Some(*response_code)
        }
        _ => None,
    }
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or unspecified).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
        for ip in [
            "80.150.6.143",
            "212.227.15.41",
            "2a00:1450:4001:80b::201b",
            "100.128.0.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as non-public");
        }
    }
}
