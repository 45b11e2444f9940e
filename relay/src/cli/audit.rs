//! `ratspost audit list|verify|checkpoint|export`: the audit chain for the data-protection
//! officer, and its anchors outside the database (signed checkpoints, issue #15 §1).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use store::{Anchor, AuditCheck, AuditEntry, ChainStart, ChainVerifier};

use crate::checkpoint::{self, Checkpoint};

use webui::datetime::Dates;
use webui::export;

use super::readable::Readable as _;
use super::{AuditCommand, ExportFormat};
use crate::config::Config;
use crate::setup::open_store;

const PAGE: i64 = 1000;

pub(super) async fn run(config: &Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let result = match cmd {
        AuditCommand::List { json, limit } => list(&store, json, limit, config.dates()).await,
        AuditCommand::Verify {
            checkpoints,
            key,
            export: None,
        } => verify(&store, Some(config), &checkpoints, key).await,
        AuditCommand::Verify {
            checkpoints,
            key,
            export: Some(file),
        } => verify_export(&file, Some(config), &checkpoints, key),
        AuditCommand::Checkpoint => write_checkpoint(&store, config).await,
        AuditCommand::Export { format } => export(&store, config, format).await,
    };
    store.close().await;
    result
}

/// Every entry in chain order, page by page (the log can be long).
async fn each(
    store: &store::Store,
    mut f: impl FnMut(&AuditEntry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let page = store.list_audit(after, PAGE).await.readable()?;
        for entry in &page {
            f(entry)?;
            after = entry.seq;
        }
        if page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}

async fn list(
    store: &store::Store,
    json: bool,
    limit: Option<i64>,
    dates: Dates,
) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    each(store, |e| {
        entries.push(e.clone());
        Ok(())
    })
    .await?;
    if let Some(limit) = limit {
        let keep = usize::try_from(limit.max(0)).unwrap_or(0);
        entries.drain(..entries.len().saturating_sub(keep));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:>6} {:<30} {:<12} {:<26} {:<30} DETAILS",
        "SEQ", "TIME", "ACTOR", "ACTION", "SUBJECTS"
    );
    for e in entries {
        println!(
            "{:>6} {:<30} {:<12} {:<26} {:<30} {}",
            e.seq,
            dates.millis(e.at),
            e.actor,
            e.action,
            e.subjects.join(","),
            e.details
        );
    }
    Ok(())
}

/// The checkpoints the verification compares with, from every source, checked against the
/// trusted key.
struct Anchors {
    anchors: Vec<Anchor>,
    /// (seq, at) of the newest checkpoint, for the report.
    newest: Option<(i64, String)>,
    /// The key they were checked against, and whether it was pinned (given or configured).
    key: Option<String>,
    pinned: bool,
    /// Problems found: a line that does not verify, a checkpoint by another key.
    problems: Vec<String>,
    /// Whether the installation here keeps audit entries for ever (`retention.audit_days`
    /// unset): then a log without its start was cut by hand. `None`: no installation here.
    keeps_all: Option<bool>,
}

impl Anchors {
    fn new(key: Option<String>, config: Option<&Config>) -> Self {
        // Default trust: the installation's own checkpoint key, when it is here (never made
        // here by a verification).
        let configured = config
            .filter(|c| c.audit.checkpoint_key.is_file())
            .and_then(|c| checkpoint::Signer::load(c).ok())
            .map(|s| s.public_key());
        let pinned = key.is_some() || configured.is_some();
        Self {
            anchors: Vec::new(),
            newest: None,
            key: key.or(configured),
            pinned,
            problems: Vec::new(),
            keeps_all: config.map(|c| c.retention.audit_days.is_none()),
        }
    }

    fn add(&mut self, source: &str, found: Vec<(String, Result<Checkpoint, String>)>) {
        for (place, result) in found {
            let place = format!("{source}, {place}");
            match result {
                Err(reason) => self.problems.push(format!("{place}: {reason}")),
                Ok(c) => {
                    let key = c.key_text();
                    match &self.key {
                        Some(trusted) if *trusted != key => {
                            self.problems.push(format!(
                                "{place}: signed by key {key}, not by the trusted key {trusted}"
                            ));
                            continue;
                        }
                        Some(_) => {}
                        // Nothing pinned: the first key seen is the one all must share.
                        None => self.key = Some(key),
                    }
                    if self.newest.as_ref().is_none_or(|(seq, _)| c.seq >= *seq) {
                        self.newest = Some((c.seq, c.at.clone()));
                    }
                    self.anchors.push(c.anchor(&place));
                }
            }
        }
    }

