//! A real browser for the web UI tests: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, plain HTTP on loopback) with the `fantoccini` client.
//!
//! Our own HTTP client ([`crate::http`]) sends exactly what a test says; a browser decides
//! for itself which `Origin` and `Referer` a form POST carries, which cookies it keeps and
//! where it follows a redirect — the behaviour the web UI must work with (issue 9: under
//! `Referrer-Policy: no-referrer` Chromium posted our own forms with `Origin: null`).
//!
//! [`Browser::start`] starts `chromedriver` on an ephemeral port and, through it, Chromium
//! with a fresh profile in a temporary directory; the daemon's self-signed certificate is
//! accepted with the `acceptInsecureCerts` capability. One browser runs at a time (Chromium
//! is heavy on a two-core machine): a second `start` waits for the first to end.
//! [`Browser::close`] ends the WebDriver session (Chromium quits) and then chromedriver;
//! dropping a `Browser` without it (a failed assertion) terminates both processes, which
//! share a process group of their own.
//!
//! Without `chromium` or `chromedriver` on the `PATH`, `start` says `SKIPPED: …` and
//! returns `None`; under `CI=true` it fails instead.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The Chromium switches: headless, no sandbox (tests may run as root in a container), and
/// nothing that talks to the network on its own (updates, sync, safe browsing lists).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// How long chromedriver may take to listen, and a page or element to appear.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// One browser at a time.
static ONE_AT_A_TIME: LazyLock<Arc<Mutex<()>>> = LazyLock::new(|| Arc::new(Mutex::new(())));

/// A headless Chromium pointed at one web UI.
pub struct Browser {
    /// The WebDriver client, for what the helpers below do not cover.
    pub client: Client,
    /// `https://host:port` of the web UI.
    base: String,
    /// chromedriver and Chromium, ended on drop (fields drop in order: the processes
    /// before their directory).
    _driver: Driver,
    /// The Chromium profile and chromedriver's log.
    _dir: tempfile::TempDir,
    _turn: OwnedMutexGuard<()>,
}

impl Browser {
    /// Starts chromedriver and Chromium for the web UI at `web` (HTTPS). `None` when they
    /// are not installed (after saying `SKIPPED`).
    ///
    /// # Panics
    /// Under `CI=true` when they are missing; when they do not start (with chromedriver's
    /// log).
    pub async fn start(web: SocketAddr) -> Option<Self> {
        let (Some(chromium), Some(chromedriver)) = (find("chromium"), find("chromedriver")) else {
            crate::skip("chromium and chromedriver (Debian: chromium chromium-driver)");
            return None;
        };
        let turn = Arc::clone(&ONE_AT_A_TIME).lock_owned().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log_path = dir.path().join("chromedriver.log");
        let mut driver = Driver(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log_path.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group: Chromium joins it, and Drop ends both with one signal.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display())),
        );
        let client = connect(&mut driver, port, &chromium, dir.path()).await;
        Some(Self {
            client,
            base: format!("https://{web}"),
            _driver: driver,
            _dir: dir,
            _turn: turn,
        })
    }

    /// The absolute URL of `path` on the web UI.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens `path` of the web UI, as typing it into the address bar (or clicking a link in
    /// a mail program) does.
    pub async fn open(&self, path: &str) {
        let url = self.url(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The path and query of the page shown now.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The visible text of the first element matching `css`, waiting for it to appear.
    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.expect("text")
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Types `value` into the form field named `name`.
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self.element(&format!("[name=\"{name}\"]")).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    /// Clicks the first element matching `css` and waits until the page it leads to has
    /// replaced this one and shows its `<h1>`.
    pub async fn click(&self, css: &str) {
        let before = self.element("h1").await;
        self.element(css).await.click().await.expect("click");
        // The old page's heading goes stale once the new page has replaced it.
        let started = Instant::now();
        while before.text().await.is_ok() {
            assert!(
                started.elapsed() < WAIT_TIMEOUT,
                "clicking {css} led nowhere"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.element("h1").await;
    }

    /// The value of cookie `name` in the browser (HttpOnly ones included).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on {}: {e}", self.base))
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver (on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// The full path of `program` on the `PATH`.
fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// chromedriver's log in `dir` (for failure messages).
fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default()
}

/// Waits for chromedriver to listen, then opens a session (which starts Chromium).
async fn connect(driver: &mut Driver, port: u16, chromium: &Path, dir: &Path) -> Client {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = driver.0.try_wait() {
            panic!("chromedriver exited ({status}):\n{}", log(dir));
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "chromedriver did not listen:\n{}",
            log(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--user-data-dir={}", dir.join("profile").display()));
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert("acceptInsecureCerts".into(), true.into());
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot start Chromium: {e}\n{}", log(dir)))
}

/// The chromedriver process; Chromium runs as its child, in its process group.
struct Driver(Child);

impl Driver {
    /// Sends `signal` to the process group (chromedriver and Chromium).
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args(["-s", signal, "--", &format!("-{}", self.0.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Until chromedriver is reaped its id (the group's) cannot be given to another.
        self.signal_group("TERM");
        let started = Instant::now();
        while !matches!(self.0.try_wait(), Ok(Some(_))) {
            if started.elapsed() > Duration::from_secs(5) {
                self.signal_group("KILL");
                let _ = self.0.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Chromium's helpers may outlive chromedriver by a moment: end what is left.
        self.signal_group("KILL");
    }
}
