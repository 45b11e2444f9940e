//! Issue #9.1: the README's commands, run exactly as written, on a copy of this working tree.
//!
//! A new admin's first day starts with the README: "The two commands" and "Try it". This test
//! reads both shell blocks out of README.md and runs them in a fresh directory holding the
//! repository's files (what `git ls-files` lists, uncommitted changes included), so the
//! README cannot drift from the truth again. Only two things are not as a person does it:
//! `CARGO_TARGET_DIR` points at this workspace's `target/` (a second release build of every
//! dependency would cost ten minutes and prove nothing more), and stdin carries the bootstrap
//! admin's password, which a person types when asked. The ports are the README's fixed
//! defaults (2525, 1143, 1993, 8080); no other test uses them.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratspost_tests::{have, skip};

/// How long the first command may take: in CI it builds the release binary from scratch.
const FIRST_START: Duration = Duration::from_secs(45 * 60);

#[test]
fn readme_commands_work_as_written_on_a_fresh_copy() {
    for tool in ["git", "swaks", "curl"] {
        if !have(tool) {
            return skip(tool);
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf();
    let readme = std::fs::read_to_string(repo.join("README.md")).expect("README.md");
    let two = shell_block(&readme, "## The two commands");
    let try_it = shell_block(&readme, "## Try it");
    assert_eq!(
        two,
        ["cargo run --release -- serve", "cargo test --workspace"],
        "the two commands changed: update this test with them"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    copy_working_tree(&repo, dir.path());
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);

    let mut serve = Daemon::start(&two[0], dir.path(), &target);
    let admin_password = serve.admin_password();
    assert!(
        dir.path().join("ratspost.toml").is_file(),
        "serve wrote no ratspost.toml"
    );
    let data = dir.path().join("data");
    assert_eq!(
        mode(&data) & 0o777,
        0o700,
        "README: serve creates ./data with mode 0700"
    );
    for port in [2525, 1143, 1993, 8080] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "README: serve listens on {port}\n{}",
            serve.output()
        );
    }

    let mut app_password: Option<String> = None;
    for command in &try_it {
        let command = match &app_password {
            Some(p) => command.replace("PASSWORD", p.as_str()),
            None => command.clone(),
        };
        let out = run_until_ok(&command, dir.path(), &target, &admin_password);
        if command.contains("app-password create") {
            app_password =
                Some(app_password_from(&out).unwrap_or_else(|| {
                    panic!("no app password in the output of {command}:\n{out}")
                }));
        }
        if command.contains("message list") {
            assert!(
                out.contains("anna.schmidt@stadt.example"),
                "{command}:\n{out}"
            );
        }
        if command.starts_with("curl ") {
            assert!(
                out.contains("This is a test mailing"),
                "curl did not fetch the message swaks sent:\n{out}"
            );
        }
    }
    assert!(
        app_password.is_some(),
        "Try it no longer creates an app password"
    );
    serve.stop();
}

/// The commands of the first ```sh block after `heading`: comments removed, one per line.
fn shell_block(readme: &str, heading: &str) -> Vec<String> {
    let section = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"))
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .unwrap_or_else(|| panic!("no ```sh block under {heading:?}"))
        .0;
    block
        .lines()
        .map(strip_comment)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Removes a shell comment (`#` at the start or after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

/// Copies the files git knows (tracked, and untracked but not ignored) into `to`.
fn copy_working_tree(repo: &Path, to: &Path) {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo)
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).expect("file names are UTF-8");
        let from = repo.join(name);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let dest = to.join(name);
        std::fs::create_dir_all(dest.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::copy(&from, &dest).expect("copy");
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
}

fn shell(command: &str, dir: &Path, target: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUST_LOG");
    c
}

/// Runs a "Try it" command with the admin's password on stdin. Mail is classified and filed
/// in the background after `250`, so a command may briefly find nothing yet: it is repeated
/// for up to a minute, and must then succeed.
fn run_until_ok(command: &str, dir: &Path, target: &Path, admin_password: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut child = shell(command, dir, target)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        // A command that does not ask for the password closes stdin early: ignore that.
        let _ = writeln!(child.stdin.take().expect("stdin"), "{admin_password}");
        let out = child.wait_with_output().expect("wait");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return text;
        }
        // Only reading the mailbox may race the pipeline; anything else fails at once.
        assert!(
            command.starts_with("curl ") && Instant::now() < deadline,
            "README command failed ({}): {command}\n{text}",
            out.status
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `App password for anna on "iPhone" (shown only once): XXXX`
fn app_password_from(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.split_once("(shown only once): "))
        .map(|(_, p)| p.trim().to_owned())
}

/// `serve`, started as written, with its output collected as it comes.
struct Daemon {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(command: &str, dir: &Path, target: &Path) -> Self {
        use std::os::unix::process::CommandExt as _;
        let mut child = shell(command, dir, target)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = output.lock().expect("output lock");
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Self { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().expect("output lock").clone()
    }

    /// Waits for the one-time admin password and for the SMTP listener.
    fn admin_password(&mut self) -> String {
        let deadline = Instant::now() + FIRST_START;
        loop {
            let out = self.output();
            let password = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("password:"))
                .map(|p| p.trim().to_owned());
            if let Some(password) = password
                && std::net::TcpStream::connect(("127.0.0.1", 8080)).is_ok()
            {
                return password;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited ({status}):\n{out}");
            }
            assert!(Instant::now() < deadline, "serve did not come up:\n{out}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM to the whole process group; serve must stop by itself.
    fn stop(mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = self.child.wait();
        }
    }
}
