//! The daemon in-process: the same `server::start` as `ratspost serve`, on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use relay::config::Config;
use relay::server::{self, Listeners};
use relay::shutdown::Shutdown;
use store::testing::TestDb;
use store::{NewUser, Role, Store};

/// A running server with its own data directory and database.
pub struct Server {
    /// Where SMTP listens.
    pub smtp: SocketAddr,
    /// Where the web UI listens (HTTPS).
    pub web: SocketAddr,
    /// IMAP with STARTTLS.
    pub imap: SocketAddr,
    /// IMAP over implicit TLS.
    pub imaps: SocketAddr,
    /// The store it writes to.
    pub store: Store,
    /// Its configuration.
    pub config: Arc<Config>,
    /// Its shutdown handle.
    pub shutdown: Shutdown,
    /// Its audit checkpoint duty (for tests that run a task's step by hand, as retention).
    pub checkpoints: Arc<relay::checkpoint::Duty>,
    pub dir: tempfile::TempDir,
    _db: TestDb,
}

impl Server {
    /// Hands `raw` over SMTP to the intake for `to`, as the office's mail server does;
    /// asserts the `250`.
    pub async fn deliver(&self, to: &str, raw: &[u8]) {
        let mut c = crate::client::Client::greeted(self.smtp).await;
        c.ehlo().await;
        c.send_mail("amt@verwaltung.test", &[to], raw)
            .await
            .expect(250, "2.0.0");
        c.cmd("QUIT").await;
    }

    /// Gives user `user_id` the app password `password` for a device `label`, stored as
    /// `ratspost app-password create` stores it.
    pub async fn give_app_password(&self, user_id: i64, label: &str, password: &str) {
        self.store
            .create_app_password(
                user_id,
                label,
                &store::token::hash(password),
                store::now_millis(),
            )
            .await
            .expect("app password");
    }

    /// A server on SQLite with `[smtp]` settings added from `smtp_toml`.
    pub async fn start(smtp_toml: &str) -> Self {
        Self::start_on(TestDb::sqlite(), smtp_toml).await
    }

    /// A server on `db`.
    pub async fn start_on(db: TestDb, smtp_toml: &str) -> Self {
        Self::start_full(db, smtp_toml, "").await
    }

    /// A server on `db` with `[smtp]` settings and further sections (`extra`, TOML).
    pub async fn start_full(db: TestDb, smtp_toml: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "data_dir = {dir:?}\n[database]\nurl = {url:?}\n[smtp]\nlisten = \"127.0.0.1:0\"\nhostname = \"mx.test\"\n{smtp_toml}\n[shutdown]\ngrace_secs = 5\n{extra}\n{dns}",
            dir = dir.path().display().to_string(),
            url = db.url,
            dns = crate::test_sections(extra),
        );
        let config = Config::parse(&text, None).unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = relay::setup::prepare(&config).await.expect("setup");
        let listeners = Listeners::bind(&config).await.expect("bind");
        let smtp = listeners.smtp_addr().expect("addr");
        let web = listeners.web_addr().expect("addr");
        let (imap, imaps) = listeners.imap_addrs().expect("addr");
        let config = Arc::new(config);
        let shutdown = Shutdown::new();
        let checkpoints =
            server::start(listeners, Arc::clone(&config), store.clone(), &shutdown).expect("start");
        Self {
            smtp,
            web,
            imap,
            imaps,
            store,
            config,
            shutdown,
            checkpoints,
            dir,
            _db: db,
        }
    }

    /// Enrols a staff user with `addresses`; returns the user id.
    pub async fn enrol(&self, login: &str, addresses: &[&str]) -> i64 {
        self.add_user(login, Role::Staff, addresses).await
    }

    /// Creates a user with `role` and `addresses`; returns the user id.
    pub async fn add_user(&self, login: &str, role: Role, addresses: &[&str]) -> i64 {
        self.store
            .create_user(&NewUser {
                login: login.into(),
                name: login.into(),
                role,
                password_hash: "$unused$".into(),
                addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            })
            .await
            .expect("user")
            .id
    }

    /// An active forwarding exemption for `login` to `target`: requested by the user,
    /// approved by `approver` (an admin who must exist), confirmed; returns its id.
    pub async fn exempt(&self, login: &str, target: &str, approver: &str) -> i64 {
        let (config, now) = (&self.config, store::now_millis());
        let e = self
            .store
            .request_exemption(
                &store::ExemptionRequest {
                    login: login.into(),
                    target: target.into(),
                    days: 7,
                    reason: "Test".into(),
                    by: login.into(),
                },
                &config.exemptions.policy,
                "code-hash",
                |id| {
                    relay::compose::confirmation(
                        &config.notices,
                        id,
                        login,
                        target,
                        "0",
                        7,
                        "-",
                        "-",
                    )
                },
                now,
            )
            .await
            .expect("request");
        self.store
            .approve_exemption(e.id, approver, &config.exemptions.policy, now)
            .await
            .expect("approve");
        let confirmed = self
            .store
            .confirm_exemption(e.id, "code-hash", &config.exemptions.policy, now)
            .await
            .expect("confirm");
        assert!(
            matches!(confirmed, store::Confirmation::Accepted(ref e) if e.state == store::ExemptionState::Active)
        );
        e.id
    }

    /// Messages stored so far, oldest first, with their raw bytes.
    pub async fn messages(&self) -> Vec<(store::MessageSummary, Vec<u8>)> {
        let mut list = self
            .store
            .list_messages(&store::MessageFilter::default())
            .await
            .expect("list");
        list.reverse();
        let mut out = Vec::new();
        for m in list {
            let raw = self.store.message_raw(m.id).await.expect("raw");
            out.push((m, raw));
        }
        out
    }

    /// Waits (up to 30 s) until every message is classified and its forward decisions made;
    /// returns all messages.
    ///
    /// # Panics
    /// When the pipeline does not catch up in time.
    pub async fn classified(&self) -> Vec<store::MessageSummary> {
        for _ in 0..300 {
            let list = self
                .store
                .list_messages(&store::MessageFilter::default())
                .await
                .expect("list");
            if list.iter().all(|m| m.state == "processed") {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("messages were not classified within 30 s");
    }

    /// The certificate clients should trust.
    pub fn cert(&self) -> std::path::PathBuf {
        self.config.tls.cert.clone()
    }

    /// Graceful shutdown with a short grace period.
    pub async fn stop(self) {
        self.shutdown.run(Duration::from_secs(5)).await;
        self.store.close().await;
    }
}
