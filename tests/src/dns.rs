//! A small authoritative DNS server on loopback UDP, standing in for the internet's DNS
//! (which tests cannot reach): it answers MX, A, AAAA and TXT queries (DKIM keys at
//! `selector._domainkey.domain`) from a fixed zone and says NXDOMAIN for every other name. The daemon's real resolver (hickory) queries it over the
//! wire, so the test covers the lookups as they happen in production.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What a zone holds for one name.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// MX records: preference and exchanger ("." for a null MX).
    pub mx: Vec<(u16, String)>,
    /// Addresses (A and AAAA).
    pub ips: Vec<IpAddr>,
}

/// A running DNS server.
pub struct Dns {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    zone: Arc<Mutex<HashMap<String, Entry>>>,
    /// TXT records by name, apart from `zone` so `Entry` stays as the MX tests write it.
    txt: Arc<Mutex<HashMap<String, Vec<String>>>>,
    queries: Arc<Mutex<Vec<(String, RecordType)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Dns {
    /// Starts a server on an ephemeral loopback port with an empty zone.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind dns");
        let addr = socket.local_addr().expect("addr");
        let zone: Arc<Mutex<HashMap<String, Entry>>> = Arc::default();
        let txt: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let queries: Arc<Mutex<Vec<(String, RecordType)>>> = Arc::default();
        let (z, t, q) = (Arc::clone(&zone), Arc::clone(&txt), Arc::clone(&queries));
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..n], &z, &t, &q) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Self {
            addr,
            zone,
            txt,
            queries,
            task,
        }
    }

    /// Sets what `name` (without trailing dot) resolves to.
    pub fn set(&self, name: &str, entry: Entry) {
        self.zone
            .lock()
            .expect("lock")
            .insert(name.to_ascii_lowercase(), entry);
    }

    /// Adds a TXT record for `name` (without trailing dot), e.g. a DKIM key record at
    /// `selector._domainkey.domain`. Long values are split into 255-byte strings, as zone
    /// files do (RFC 1035 §3.3.14); readers join them again.
    pub fn set_txt(&self, name: &str, value: &str) {
        self.txt
            .lock()
            .expect("lock")
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.to_owned());
    }

    /// The queries received so far: name (lower case, no trailing dot) and type.
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.queries.lock().expect("lock").clone()
    }

    /// The `[delivery]` lines that point ratspost at this server.
    pub fn delivery_toml(&self) -> String {
        format!("resolvers = [\"{}\"]\n", self.addr)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(
    packet: &[u8],
    zone: &Mutex<HashMap<String, Entry>>,
    txt: &Mutex<HashMap<String, Vec<String>>>,
    queries: &Mutex<Vec<(String, RecordType)>>,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let query = request.queries.first()?.clone();
    let name = query
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    queries
        .lock()
        .expect("lock")
        .push((name.clone(), query.query_type()));
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(query.clone());
    let entry = zone.lock().expect("lock").get(&name).cloned();
    let texts = txt.lock().expect("lock").get(&name).cloned();
    if entry.is_none() && texts.is_none() {
        reply.metadata.response_code = ResponseCode::NXDomain;
        return reply.to_vec().ok();
    }
    let (entry, texts) = (entry.unwrap_or_default(), texts.unwrap_or_default());
    let owner = query.name().clone();
    let records: Vec<RData> = match query.query_type() {
        RecordType::MX => entry
            .mx
            .iter()
            .map(|(pref, host)| {
                let exchange = if host == "." {
                    Name::root()
                } else {
                    Name::from_ascii(format!("{host}.")).expect("exchange name")
                };
                RData::MX(MX::new(*pref, exchange))
            })
            .collect(),
        RecordType::A => entry
            .ips
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(RData::A(A(*v4))),
                IpAddr::V6(_) => None,
            })
            .collect(),
        RecordType::AAAA => entry
            .ips
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(RData::AAAA(AAAA(*v6))),
                IpAddr::V4(_) => None,
            })
            .collect(),
        RecordType::TXT => texts
            .iter()
            .map(|value| {
                let chunks = value
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8(c.to_vec()).expect("TXT values here are ASCII"));
                RData::TXT(TXT::new(chunks.collect()))
            })
            .collect(),
        _ => Vec::new(),
    };
    for data in records {
        reply.add_answer(Record::from_rdata(owner.clone(), 60, data));
    }
    reply.to_vec().ok()
}
