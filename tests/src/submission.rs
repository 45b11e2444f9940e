//! Mail submission as devices use it (RFC 6409, RFC 8314; issue #14 §1): the real daemon as
//! a child process with a `[submission]` section whose relay is an SMTP
//! [`Sink`](crate::sink::Sink) standing in for the city's mail server, a user with an app
//! password for one device, and client sessions that are already secured (and
//! authenticated).
//!
//! The submission ports are picked free before the daemon starts (the daemon binds exactly
//! what its configuration names), everything else listens on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use store::testing::TestDb;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::client::{Client, Reply};
use crate::daemon::{self, Daemon};

/// The user who submits: her login, her two addresses, her account password.
pub const ANNA_LOGIN: &str = "anna";
/// Anna's main address.
pub const ANNA: &str = "anna@stadt.test";
/// Anna's second address (mixed case, as an admin typed it).
pub const ANNA_ALIAS: &str = "Anna.Schmidt@stadt.test";
/// Anna's account password (for the web UI: never accepted for submission).
pub const ANNA_ACCOUNT_PASSWORD: &str = "Konto-Passwort-2026!";
/// A colleague whose identity anna must not borrow.
pub const BERND: &str = "bernd@stadt.test";
/// The device anna's app password is for.
pub const DEVICE: &str = "iPhone";

/// A secured client session.
pub type Tls = Client<TlsStream<TcpStream>>;

/// What a test daemon is configured with beyond the defaults of [`Submission::start`].
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// `submission.relay`; `None` leaves it out (submission off).
    pub relay: Option<SocketAddr>,
    /// Further `[submission]` lines (limits, `relay_tls`, `sensitive`, …).
    pub submission: String,
    /// The relay's certificate, trusted as `delivery.ca_file`.
    pub ca_file: Option<PathBuf>,
    /// Further `[delivery]` lines (beside 1 s retries and a 5 s timeout).
    pub delivery: String,
    /// Further sections, e.g. `[imap]` (then with its own `listen` and `listen_tls`;
    /// without one, IMAP gets ephemeral ports and a failure delay of 50 ms).
    pub extra: String,
}

/// A running daemon with submission, anna and her app password.
pub struct Submission {
    /// The daemon (`None` while it is stopped).
    pub daemon: Option<Daemon>,
    /// Its configuration file (for the command line).
    pub config: PathBuf,
    /// `submission.listen` (STARTTLS).
    pub starttls: SocketAddr,
    /// `submission.listen_tls` (implicit TLS).
    pub implicit: SocketAddr,
    /// Anna's app password for [`DEVICE`].
    pub app_password: String,
    /// Config, data directory, scratch files.
    pub dir: tempfile::TempDir,
    _db: TestDb,
}

/// A loopback address where nothing listens (yet).
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

