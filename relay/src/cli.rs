//! The command line: `ratspost [--config FILE] COMMAND`.
//!
//! One file per command group under `cli/`; this file holds the argument types and the
//! dispatch. Every listing has `--json`.

mod apppass;
mod audit;
mod classify;
mod exemption;
mod message;
mod queue;
mod serve;
mod user;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, Config};

/// ratspost: secure mail intake, mailbox and controlled forwarding for town halls.
#[derive(Debug, Parser)]
#[command(name = "ratspost", version, about)]
pub struct Cli {
    /// Configuration file. Default: ./ratspost.toml if present, else built-in defaults.
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
    /// DKIM: `ratspost dkim record` prints the DNS record to publish.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Classify message files (.eml) and print each verdict with its findings.
    Classify {
        /// One JSON object per file: {"file", "sensitive", "categories", "findings"}.
        #[arg(long)]
        json: bool,
        /// Rules file (TOML); default: the built-in rules.
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Message files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
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
        /// Read the password from the first line of stdin.
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
    Passwd {
        /// Login name.
        login: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `ratspost app-password …`
#[derive(Debug, Subcommand)]
pub enum AppPasswordCommand {
    /// Create an app password for one device; it is printed once.
    Create {
        /// Login name.
        login: String,
        /// The device, e.g. "iPhone" or "Laptop zu Hause".
        #[arg(long)]
        label: String,
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
    /// Revoke one device's app password at once (other devices keep working).
    Revoke {
        /// Login name.
        login: String,
        /// The device's label.
        #[arg(long)]
        label: String,
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
    RevokeLinks {
        /// Message id.
        id: i64,
        /// Who revokes.
        #[arg(long)]
        by: String,
    },
}

/// `ratspost exemption …`
#[derive(Debug, Subcommand)]
pub enum ExemptionCommand {
    /// Ask for forwarding of a user's mail to a private address; queues the confirmation code
    /// to that address.
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
        /// Who asks: the user themself, or an admin on their behalf.
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
    Approve {
        /// Exemption id.
        id: i64,
        /// Approver login.
        #[arg(long)]
        by: String,
    },
    /// Refuse a pending request.
    Deny {
        /// Exemption id.
        id: i64,
        /// Admin or DPO login.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// End an exemption at once (also for messages already queued).
    Revoke {
        /// Exemption id.
        id: i64,
        /// Admin, DPO, or the user.
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
    /// Drop a queued job (audited).
    Drop {
        /// Job id.
        id: i64,
        /// Who drops it.
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
    /// Recompute the hash chain; exit status 1 naming the first bad entry when a row was
    /// changed, deleted, inserted or reordered.
    Verify,
    /// Write every entry to stdout.
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

/// Where the configuration comes from.
#[derive(Debug)]
enum ConfigSource {
    File(PathBuf),
    Builtin,
}

const DEFAULT_CONFIG: &str = "ratspost.toml";

fn config_source(explicit: Option<&Path>) -> ConfigSource {
    match explicit {
        Some(path) => ConfigSource::File(path.to_path_buf()),
        None if Path::new(DEFAULT_CONFIG).exists() => {
            ConfigSource::File(PathBuf::from(DEFAULT_CONFIG))
        }
        None => ConfigSource::Builtin,
    }
}

fn load(source: &ConfigSource) -> Result<Config, config::ConfigErrors> {
    match source {
        ConfigSource::File(path) => Config::load(path),
        ConfigSource::Builtin => Ok(Config::builtin()),
    }
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(config_errors) = err.downcast_ref::<config::ConfigErrors>() {
                eprintln!("error: {config_errors}");
                ExitCode::from(2)
            } else if let Some(usage) = err.downcast_ref::<UsageError>() {
                eprintln!("error: {usage}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let source = config_source(cli.config.as_deref());
    match cli.command {
        Command::Init => init(&source).await,
        Command::Serve => {
            // A first start on a fresh directory: leave the commented defaults behind so the
            // operator sees what can be configured, exactly as `init` would.
            let path = match source {
                ConfigSource::File(path) => path,
                ConfigSource::Builtin => PathBuf::from(DEFAULT_CONFIG),
            };
            if !path.exists() {
                write_default_config(&path)?;
                println!("Wrote the default configuration to {}", path.display());
            }
            serve::run(Config::load(&path)?).await
        }
        Command::User(cmd) => user::run(&load(&source)?, cmd).await,
        Command::Message(cmd) => message::run(&load(&source)?, cmd).await,
        Command::AppPassword(cmd) => apppass::run(&load(&source)?, cmd).await,
        Command::Audit(cmd) => audit::run(&load(&source)?, cmd).await,
        Command::Queue(cmd) => queue::run(&load(&source)?, cmd).await,
        Command::Dkim(DkimCommand::Record) => {
            let config = load(&source)?;
            let (name, value) = crate::dkim::record(&config)?;
            println!("{name} IN TXT \"{value}\"");
            Ok(())
        }
        Command::Exemption(cmd) => exemption::run(&load(&source)?, cmd).await,
        Command::Classify { json, rules, files } => classify::run(json, rules.as_ref(), &files),
    }
}

async fn init(source: &ConfigSource) -> anyhow::Result<()> {
    let path = match source {
        ConfigSource::File(path) => path.clone(),
        ConfigSource::Builtin => PathBuf::from(DEFAULT_CONFIG),
    };
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
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("relay=info,webui=info,store=info"));
    // Colour only for a person at a terminal; journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Reads a password from the first line of stdin (without its line ending).
fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "the password on stdin is empty");
    Ok(password)
}
