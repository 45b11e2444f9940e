//! `ratspost audit list|verify|export`: the audit chain for the data-protection officer.

use std::io::Write as _;

use store::{AuditCheck, AuditEntry};

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
        AuditCommand::Verify => verify(&store).await,
        AuditCommand::Export { format } => export(&store, format).await,
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

async fn verify(store: &store::Store) -> anyhow::Result<()> {
    match store.verify_audit().await.readable()? {
        AuditCheck::Intact { entries, head } => {
            println!("audit chain intact: {entries} entries, head {head}");
            Ok(())
        }
        AuditCheck::Broken { seq, reason } => {
            anyhow::bail!("audit chain broken at entry {seq}: {reason}")
        }
    }
}

async fn export(store: &store::Store, format: ExportFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let ExportFormat::Csv = format {
        out.write_all(export::CSV_HEADER.as_bytes())?;
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
    out.flush()?;
    Ok(())
}