impl Submission {
    /// Sets up an installation on `db` configured by `setup` (`ratspost init`; anna with
    /// [`ANNA`] and [`ANNA_ALIAS`]; bernd with [`BERND`]; an app password for anna's
    /// [`DEVICE`], all through the command line) and starts the daemon.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn start(db: TestDb, setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // With a relay the daemon binds any free ports and says which; without one nothing
        // is bound, and these addresses only name what must stay closed.
        let (starttls, implicit) = match setup.relay {
            Some(_) => (
                "127.0.0.1:0".parse().expect("addr"),
                "127.0.0.1:0".parse().expect("addr"),
            ),
            None => (free_port(), free_port()),
        };
        let relay = setup
            .relay
            .map(|a| format!("relay = \"{a}\"\n"))
            .unwrap_or_default();
        let ca = setup
            .ca_file
            .as_ref()
            .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
            .unwrap_or_default();
        // Failed logins wait less than by default (0.5 s, doubling), so that tests which
        // try wrong names do not crawl; the ban still needs as many failures.
        let imap = if setup.extra.contains("[imap]") {
            String::new()
        } else {
            "[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\nfailure_delay_ms = 50\n"
                .to_owned()
        };
        let sections = format!(
            "\n[submission]\nlisten = \"{starttls}\"\nlisten_tls = \"{implicit}\"\n{relay}{submission}\n\
             [delivery]\nresolvers = [\"127.0.0.1:9\"]\n{ca}retry_base_secs = 1\nretry_max_secs = 1\ntimeout_secs = 5\n{delivery}\n\
             {imap}{extra}\n",
            submission = setup.submission,
            delivery = setup.delivery,
            extra = setup.extra,
        );
        let config = daemon::write_config(dir.path(), &db.url, &sections);
        daemon::add_user(
            &config,
            ANNA_LOGIN,
            "staff",
            &[ANNA, ANNA_ALIAS],
            ANNA_ACCOUNT_PASSWORD,
        );
        daemon::add_user(&config, "bernd", "staff", &[BERND], "Bernd-Konto-2026!");
        let app_password = create_app_password(&config, ANNA_LOGIN, DEVICE);
        let daemon = Daemon::start(&config);
        let (starttls, implicit) = daemon
            .submission
            .map_or((starttls, implicit), |l| (l.starttls, l.implicit_tls));
        Self {
            daemon: Some(daemon),
            config,
            starttls,
            implicit,
            app_password,
            dir,
            _db: db,
        }
    }

    /// The daemon's certificate (generated on first start), for clients to trust.
    ///
    /// # Panics
    /// When it is not where `data_dir` says.
    #[must_use]
    pub fn cert(&self) -> PathBuf {
        let cert = self.dir.path().join("data").join("tls").join("cert.pem");
        assert!(cert.exists(), "no certificate at {}", cert.display());
        cert
    }

    /// What the daemon logged so far.
    #[must_use]
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
    }

    /// Connects to the STARTTLS port and reads the 220 greeting.
    pub async fn plain(&self) -> Client<TcpStream> {
        Client::greeted(self.starttls).await
    }

    /// The STARTTLS port after EHLO, STARTTLS (verified) and EHLO again; returns the session
    /// and the second EHLO reply.
    pub async fn secured(&self) -> (Tls, Reply) {
        let mut c = self.plain().await;
        c.ehlo().await;
        let mut c = c.starttls(&self.cert()).await;
        let ehlo = c.ehlo().await;
        (c, ehlo)
    }

    /// The implicit-TLS port after the (verified) handshake, the 220 greeting and EHLO;
    /// returns the session and the EHLO reply.
    pub async fn implicit(&self) -> (Tls, Reply) {
        implicit_from(Client::connect(self.implicit).await, &self.cert()).await
    }

    /// Like [`Self::implicit`], connecting from the loopback address `from`.
    pub async fn implicit_from(&self, from: std::net::IpAddr) -> (Tls, Reply) {
        implicit_from(
            Client::connect_from(from, self.implicit).await,
            &self.cert(),
        )
        .await
    }

    /// An implicit-TLS session in which anna authenticated (AUTH PLAIN, app password).
    pub async fn authed(&self) -> Tls {
        let (mut c, _) = self.implicit().await;
        c.auth_plain(ANNA_LOGIN, &self.app_password)
            .await
            .expect(235, "2.7.0");
        c
    }

    /// `ratspost queue list --json`.
    #[must_use]
    pub fn queue(&self) -> Vec<serde_json::Value> {
        let out = daemon::ratspost_ok(&self.config, &["queue", "list", "--json"], None);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// `ratspost audit list --json`.
    #[must_use]
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let out = daemon::ratspost_ok(&self.config, &["audit", "list", "--json"], None);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Waits (up to 30 s) until the queue satisfies `done`; returns it.
    ///
    /// # Panics
    /// When it never does.
    pub async fn wait_queue(
        &self,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut queue = Vec::new();
        for _ in 0..60 {
            queue = self.queue();
            if done(&queue) {
                return queue;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        panic!("the queue never reached the expected state: {queue:#?}");
    }

    /// `ratspost app-password revoke anna --label LABEL --by admin`.
    pub fn revoke(&self, label: &str) {
        daemon::ratspost_as_ok(
            &self.config,
            &[
                "app-password",
                "revoke",
                ANNA_LOGIN,
                "--label",
                label,
                "--by",
                "admin",
            ],
            &daemon::admin_password(&self.config),
            None,
        );
    }

    /// `ratspost ARGS… --by admin` with the admin's password on stdin; returns stdout.
    #[must_use]
    pub fn as_admin(&self, args: &[&str]) -> String {
        let mut args = args.to_vec();
        args.extend(["--by", "admin"]);
        daemon::ratspost_as_ok(
            &self.config,
            &args,
            &daemon::admin_password(&self.config),
            None,
        )
    }

    /// The store the daemon writes to (opened from the test; close it when done).
    ///
    /// # Panics
    /// When the configuration or the database cannot be opened.
    pub async fn store(&self) -> store::Store {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let config = relay::config::Config::parse(&text, Some(&self.config))
            .unwrap_or_else(|e| panic!("{e}"));
        relay::setup::open_store(&config).await.expect("store")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        self.daemon.take().expect("running").kill();
    }

    /// Starts the daemon again on the same configuration and database (its submission
    /// ports may differ from before: they are any free ones).
    pub fn restart(&mut self) {
        assert!(self.daemon.is_none(), "still running");
        let daemon = Daemon::start(&self.config);
        if let Some(listeners) = daemon.submission {
            (self.starttls, self.implicit) = (listeners.starttls, listeners.implicit_tls);
        }
        self.daemon = Some(daemon);
    }

    /// SIGTERM and wait; asserts a clean exit.
    pub fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            assert!(d.terminate().success(), "unclean exit on SIGTERM");
        }
    }
}

