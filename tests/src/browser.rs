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
//!
//! Accessibility and small screens (issue #12 §6, §7): [`Browser::axe`] runs axe-core (the
//! npm package pinned in `tests/axe/package.json`, installed by `.ci/run` with `npm ci`) in
//! the page shown; [`Browser::screenshot`] writes the page at desktop (1280×800) and phone
//! (390×844) size to `target/screenshots/`; [`Browser::overflow`] names what is wider than
//! a phone's screen.

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

    /// Runs axe-core in the page shown now (WCAG 2.0/2.1 A and AA rules and axe's best
    /// practices) and returns its violations.
    ///
    /// axe is injected through WebDriver's script execution, which the page's CSP
    /// (`default-src 'none'`, no scripts) does not govern — the test
    /// `axe_runs_under_the_pages_csp` shows both that the page itself cannot run a script
    /// and that axe runs.
    ///
    /// # Panics
    /// When `tests/axe/node_modules/axe-core/axe.min.js` is missing (`npm ci --prefix
    /// tests/axe`), or axe fails.
    pub async fn axe(&self) -> Vec<Violation> {
        let source = std::fs::read_to_string(AXE_JS).unwrap_or_else(|e| {
            panic!("{AXE_JS}: {e} (install it with `npm ci --prefix tests/axe`)")
        });
        self.client
            .execute(&source, Vec::new())
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => ({
                       id: v.id, impact: v.impact || '', help: v.help,
                       nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.html)
                   }))))
                   .catch(e => done({ error: String(e) }));",
                Vec::new(),
            )
            .await
            .expect("run axe-core");
        if let Some(error) = result.get("error") {
            panic!("axe-core failed: {error}");
        }
        serde_json::from_value(result).expect("axe-core's violations")
    }

    /// The serious and critical violations of [`Browser::axe`] (what the tests forbid),
    /// described one per line; empty when there are none.
    pub async fn axe_serious(&self) -> String {
        self.axe()
            .await
            .iter()
            .filter(|v| v.serious())
            .map(|v| format!("{v}\n"))
            .collect()
    }

    /// [`Browser::axe_serious`] at a phone's screen (390×844), where wide tables scroll and
    /// other rules apply than at desktop width; the window is left at desktop size.
    pub async fn axe_serious_at_phone(&self) -> String {
        self.resize(PHONE.0, PHONE.1).await;
        let found = self.axe_serious().await;
        self.resize(DESKTOP.0, DESKTOP.1).await;
        found
    }

    /// Writes the page shown now as `target/screenshots/NAME-desktop.png` (1280 wide) and
    /// `NAME-phone.png` (390 wide): the whole page, at least the screen's height (800,
    /// 844), so the phone's shows what wraps; the window is left at desktop size.
    pub async fn screenshot(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (size, (width, height)) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.resize(width, height).await;
            let full = self
                .client
                .execute("return document.documentElement.scrollHeight;", Vec::new())
                .await
                .expect("page height")
                .as_u64()
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(height);
            self.resize(width, full.clamp(height, MAX_SCREENSHOT_HEIGHT))
                .await;
            let png = self.client.screenshot().await.expect("screenshot");
            let path = dir.join(format!("{name}-{size}.png"));
            std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        self.resize(DESKTOP.0, DESKTOP.1).await;
    }

    /// At a phone's screen (390×844): `None` when nothing is wider than the screen
    /// (`document.documentElement.scrollWidth <= clientWidth`), else the widths and the
    /// widest elements sticking out. The window is left at desktop size.
    pub async fn overflow(&self) -> Option<String> {
        self.resize(PHONE.0, PHONE.1).await;
        let found = self
            .client
            .execute(
                "const root = document.documentElement;
                 if (window.innerWidth !== arguments[0])
                   return 'the viewport is ' + window.innerWidth + ' wide, not ' + arguments[0];
                 if (root.scrollWidth <= root.clientWidth) return null;
                 const wide = [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > root.clientWidth + 0.5)
                   .slice(-5)
                   .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                        + ' (right edge ' + Math.round(e.getBoundingClientRect().right) + ')');
                 return 'scrollWidth ' + root.scrollWidth + ' > clientWidth ' + root.clientWidth
                   + '; ' + wide.join(', ');",
                vec![PHONE.0.into()],
            )
            .await
            .expect("measure the page");
        self.resize(DESKTOP.0, DESKTOP.1).await;
        found.as_str().map(str::to_owned)
    }

    /// Makes the page's viewport `width`×`height` CSS pixels: the window is set, measured
    /// (`innerWidth`, `innerHeight`: headless Chromium keeps room for a window frame) and
    /// set again by the difference.
    async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let inner = self
            .client
            .execute(
                "return [window.innerWidth, window.innerHeight];",
                Vec::new(),
            )
            .await
            .expect("viewport size");
        let got = |i: usize, want: u32| {
            inner[i]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(want)
        };
        let (w, h) = (got(0, width), got(1, height));
        if (w, h) != (width, height) {
            self.client
                .set_window_size(
                    (2 * width).saturating_sub(w).max(width),
                    (2 * height).saturating_sub(h).max(height),
                )
                .await
                .expect("window size");
        }
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver (on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// axe-core, as installed by `npm ci --prefix tests/axe`.
const AXE_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/axe/node_modules/axe-core/axe.min.js"
);

/// Window sizes of the screenshots: a desktop and a phone (iPhone 12–15 class).
const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);
/// Full-page screenshots stop here (pixels).
const MAX_SCREENSHOT_HEIGHT: u32 = 8000;

/// `target/screenshots`: under `CARGO_TARGET_DIR` when set, else the workspace's `target`.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("screenshots")
}

/// One rule axe-core found broken, with the elements that break it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Violation {
    /// The rule (`color-contrast`, `label`, …).
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for.
    pub help: String,
    /// The elements: CSS selector and HTML.
    pub nodes: Vec<String>,
}

impl Violation {
    /// Serious or critical: what the tests do not accept.
    #[must_use]
    pub fn serious(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} — {}",
            self.id,
            self.impact,
            self.help,
            self.nodes.join(" | ")
        )
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
