//! The command line: `ratspost [--config FILE] COMMAND`.
//!
//! One file per command group under `cli/`; this file holds the argument types and the
//! dispatch. Every listing has `--json`. Where the configuration is looked for is in
//! [`locate`]; who may run an audited command is proven in `cli/actor.rs`; store errors
//! are put in the user's terms in `cli/readable.rs`.

mod actor;
mod apppass;
mod audit;
mod backup;
mod classify;
mod evaluate;
mod exemption;
mod keys;
mod message;
mod queue;
mod readable;
mod serve;
mod user;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, Config};

/// ratspost: secure mail intake, mailbox and controlled forwarding for town halls.
#[derive(Debug, Parser)]
#[command(name = "ratspost", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration file. Without it: $RATSPOST_CONFIG, then ./ratspost.toml, then
    /// /etc/ratspost/ratspost.toml, else the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented config with every default, create the database, a self-signed
    /// certificate and the bootstrap admin (whose password is printed once).
    Init,
    /// Run the daemon (does the setup of `init` first when nothing exists yet).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Per-device app passwords for IMAP: create (printed once), list, revoke.
    #[command(subcommand, name = "app-password")]
    AppPassword(AppPasswordCommand),
    /// Inspect accepted messages (metadata only, never content).
    #[command(subcommand)]
    Message(MessageCommand),
    /// Forwarding exemptions: request, confirm, approve, deny, revoke, list.
    #[command(subcommand)]
    Exemption(ExemptionCommand),
    /// The outbound queue: list, retry, drop.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// A consistent copy of the installation while it runs: the SQLite database (PostgreSQL:
    /// see the README for pg_dump), the keys, the certificate, the configuration and the
    /// audit checkpoints, with one of the copy's own head.
    Backup {
        /// A new (or empty) directory.
        dest: PathBuf,
    },
    /// Put a backup back after checking it: every file's hash, the audit chain against the
    /// backup's checkpoints and key. Stop ratspost first.
    Restore {
        /// The backup directory (`ratspost backup DEST`).
        src: PathBuf,
        /// Replace an existing database (kept beside it as `…before-restore-<time>`).
        #[arg(long)]
        replace: bool,
        /// The public key the backup must be signed with (base64, as `key=` in checkpoint
        /// lines); default: the installation's own checkpoint key, when it is here.
        #[arg(long, value_name = "KEY", value_parser = crate::checkpoint::parse_public_key)]
        key: Option<String>,
        /// Accept the key the backup names (a new machine without `--key`): proves nothing
        /// against whoever could change the backup.
        #[arg(long)]
        trust_backup_key: bool,
    },
    /// DKIM and ARC: `ratspost dkim record` prints the DNS record to publish (one for both).
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Check the configuration without starting anything: every problem is listed and the
    /// exit code is 2, else "configuration OK" and 0 (e.g. before `systemctl restart`).
    Check,
    /// The keys every node on one PostgreSQL must share (srs.key, dkim.key, a generated
    /// certificate): `ratspost keys adopt` makes this node's the installation's after they
    /// were replaced on every node on purpose.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Classify message files (.eml) and print each verdict with its findings. Scans are
    /// read with OCR as `[ocr]` of the configuration (if any) says.
    Classify {
        /// One JSON object per file: {"file", "sensitive", "categories", "findings"}.
        #[arg(long)]
        json: bool,
        /// Rules file (TOML); default: the built-in rules.
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Evaluate against hand-labelled mail: LABELS.tsv lines are `FILE<TAB>S|N[<TAB>category]`
        /// (files relative to the TSV). Prints recall and precision overall and per category,
        /// each miss and each false alarm with its findings.
        #[arg(long, value_name = "LABELS.tsv", conflicts_with_all = ["json", "files"])]
        evaluate: Option<PathBuf>,
        /// With --evaluate: fail (exit status 1) when recall is below this percentage.
        #[arg(long, value_name = "PERCENT", requires = "evaluate", value_parser = percentage)]
        min_recall: Option<f64>,
        /// With --evaluate: fail (exit status 1) when precision is below this percentage.
        #[arg(long, value_name = "PERCENT", requires = "evaluate", value_parser = percentage)]
        min_precision: Option<f64>,
        /// Message files.
        #[arg(required_unless_present = "evaluate", value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// How commands that act for someone (`--by LOGIN`) take that user's password; shown by
/// `--help`.
const AFTER_HELP: &str = "\
Commands with --by LOGIN (and `user passwd` for oneself) ask for that user's account password:
on the terminal without echo when stdin is a terminal, else from the first line of stdin.
With --password-stdin the new password is the next line (line 1: the actor's password,
line 2: the new password). A wrong password is refused after a delay and audited.";

/// A percentage 0–100 (`95`, `97.5`) as a fraction.
fn percentage(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value / 100.0)
    } else {
        Err(format!("{text} is not between 0 and 100"))
    }
}

