//! The real `ratspost` binary as a child process: for crash tests and the command line.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The binary under test: `ratspost-e2e`, built by Cargo next to the test or bench
/// executable (`target/<profile>/deps/…` → `target/<profile>/ratspost-e2e`).
///
/// # Panics
/// When it has not been built (run through `cargo test` / `cargo bench`).
#[must_use]
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let binary = profile_dir.join(format!("ratspost-e2e{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run through cargo test or cargo bench",
        binary.display()
    );
    binary
}

/// Runs `ratspost --config CONFIG ARGS…` to completion, with `stdin` fed in.
pub fn ratspost(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = command();
    command.arg("--config").arg(config).args(args);
    finish(command, stdin)
}

/// Runs `ratspost ARGS…` without `--config` in the working directory `dir`, with the
/// environment variables `env` set (e.g. `RATSPOST_CONFIG`), as an admin's shell would.
pub fn ratspost_in(
    dir: &Path,
    env: &[(&str, &Path)],
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut command = command();
    command.current_dir(dir).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    finish(command, stdin)
}

/// The binary with the test's own `RATSPOST_CONFIG` (if any) removed.
fn command() -> Command {
    let mut command = Command::new(binary());
    command.env_remove(relay::cli::CONFIG_ENV);
    command
}

fn finish(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ratspost");
    if let Some(input) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

/// Asserts that `out` succeeded; returns its stdout.
#[track_caller]
fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "ratspost {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Like [`ratspost`], asserting success; returns stdout.
#[track_caller]
pub fn ratspost_ok(config: &Path, args: &[&str], stdin: Option<&str>) -> String {
    succeeded(args, ratspost(config, args, stdin))
}

/// Runs a command that acts for someone (`--by LOGIN` in `args`, or `user passwd` for
/// oneself) the way a script does: the actor's `password` is the first line of stdin, and
/// `new_password` (for `--password-stdin`) the second.
pub fn ratspost_as(
    config: &Path,
    args: &[&str],
    password: &str,
    new_password: Option<&str>,
) -> Output {
    let stdin = match new_password {
        Some(new) => format!("{password}\n{new}\n"),
        None => format!("{password}\n"),
    };
    ratspost(config, args, Some(&stdin))
}

/// Like [`ratspost_as`], asserting success; returns stdout.
#[track_caller]
pub fn ratspost_as_ok(
    config: &Path,
    args: &[&str],
    password: &str,
    new_password: Option<&str>,
) -> String {
    succeeded(args, ratspost_as(config, args, password, new_password))
}

/// The password of the bootstrap admin `admin` of the installation `config` names. The
/// first call sets the installation up with `ratspost init`, as an admin does on day one,
/// and keeps the password it prints once in `admin.password` beside the config.
///
/// # Panics
/// When init fails, or prints no password because the database had users already.
pub fn admin_password(config: &Path) -> String {
    let kept = config.with_file_name("admin.password");
    if let Ok(password) = std::fs::read_to_string(&kept) {
        return password;
    }
    let out = ratspost_ok(config, &["init"], None);
    let password = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("init printed no admin password (users existed?): {out}"))
        .to_owned();
    std::fs::write(&kept, &password).expect("keep the admin password");
    password
}

/// Enrols `login` with `address` and `password` through `ratspost user add --by admin`.
pub fn enrol(config: &Path, login: &str, address: &str, password: &str) {
    add_user(config, login, "staff", &[address], password);
}

/// Adds `login` with `role`, `addresses` and `password` through `ratspost user add --by
/// admin` (the bootstrap admin, see [`admin_password`]).
pub fn add_user(config: &Path, login: &str, role: &str, addresses: &[&str], password: &str) {
    let mut args = vec!["user", "add", login, "--name", login, "--role", role];
    for address in addresses {
        args.extend(["--address", address]);
    }
    args.extend(["--by", "admin", "--password-stdin"]);
    ratspost_as_ok(config, &args, &admin_password(config), Some(password));
}

/// Creates an app password labelled `label` for `login` through `ratspost app-password
/// create --by admin --json`, as an admin does for a device; returns the password.
pub fn app_password(config: &Path, login: &str, label: &str) -> String {
    let created = ratspost_as_ok(
        config,
        &[
            "app-password",
            "create",
            login,
            "--label",
            label,
            "--by",
            "admin",
            "--json",
        ],
        &admin_password(config),
        None,
    );
    serde_json::from_str::<serde_json::Value>(&created).expect("json")["password"]
        .as_str()
        .expect("password")
        .to_owned()
}

