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
        AuditCommand::Checkpoint => match super::backup::not_refused(config) {
            Ok(()) => write_checkpoint(&store, config).await,
            Err(e) => Err(e),
        },
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

/// Largest checkpoint file read (a checkpoint line is about 250 bytes; a year of hourly
/// checkpoints, or a mailbox of checkpoint mails, is far less).
const MAX_CHECKPOINT_FILE: u64 = 64 << 20;
/// Longest line of an export read (an entry is a few hundred bytes).
const MAX_EXPORT_LINE: usize = 1 << 20;

/// The checkpoints the verification compares with, from every source, checked against the
/// trusted keys.
struct Anchors {
    anchors: Vec<Anchor>,
    /// (seq, at) of the newest checkpoint, for the report.
    newest: Option<(i64, String)>,
    /// The keys checkpoints must be signed by: `--key` (several across a key change), else
    /// the installation's own.
    trusted: Vec<String>,
    /// Problems found: a line that does not verify, a checkpoint by another key in a file
    /// given on the command line.
    problems: Vec<String>,
    /// Checkpoints of the installation's own file signed by another key (a key made after a
    /// restore on a new machine, or by whoever replaced it): listed, not used.
    ignored: Vec<String>,
    /// Whether a key was named on the command line: then checkpoints must have been checked.
    explicit: bool,
    /// Whether the installation here keeps audit entries for ever (`retention.audit_days`
    /// unset): then a log without its start was cut by hand. `None`: no installation here.
    keeps_all: Option<bool>,
}

impl Anchors {
    /// The trusted keys: `keys` when given, else the installation's checkpoint key. A key
    /// file that exists but is not a key is an error, not a reason to trust anything.
    fn new(keys: Vec<String>, config: Option<&Config>) -> anyhow::Result<Self> {
        let explicit = !keys.is_empty();
        let mut trusted = keys;
        if trusted.is_empty()
            && let Some(config) = config
            && let Some(key) =
                checkpoint::installed_key(config).context("pass the key you trust with --key")?
        {
            trusted.push(key);
        }
        Ok(Self {
            anchors: Vec::new(),
            newest: None,
            trusted,
            problems: Vec::new(),
            ignored: Vec::new(),
            explicit,
            keeps_all: config.map(|c| c.retention.audit_days.is_none()),
        })
    }

    /// Takes the checkpoints `found` in `source`; with `strict` (files given on the command
    /// line, the DPO's copies) one by another key is a problem, else it is left out.
    fn add(
        &mut self,
        source: &str,
        found: Vec<(String, Result<Checkpoint, String>)>,
        strict: bool,
    ) {
        // In the installation's own file, lines of an earlier key come before its key's
        // first line (a restore on a new machine); another key's line after it is a problem.
        let mut trusted_seen = false;
        for (place, result) in found {
            let place = format!("{source}, {place}");
            match result {
                Err(reason) => self.problems.push(format!("{place}: {reason}")),
                Ok(c) => {
                    let key = c.key_text();
                    if !self.trusted.is_empty() && !self.trusted.contains(&key) {
                        let problem = format!(
                            "{place}: signed by key {key}, not by a trusted key ({})",
                            self.trusted.join(", ")
                        );
                        if strict || trusted_seen {
                            self.problems.push(problem);
                        } else {
                            self.ignored.push(problem);
                        }
                        continue;
                    }
                    trusted_seen = true;
                    // The same checkpoint twice (a file and its copy) counts once.
                    if self
                        .anchors
                        .iter()
                        .any(|a| a.seq == c.seq && a.hash == c.head)
                    {
                        continue;
                    }
                    if self.newest.as_ref().is_none_or(|(seq, _)| c.seq >= *seq) {
                        self.newest = Some((c.seq, c.at.clone()));
                    }
                    self.anchors.push(c.anchor(&place));
                }
            }
        }
    }