/// An error in what the user asked for (bad rules): exit status 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `ratspost user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a random password is generated and printed.
    #[command(after_help = AFTER_HELP)]
    Add {
        /// Login name.
        login: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Mail address to accept mail for (repeatable).
        #[arg(long = "address", value_name = "ADDR")]
        addresses: Vec<String>,
        /// Role.
        #[arg(long, default_value = "staff", value_parser = ["staff", "admin", "dpo"])]
        role: String,
        /// The admin who adds the user (asked for their password).
        #[arg(long, value_name = "ADMIN")]
        by: String,
        /// Read the new user's password from stdin: the line after the admin's password.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password. Without --password-stdin a random one is generated and printed.
    /// Asks for the user's current password, or with --by for that admin's password.
    #[command(after_help = AFTER_HELP)]
    Passwd {
        /// Login name.
        login: String,
        /// An admin who sets someone else's password (asked for their own password).
        #[arg(long, value_name = "ADMIN")]
        by: Option<String>,
        /// Read the new password from stdin: the line after the current (or the admin's)
        /// password.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it can no longer log in (web, IMAP, CLI) and its web sessions
    /// end at once. Audited.
    #[command(after_help = AFTER_HELP)]
    Disable {
        /// Login name.
        login: String,
        /// The admin who disables it (asked for their password; not their own account).
        #[arg(long, value_name = "ADMIN")]
        by: String,
    },
    /// Enable a disabled account again. Audited.
    #[command(after_help = AFTER_HELP)]
    Enable {
        /// Login name.
        login: String,
        /// The admin who enables it (asked for their password).
        #[arg(long, value_name = "ADMIN")]
        by: String,
    },
}

/// `ratspost app-password …`
#[derive(Debug, Subcommand)]
pub enum AppPasswordCommand {
    /// Create an app password for one device; it is printed once. Asks for the password of
    /// --by (on the terminal, else the first line of stdin).
    Create {
        /// Login name.
        login: String,
        /// The device, e.g. "iPhone" or "Laptop zu Hause".
        #[arg(long)]
        label: String,
        /// Who creates it: the user themself or an admin (an app password reads the mailbox).
        #[arg(long)]
        by: String,
        /// Print JSON: {"login", "label", "password"}.
        #[arg(long)]
        json: bool,
    },
    /// List a user's app passwords: label, created, last used, last IP.
    List {
        /// Login name.
        login: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one device's app password at once (other devices keep working). Asks for the
    /// password of --by.
    Revoke {
        /// Login name.
        login: String,
        /// The device's label.
        #[arg(long)]
        label: String,
        /// Who revokes it: the user themself or an admin.
        #[arg(long)]
        by: String,
    },
}

/// `ratspost message …`
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// List accepted messages, newest first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only messages for this user.
        #[arg(long, value_name = "LOGIN")]
        user: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Revoke every notice link of a message at once (audited).
    #[command(after_help = AFTER_HELP)]
    RevokeLinks {
        /// Message id.
        id: i64,
        /// The admin who revokes (asked for their password).
        #[arg(long)]
        by: String,
    },
}

/// `ratspost exemption …`
#[derive(Debug, Subcommand)]
pub enum ExemptionCommand {
    /// Ask for forwarding of a user's mail to a private address; queues the confirmation code
    /// to that address.
    #[command(after_help = AFTER_HELP)]
    Request {
        /// Whose mail.
        #[arg(long)]
        user: String,
        /// The private address.
        #[arg(long)]
        to: String,
        /// Duration in days (at most `exemptions.max_days`).
        #[arg(long)]
        days: i64,
        /// Why (shown to approvers and logged).
        #[arg(long)]
        reason: String,
        /// Who asks: the user themself, or an admin on their behalf (asked for their
        /// password).
        #[arg(long)]
        by: String,
        /// Print the exemption as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enter the code that arrived at the private address.
    Confirm {
        /// Exemption id.
        id: i64,
        /// The code from the confirmation mail.
        code: String,
    },
    /// Approve (an admin, or the DPO; never the requester or the user).
    #[command(after_help = AFTER_HELP)]
    Approve {
        /// Exemption id.
        id: i64,
        /// Approver login (asked for their password).
        #[arg(long)]
        by: String,
    },
    /// Refuse a pending request.
    #[command(after_help = AFTER_HELP)]
    Deny {
        /// Exemption id.
        id: i64,
        /// Admin or DPO login (asked for their password).
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// End an exemption at once (also for messages already queued).
    #[command(after_help = AFTER_HELP)]
    Revoke {
        /// Exemption id.
        id: i64,
        /// Admin, DPO, or the user (asked for their password).
        #[arg(long)]
        by: String,
    },
    /// List exemptions.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `ratspost queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List jobs, newest first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Make a queued or failed job due now.
    Retry {
        /// Job id.
        id: i64,
    },
    /// Drop a queued or held job (audited).
    #[command(after_help = AFTER_HELP)]
    Drop {
        /// Job id.
        id: i64,
        /// The admin who drops it (asked for their password).
        #[arg(long)]
        by: String,
    },
    /// Release a submitted message held for review (`submission.sensitive = "hold"`): it is
    /// relayed now (audited).
    #[command(after_help = AFTER_HELP)]
    Release {
        /// Job id.
        id: i64,
        /// The admin who releases it (asked for their password).
        #[arg(long)]
        by: String,
    },
}

/// `ratspost dkim …`
#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Print the TXT record for ratspost's signing key (created if missing).
    Record,
}

/// `ratspost keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Record this node's shared keys as the installation's (audited as `keys.adopted`);
    /// nodes with other keys then refuse to start until they have these.
    Adopt {
        /// The admin doing it (for the audit log).
        #[arg(long)]
        by: String,
    },
}

/// `ratspost audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries in chain order.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only the newest N entries.
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Recompute the hash chain and compare it with the signed checkpoints (those in
    /// `audit.checkpoint_file` and any given); exit status 1 naming the first bad entry or
    /// the first checkpoint the log no longer matches.
    Verify {
        /// More checkpoints: a file of checkpoint lines, saved checkpoint mails (one or an
        /// mbox), a journal excerpt. May be given several times.
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Accept only checkpoints signed by this public key (base64, as after `key=` in
        /// the lines; the `key=` may stay). Give it twice across a key change. Default: the
        /// key in `audit.checkpoint_key`, when it exists here.
        #[arg(long, value_name = "KEY", value_parser = crate::checkpoint::parse_public_key)]
        key: Vec<String>,
        /// Verify this export (`ratspost audit export`, JSON Lines) instead of the database:
        /// on another machine, without access to the database.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
    /// Write a signed checkpoint of the chain's head now (to `audit.checkpoint_file`) and
    /// print it.
    Checkpoint,
    /// Write every entry to stdout; the JSON Lines form ends with the signed checkpoints, so
    /// that `audit verify --export` can check it elsewhere.
    Export {
        /// `jsonl` (one JSON object per line) or `csv`.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
}

/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "RATSPOST_CONFIG";

/// The configuration in the working directory, looked for after `--config` and
/// `RATSPOST_CONFIG`; `init` and `serve` write it here when nothing was found.
const DEFAULT_CONFIG: &str = "ratspost.toml";

/// The system-wide configuration, looked for last.
const SYSTEM_CONFIG: &str = "/etc/ratspost/ratspost.toml";

/// Where the configuration comes from, and every place that was looked at to find it.
#[derive(Debug)]
struct Located {
    /// The file to use (named explicitly, or found); `None`: none found, built-in defaults.
    file: Option<PathBuf>,
    /// The places looked at, in order, as a person would name them.
    tried: Vec<String>,
}

impl Located {
    /// The file `init` and `serve` use: the one found or named, else `./ratspost.toml`.
    fn file_or_default(&self) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// The configuration: the file's, or the built-in defaults when none was found.
    fn load(&self) -> Result<Config, config::ConfigErrors> {
        match &self.file {
            Some(path) => Config::load(path),
            None => Ok(Config::builtin()),
        }
    }

    /// Where the configuration came from, for messages: ` (configuration FILE)`, or that
    /// none was found where.
    fn describe(&self) -> String {
        match &self.file {
            Some(path) => format!(" (configuration {})", path.display()),
            None => format!(
                ": no configuration was found (looked for {}), so the built-in defaults apply",
                self.tried.join(", ")
            ),
        }
    }
}

/// Finds the configuration the way admins expect: `--config FILE`, then
/// `$RATSPOST_CONFIG`, then `./ratspost.toml`, then `/etc/ratspost/ratspost.toml`. A file
/// named by the option or the variable is used even when it does not exist (`init` writes
/// it; other commands report that it cannot be read).
fn locate(explicit: Option<&Path>) -> Located {
    if let Some(path) = explicit {
        return Located {
            file: Some(path.to_path_buf()),
            tried: vec![format!("--config {}", path.display())],
        };
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return Located {
            tried: vec![format!("{CONFIG_ENV}={}", path.display())],
            file: Some(path),
        };
    }
    let mut tried = Vec::new();
    for candidate in [DEFAULT_CONFIG, SYSTEM_CONFIG] {
        let shown = if candidate == DEFAULT_CONFIG {
            format!("./{candidate}")
        } else {
            candidate.to_owned()
        };
        tried.push(shown);
        if Path::new(candidate).is_file() {
            return Located {
                file: Some(PathBuf::from(candidate)),
                tried,
            };
        }
    }
    Located { file: None, tried }
}

/// The configuration for a command that works on an existing installation: only `init`
/// and `serve` create a data directory or database, so a missing SQLite file is an error
/// naming where the configuration was looked for and which database was expected.
///
/// # Errors
/// A bad configuration ([`config::ConfigErrors`]), or no database.
fn existing(located: &Located) -> anyhow::Result<Config> {
    let config = located.load()?;
    if let Some(path) = store::sqlite_path(&config.database.url)
        && !path.is_file()
    {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        anyhow::bail!(
            "no database at {}{}. Set it up with `ratspost init`, or name the \
             configuration of an existing installation with --config FILE or {CONFIG_ENV}.",
            shown.display(),
            located.describe()
        );
    }
    Ok(config)
}

/// Parses arguments, runs the command, and maps failures to an exit code: 2 for a bad
/// configuration, 1 for anything else.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Dropping the runtime would wait for every blocking task (a classification, OCR) to
    // return however long it takes; a stop must not (issue #16): what still runs is left.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(config_errors) = err.downcast_ref::<config::ConfigErrors>() {
                eprintln!("error: {config_errors}");
                ExitCode::from(2)
            } else if let Some(usage) = err.downcast_ref::<UsageError>() {
                eprintln!("error: {usage}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {}", readable::message(&err));
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let located = locate(cli.config.as_deref());
    match cli.command {
        Command::Init => init(&located).await,
        Command::Check => {
            located.load()?;
            println!("configuration OK{}", located.describe());
            Ok(())
        }
        Command::Serve => {
            // A first start on a fresh directory: leave the commented defaults behind so the
            // operator sees what can be configured, exactly as `init` would.
            let path = located.file_or_default();
            if !path.exists() {
                write_default_config(&path)?;
                println!("Wrote the default configuration to {}", path.display());
            }
            serve::run(Config::load(&path)?).await
        }
        Command::User(cmd) => user::run(&existing(&located)?, cmd).await,
        Command::Message(cmd) => message::run(&existing(&located)?, cmd).await,
        Command::AppPassword(cmd) => apppass::run(&existing(&located)?, cmd).await,
        Command::Audit(AuditCommand::Verify {
            checkpoints,
            key,
            export: Some(file),
        }) => {
            // Elsewhere, without the database: the installation's configuration only when
            // one is here (for its checkpoint file and key).
            let config = match &located.file {
                Some(path) if path.is_file() => Some(Config::load(path)?),
                _ => None,
            };
            audit::verify_export(&file, config.as_ref(), &checkpoints, key)
        }
        Command::Audit(cmd) => audit::run(&existing(&located)?, cmd).await,
        Command::Queue(cmd) => queue::run(&existing(&located)?, cmd).await,
        Command::Backup { dest } => backup::backup(&existing(&located)?, &dest).await,
        // A restore may be the first thing on a new machine: no database needs to exist.
        Command::Restore {
            src,
            replace,
            key,
            trust_backup_key,
        } => backup::restore(&located.load()?, &src, replace, key, trust_backup_key).await,
        Command::Dkim(DkimCommand::Record) => {
            let config = existing(&located)?;
            let (name, value) = crate::dkim::record(&config)?;
            println!("{name} IN TXT \"{value}\"");
            Ok(())
        }
        Command::Keys(KeysCommand::Adopt { by }) => keys::adopt(&existing(&located)?, &by).await,
        Command::Exemption(cmd) => exemption::run(&existing(&located)?, cmd).await,
        Command::Classify {
            json,
            rules,
            evaluate,
            min_recall,
            min_precision,
            files,
        } => {
            let evaluate = evaluate.as_ref().map(|labels| {
                let minimum = evaluate::Minimum {
                    recall: min_recall,
                    precision: min_precision,
                };
                (labels, minimum)
            });
            // Scans are read as the daemon reads them: `[ocr]` of the configuration when one
            // exists, else the built-in defaults.
            let config = match &located.file {
                Some(path) if path.is_file() => Config::load(path)?,
                _ => Config::builtin(),
            };
            classify::run(json, rules.as_ref(), &files, evaluate, &config.ocr)
        }
    }
}

async fn init(located: &Located) -> anyhow::Result<()> {
    let path = located.file_or_default();
    if path.exists() {
        println!("Keeping the existing configuration {}", path.display());
    } else {
        write_default_config(&path)?;
        println!("Wrote the default configuration to {}", path.display());
    }
    let config = Config::load(&path)?;
    let (store, report) = crate::setup::prepare(&config).await?;
    crate::setup::print_report(&report, &config);
    println!(
        "Database ready: {}",
        store::redact_url(&config.database.url)
    );
    store.close().await;
    Ok(())
}

fn write_default_config(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, config::default_file())
        .with_context(|| format!("writing {}", path.display()))
}

fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Colour only for a person at a terminal; journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    // Never protocol transcripts, whatever RUST_LOG says (crate::logging).
    let _ =
        crate::logging::subscriber(crate::logging::env_filter(), std::io::stderr, ansi).try_init();
}

/// Reads the next line of stdin (without its line ending): `what` names it in errors
/// ("password of anna"). Lines
/// are taken in order, so a second call reads the second line.
fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from stdin"))?;
    anyhow::ensure!(n > 0, "no {what} on stdin");
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!line.is_empty(), "the {what} on stdin is empty");
    Ok(line)
}

/// Whether stdin is a terminal (then passwords are asked for without echo).
fn stdin_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdin())
}

/// Reads a password: from the terminal without echo, prompting with `prompt`, when stdin
/// is a terminal; else the next line of stdin. `what` names it in errors.
fn read_password(prompt: &str, what: &str) -> anyhow::Result<String> {
    if stdin_is_terminal() {
        let password = rpassword::prompt_password(prompt)
            .with_context(|| format!("reading the {what} from the terminal"))?;
        anyhow::ensure!(!password.is_empty(), "the {what} is empty");
        Ok(password)
    } else {
        read_stdin_line(what)
    }
}