/// An active exemption of `login` (who must exist, as must the admin `admin1`) to `target`,
/// requested, approved by `admin1` and confirmed through the store API, valid for 30 days.
pub async fn exempt(url: &str, login: &str, target: &str) {
    let store = store::Store::open(url, &store::StoreOptions::default())
        .await
        .expect("open");
    let policy = store::ExemptionPolicy {
        max_days: 30,
        require_dpo: false,
        code_ttl: 86_400_000,
        max_code_attempts: 5,
        allowed_domains: vec![],
        denied_domains: vec![],
    };
    let now = store::now_millis();
    let e = store
        .request_exemption(
            &store::ExemptionRequest {
                login: login.into(),
                target: target.into(),
                days: 30,
                reason: "bench".into(),
                by: login.into(),
            },
            &policy,
            "h",
            |_| store::QueuedMail {
                kind: "confirmation".into(),
                mail_from: "r@x".into(),
                rcpt_to: target.into(),
                body: b"Subject: c\r\n\r\nc\r\n".to_vec(),
            },
            now,
        )
        .await
        .expect("request");
    store
        .approve_exemption(e.id, "admin1", &policy, now)
        .await
        .expect("approve");
    store
        .confirm_exemption(e.id, "h", &policy, now)
        .await
        .expect("confirm");
    store.close().await;
}

/// Writes a config for a daemon in `dir` on database `url` with an ephemeral SMTP port.
pub fn write_config(dir: &Path, url: &str, smtp_toml: &str) -> PathBuf {
    let path = dir.join("ratspost.toml");
    let text = format!(
        "data_dir = \"data\"\n[database]\nurl = {url:?}\n[smtp]\nlisten = \"127.0.0.1:0\"\n{smtp_toml}\n[shutdown]\ngrace_secs = 5\n{dns}",
        dns = crate::test_sections(smtp_toml),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// A pair of listeners: STARTTLS and implicit TLS.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    /// Plaintext with STARTTLS.
    pub starttls: SocketAddr,
    /// TLS from the first byte (RFC 8314).
    pub implicit_tls: SocketAddr,
}

/// A running `ratspost serve`.
pub struct Daemon {
    child: Child,
    /// Where its SMTP listener is.
    pub smtp: SocketAddr,
    /// Where its web UI listens (HTTPS).
    pub web: SocketAddr,
    /// Where its IMAP-over-TLS listener is.
    pub imaps: SocketAddr,
    /// Where its submission listeners are, STARTTLS (`submission.listen`) and implicit TLS
    /// (`submission.listen_tls`); `None` without `submission.relay`.
    pub submission: Option<Listeners>,
    log: Arc<Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts `ratspost --config CONFIG serve` and waits until SMTP listens.
    pub fn start(config: &Path) -> Self {
        Self::start_logging(config, "relay=info")
    }

    /// Like [`Self::start`] with the log filter `filter` (`RUST_LOG`).
    pub fn start_logging(config: &Path, filter: &str) -> Self {
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ratspost serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        // Drain stderr for the daemon's whole life, so it never blocks on a full pipe.
        let drain = std::thread::spawn(move || {
            let address_after = |line: &str, key: &str| {
                line.split(key)
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .unwrap_or_default()
                    .to_owned()
            };
            let address = |line: &str| address_after(line, "addr=");
            let mut web = String::new();
            let mut imaps = String::new();
            let mut submission = None;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // The web UI is started before SMTP, so both are known when SMTP listens.
                if line.contains("web UI listening") {
                    web = address(&line);
                }
                if line.contains("IMAP listening") {
                    imaps = address_after(&line, "implicit=");
                }
                // Logged before SMTP listens, like the web UI and IMAP.
                if line.contains("submission listening") {
                    submission = Some((
                        address_after(&line, "plain="),
                        address_after(&line, "implicit="),
                    ));
                }
                if line.contains("SMTP listening") {
                    let _ = tx.send((
                        address(&line),
                        web.clone(),
                        imaps.clone(),
                        submission.clone(),
                    ));
                }
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let (smtp, web, imaps, submission) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("daemon did not start: {}", log.lock().expect("log")));
        let parse = |addr: &str| -> SocketAddr {
            addr.parse()
                .unwrap_or_else(|_| panic!("bad address {addr:?}"))
        };
        Self {
            child,
            smtp: parse(&smtp),
            web: parse(&web),
            imaps: parse(&imaps),
            submission: submission.map(|(plain, implicit)| Listeners {
                starttls: parse(&plain),
                implicit_tls: parse(&implicit),
            }),
            log,
            drain: Some(drain),
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The process id (for reading its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// SIGTERM, wait for the exit, and return the exit status and the complete log (read
    /// after stderr closed, so no line is missing).
    pub fn terminate_with_log(mut self) -> (std::process::ExitStatus, String) {
        let status = self.stop();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        (status, log)
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.stop()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `data_dir` of a config written by [`write_config`] (beside it, as `data`).
#[must_use]
pub fn data_dir(config: &Path) -> PathBuf {
    config.with_file_name("data")
}

/// Copies the files every node on one database must share (README, "Several nodes") from the
/// data directory of `from`'s config into that of `to`'s (made 0700 if missing), as an
/// operator does before a second node's first start: `srs.key`, `dkim.key` and the generated
/// certificate with its key.
pub fn share_keys(from: &Path, to: &Path) {
    use std::os::unix::fs::DirBuilderExt as _;
    let (source, target) = (data_dir(from), data_dir(to));
    for file in ["srs.key", "dkim.key", "tls/cert.pem", "tls/key.pem"] {
        let dest = target.join(file);
        let parent = dest.parent().expect("parent");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .expect("data dir");
        std::fs::copy(source.join(file), &dest)
            .unwrap_or_else(|e| panic!("copy {file} to the second node: {e}"));
    }
}