    /// The checkpoints in `path`, which must hold at least one line that looks like one.
    fn add_file(&mut self, path: &Path, strict: bool) -> anyhow::Result<()> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        anyhow::ensure!(
            size <= MAX_CHECKPOINT_FILE,
            "{} is larger than {} MiB: not a file of checkpoints",
            path.display(),
            MAX_CHECKPOINT_FILE >> 20
        );
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let found = checkpoint::find_in_file(&bytes);
        anyhow::ensure!(
            !found.is_empty(),
            "{} holds no checkpoint (no line starting {:?})",
            path.display(),
            checkpoint::PREFIX.trim_end()
        );
        self.add(&path.display().to_string(), found, strict);
        Ok(())
    }

    /// The configured checkpoint file, when it exists here. Checkpoints without the key
    /// that signed them prove nothing: a missing key beside them is an error.
    fn add_configured(&mut self, config: Option<&Config>, others: bool) -> anyhow::Result<()> {
        let Some(config) = config else {
            return Ok(());
        };
        let path = &config.audit.checkpoint_file;
        if !path.is_file() || std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            // Setup writes the first checkpoint together with the key: a key without any
            // checkpoint beside it means the file was emptied or removed.
            if config.audit.checkpoint_key.exists() {
                let problem = format!(
                    "{} is missing or empty, but this installation signs checkpoints ({} exists): the checkpoint file was removed or emptied",
                    path.display(),
                    config.audit.checkpoint_key.display()
                );
                // With copies kept elsewhere the check goes on, and says so; without, it
                // cannot prove anything.
                anyhow::ensure!(
                    others,
                    "{problem}; verify with the copies kept elsewhere (--checkpoints FILE)"
                );
                self.problems.push(problem);
            }
            return Ok(());
        }
        anyhow::ensure!(
            !self.trusted.is_empty(),
            "{} holds checkpoints, but their key {} is missing: pass the key you trust with --key",
            path.display(),
            config.audit.checkpoint_key.display()
        );
        self.add_file(path, false)
    }

    /// Prints the verdict; an error when the chain or a checkpoint is bad, or when
    /// checkpoints were checked without a key anyone chose to trust.
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
        if !self.ignored.is_empty() {
            println!(
                "not used, signed by another key than the trusted one:\n  {}",
                self.ignored.join("\n  ")
            );
        }
        anyhow::ensure!(
            self.newest.is_some() || (!self.explicit && self.ignored.is_empty()),
            "no checkpoint signed by a trusted key was compared with the log: nothing proves it against whoever can write the database"
        );
        let Some((seq, at)) = &self.newest else {
            anyhow::bail!(
                "no checkpoint given: the chain is consistent in itself, which does not prove it against whoever can write the database; verify with the checkpoints kept outside it (--checkpoints FILE)"
            );
        };
        anyhow::ensure!(
            !self.trusted.is_empty(),
            "the checkpoints were not checked against a key you trust: pass --key KEY (the public key the data-protection officer noted)"
        );
        println!(
            "checkpoints: {matched} matched, the newest of {at} (entry {seq}); signed by key {}",
            self.trusted.join(", ")
        );
        if before > 0 {
            println!("  {before} older than the entries kept (not checkable after retention)");
        }
        let last = first - 1 + entries;
        if last > *seq {
            println!(
                "  entries {} to {last} came after the newest checkpoint: no checkpoint given proves them yet",
                seq + 1
            );
        }
        anyhow::ensure!(
            matched > 0,
            "no checkpoint could be compared with the log (all are older than its retained start): use a newer checkpoint"
        );
        Ok(())
    }
}

async fn verify(
    store: &store::Store,
    config: Option<&Config>,
    files: &[PathBuf],
    keys: Vec<String>,
) -> anyhow::Result<()> {
    let mut anchors = Anchors::new(keys, config)?;
    anchors.add_configured(config, !files.is_empty())?;
    for file in files {
        anchors.add_file(file, true)?;
    }
    let policy = config.map_or(store::CutPolicy::Stated, |c| {
        store::CutPolicy::of(c.retention.audit_days)
    });
    let check = store
        .verify_audit_policy(&anchors.anchors, policy)
        .await
        .readable()?;
    anchors.report(check)
}

/// The chain's start in an export (after retention).
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct ExportStart {
    seq: i64,
    hash: String,
}

/// The fields an exported entry has (`webui::export::json_line`): nothing else is accepted,
/// and `time` must be `at` as RFC 3339, so that what a reader of the file sees is what was
/// hashed.
const ENTRY_FIELDS: [&str; 9] = [
    "seq",
    "at",
    "actor",
    "action",
    "subjects",
    "details",
    "prev_hash",
    "hash",
    "time",
];