    fn add_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.add(
            &path.display().to_string(),
            checkpoint::find_in_file(&bytes),
        );
        Ok(())
    }

    /// The configured checkpoint file, when it exists here.
    fn add_configured(&mut self, config: Option<&Config>) -> anyhow::Result<()> {
        match config.map(|c| c.audit.checkpoint_file.as_path()) {
            Some(path) if path.is_file() => self.add_file(path),
            _ => Ok(()),
        }
    }

    /// Prints the verdict; an error when the chain or a checkpoint is bad.
    fn report(self, check: AuditCheck) -> anyhow::Result<()> {
        let (entries, head, first, matched, before) = match check {
            AuditCheck::Broken { seq, reason } => {
                anyhow::bail!("audit chain broken at entry {seq}: {reason}")
            }
            AuditCheck::Intact {
                entries,
                head,
                first,
                anchors_matched,
                anchors_before_start,
            } => (entries, head, first, anchors_matched, anchors_before_start),
        };
        if !self.problems.is_empty() {
            anyhow::bail!(
                "checkpoints that cannot be trusted:\n  {}",
                self.problems.join("\n  ")
            );
        }
        if first > 1 && self.keeps_all == Some(true) {
            anyhow::bail!(
                "the log starts at entry {first}, but retention.audit_days keeps entries for ever: entries 1 to {} were removed by hand",
                first - 1
            );
        }
        let from = if first > 1 {
            format!(" (from entry {first}; older ones were removed by retention)")
        } else {
            String::new()
        };
        println!("audit chain intact: {entries} entries{from}, head {head}");
        match (&self.newest, &self.key) {
            (Some((seq, at)), Some(key)) => {
                println!(
                    "checkpoints: {matched} matched, the newest of {at} (entry {seq}); signed by key {key}"
                );
                if before > 0 {
                    println!(
                        "  {before} older than the entries kept (not checkable after retention)"
                    );
                }
                if !self.pinned {
                    println!(
                        "  note: no key was pinned; compare this key with the one you keep, or pass --key"
                    );
                }
                if matched == 0 {
                    anyhow::bail!(
                        "no checkpoint could be compared with the log (all are older than its retained start): use a newer checkpoint"
                    );
                }
            }
            _ => println!(
                "checkpoints: none given. The chain is consistent in itself, which does not prove it against whoever can write the database: verify with the checkpoints kept outside it (--checkpoints FILE)."
            ),
        }
        Ok(())
    }
}

async fn verify(
    store: &store::Store,
    config: Option<&Config>,
    files: &[PathBuf],
    key: Option<String>,
) -> anyhow::Result<()> {
    let mut anchors = Anchors::new(key, config);
    anchors.add_configured(config)?;
    for file in files {
        anchors.add_file(file)?;
    }
    let check = store
        .verify_audit_anchored(&anchors.anchors)
        .await
        .readable()?;
    anchors.report(check)
}

/// One line of a JSON Lines export: the chain's start (after retention), an entry, or a
/// checkpoint.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ExportLine {
    Start { chain_start: ExportStart },
    Checkpoint { checkpoint: String },
    Entry(AuditEntry),
}

#[derive(serde::Deserialize, serde::Serialize)]
struct ExportStart {
    seq: i64,
    hash: String,
}

/// `audit verify --export FILE`: the export's entries, its checkpoints and those of `files`;
/// no database is needed, so it runs on another machine (`config`: the installation here,
/// if any, for its checkpoint file and key).
pub(super) fn verify_export(
    file: &Path,
    config: Option<&Config>,
    files: &[PathBuf],
    key: Option<String>,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut anchors = Anchors::new(key, config);
    let mut start = ChainStart::default();
    let mut entries = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let parsed: ExportLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{}, line {}: not a line of `ratspost audit export` (JSON Lines)",
                file.display(),
                n + 1
            )
        })?;
        match parsed {
            ExportLine::Start { chain_start } if n == 0 => {
                start = ChainStart {
                    seq: chain_start.seq,
                    hash: chain_start.hash,
                };
            }
            ExportLine::Start { .. } => {
                anyhow::bail!(
                    "{}, line {}: the chain's start must come first",
                    file.display(),
                    n + 1
                )
            }
            ExportLine::Checkpoint { checkpoint } => anchors.add(
                &file.display().to_string(),
                vec![(format!("line {}", n + 1), Checkpoint::parse(&checkpoint))],
            ),
            ExportLine::Entry(entry) => entries.push(entry),
        }
    }
    for file in files {
        anchors.add_file(file)?;
    }
    let mut verifier = ChainVerifier::new(start, &anchors.anchors);
    for entry in &entries {
        verifier.push(entry);
    }
    // An export has no head beside it: its end is proved by the checkpoints.
    anchors.report(verifier.finish(None))
}

async fn write_checkpoint(store: &store::Store, config: &Config) -> anyhow::Result<()> {
    let signer = checkpoint::Signer::load(config)?;
    let checkpoint = signer.write(store).await?;
    println!("{}", checkpoint.line());
    eprintln!(
        "appended to {}; keep a copy where the database's administrators cannot change it",
        signer.file().display()
    );
    Ok(())
}

async fn export(store: &store::Store, config: &Config, format: ExportFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        ExportFormat::Csv => out.write_all(export::CSV_HEADER.as_bytes())?,
        ExportFormat::Jsonl => {
            let start = store.audit_start().await.readable()?;
            if start.seq > 0 {
                let line = serde_json::json!({
                    "chain_start": ExportStart { seq: start.seq, hash: start.hash }
                });
                writeln!(out, "{line}")?;
            }
        }
    }
    each(store, |e| {
        let line = match format {
            ExportFormat::Jsonl => export::json_line(e),
            ExportFormat::Csv => export::csv_line(e),
        };
        out.write_all(line.as_bytes())?;
        Ok(())
    })
    .await?;
    // The signed checkpoints travel with the entries, so the file proves itself elsewhere.
    if let ExportFormat::Jsonl = format
        && let Ok(bytes) = std::fs::read(&config.audit.checkpoint_file)
    {
        for (_, found) in checkpoint::find_all(&String::from_utf8_lossy(&bytes)) {
            if let Ok(c) = found {
                writeln!(out, "{}", serde_json::json!({ "checkpoint": c.line() }))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