async fn implicit_from(c: Client<TcpStream>, cert: &Path) -> (Tls, Reply) {
    let mut c = c.into_tls(cert).await.expect("TLS handshake");
    let greeting = c.reply().await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
    let ehlo = c.ehlo().await;
    (c, ehlo)
}

/// `ratspost app-password create LOGIN --label LABEL --by admin --json`; returns the password
/// (the shared [`daemon::app_password`]).
///
/// # Panics
/// When the command fails.
#[must_use]
pub fn create_app_password(config: &Path, login: &str, label: &str) -> String {
    daemon::app_password(config, login, label)
}

/// The mechanisms an EHLO reply offers in its `AUTH` line, upper-cased and sorted (empty
/// when there is no such line).
#[must_use]
pub fn auth_mechanisms(ehlo: &Reply) -> Vec<String> {
    let mut out: Vec<String> = ehlo
        .lines
        .iter()
        .filter_map(|l| {
            let upper = l.to_ascii_uppercase();
            upper
                .strip_prefix("AUTH ")
                .or_else(|| upper.strip_prefix("AUTH="))
                .map(str::to_owned)
        })
        .flat_map(|m| {
            m.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<String>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether an EHLO reply offers the keyword `ext` (e.g. `STARTTLS`).
#[must_use]
pub fn offers(ehlo: &Reply, ext: &str) -> bool {
    ehlo.lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(ext))
    })
}

/// A message from `from` (header and envelope alike in most tests) to `to`, with a Date and
/// a Message-ID `<ID@stadt.test>`.
#[must_use]
pub fn message(id: &str, from: &str, to: &[&str], body: &str) -> Vec<u8> {
    format!(
        "From: Anna Schmidt <{from}>\r\nTo: {}\r\nSubject: Antwort {id}\r\nDate: Tue, 1 Dec 2026 09:00:00 +0100\r\nMessage-ID: <{id}@stadt.test>\r\n\r\n{body}\r\n",
        to.join(", ")
    )
    .into_bytes()
}

/// Splits what the relay received into the trace fields ratspost put on top and the rest:
/// asserts that `relayed` is exactly one `Received:` field (possibly folded) followed by
/// `submitted` unchanged; returns the field.
///
/// # Panics
/// When it is anything else.
#[must_use]
#[track_caller]
pub fn received_line(relayed: &[u8], submitted: &[u8]) -> String {
    let text = String::from_utf8_lossy(relayed);
    assert!(
        relayed.ends_with(submitted),
        "the relayed message is not the submitted one with lines on top:\n{text}"
    );
    let top = &text[..relayed.len() - submitted.len()];
    assert!(
        top.starts_with("Received:"),
        "the relayed message does not begin with Received:\n{text}"
    );
    let lines: Vec<&str> = top.split_inclusive("\r\n").collect();
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|l| l.starts_with(' ') || l.starts_with('\t')),
        "more than one field was put on top of the submitted message:\n{top}"
    );
    top.to_owned()
}

/// The values of header field `name` (case-insensitive) in `message`, unfolded.
#[must_use]
pub fn header_values(message: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = fields.last_mut() {
                last.push_str(line);
            }
        } else {
            fields.push(line.to_owned());
        }
    }
    fields
        .into_iter()
        .filter_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}