/// One line of a JSON Lines export: the chain's start, a checkpoint, or an entry.
enum ExportLine {
    Start(ExportStart),
    Checkpoint(String),
    Entry(AuditEntry),
}

fn export_line(line: &str) -> Result<ExportLine, String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let object = value.as_object().ok_or("not a JSON object")?;
    if let Some(start) = object.get("chain_start") {
        if object.len() != 1 {
            return Err("chain_start stands alone".into());
        }
        return serde_json::from_value(start.clone())
            .map(ExportLine::Start)
            .map_err(|e| e.to_string());
    }
    if let Some(checkpoint) = object.get("checkpoint") {
        return match (checkpoint.as_str(), object.len()) {
            (Some(line), 1) => Ok(ExportLine::Checkpoint(line.to_owned())),
            _ => Err("checkpoint is one string, alone".into()),
        };
    }
    if let Some(unknown) = object.keys().find(|k| !ENTRY_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let entry: AuditEntry = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    if let Some(time) = object.get("time") {
        let expected = webui::datetime::rfc3339(entry.at);
        if time.as_str() != Some(expected.as_str()) {
            return Err(format!(
                "entry {}: its time {time} is not its hashed time {expected}",
                entry.seq
            ));
        }
    }
    Ok(ExportLine::Entry(entry))
}

/// `audit verify --export FILE`: the export's entries, its checkpoints and those of `files`;
/// no database is needed, so it runs on another machine (`config`: the installation here,
/// if any, for its checkpoint file and key). The file is read line by line.
pub(super) fn verify_export(
    file: &Path,
    config: Option<&Config>,
    files: &[PathBuf],
    keys: Vec<String>,
) -> anyhow::Result<()> {
    let mut anchors = Anchors::new(keys, config)?;
    // Two passes: the checkpoints come last, but the verifier needs them first; an export
    // of millions of entries is never held in memory.
    let mut start = ChainStart::default();
    let mut checkpoints = Vec::new();
    each_export_line(file, |n, line| {
        match line {
            ExportLine::Start(s) if n == 1 => {
                start = ChainStart {
                    seq: s.seq,
                    hash: s.hash,
                }
            }
            ExportLine::Start(_) => {
                anyhow::bail!(
                    "{}, line {n}: the chain's start must come first",
                    file.display()
                )
            }
            ExportLine::Checkpoint(line) => {
                checkpoints.push((format!("line {n}"), Checkpoint::parse(&line)));
            }
            ExportLine::Entry(_) => {}
        }
        Ok(())
    })?;
    anchors.add(&file.display().to_string(), checkpoints, true);
    anyhow::ensure!(
        !anchors.anchors.is_empty() || !anchors.problems.is_empty() || !files.is_empty(),
        "{} carries no checkpoint: an export proves nothing without one (add the DPO's with --checkpoints FILE)",
        file.display()
    );
    for file in files {
        anchors.add_file(file, true)?;
    }
    let mut verifier = ChainVerifier::new(start, &anchors.anchors);
    each_export_line(file, |_, line| {
        if let ExportLine::Entry(entry) = line {
            verifier.push(&entry);
        }
        Ok(())
    })?;
    // An export has no head beside it: its end is proved by the checkpoints.
    anchors.report(verifier.finish(None))
}

/// Each line of the export `file` (numbered from 1), parsed; blank lines skipped.
fn each_export_line(
    file: &Path,
    mut f: impl FnMut(usize, ExportLine) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?,
    );
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        anyhow::ensure!(
            line.len() <= MAX_EXPORT_LINE,
            "{}, line {n}: longer than {MAX_EXPORT_LINE} bytes: not an export",
            file.display()
        );
        let line = String::from_utf8(line)
            .map_err(|_| anyhow::anyhow!("{}, line {n}: not UTF-8", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = export_line(&line).map_err(|e| {
            anyhow::anyhow!(
                "{}, line {n}: not a line of `ratspost audit export` (JSON Lines): {e}",
                file.display()
            )
        })?;
        f(n, parsed)?;
    }
    Ok(())
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
