//! Classification bounded in time, on the blocking pool: a timeout or a crash inside the
//! classifier is a verdict too — sensitive, `uninspectable` (fail closed).

use std::sync::Arc;
use std::time::Duration;

use classifier::{Ocr, Rules, Verdict, category};
use store::VerdictRecord;

use crate::ocr::Tesseract;

/// Classifies on the blocking pool within `timeout`, scans read with `ocr`. A timeout or
/// panic is a fail-closed verdict.
pub async fn classify_bounded(
    raw: Arc<[u8]>,
    rules: Arc<Rules>,
    ocr: Option<Arc<Tesseract>>,
    timeout: Duration,
) -> VerdictRecord {
    // OCR still running at the deadline is killed: its result could no longer count.
    let deadline = std::time::Instant::now() + timeout;
    let task = tokio::task::spawn_blocking(move || {
        let ocr = ocr.as_deref().map(|t| t.until(deadline));
        classifier::classify_with(&raw, &rules, ocr.as_ref().map(|o| o as &dyn Ocr))
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(verdict)) => record(&verdict),
        Ok(Err(_)) => {
            tracing::error!("classifier crashed; message counts as uninspectable");
            fail_closed("classifier failure")
        }
        Err(_) => {
            tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "classifier timed out; message counts as uninspectable"
            );
            fail_closed("classifier timeout")
        }
    }
}

fn record(verdict: &Verdict) -> VerdictRecord {
    VerdictRecord {
        sensitive: verdict.sensitive,
        categories: verdict.categories.clone(),
        findings: serde_json::to_string(&verdict.findings).unwrap_or_else(|_| "[]".to_owned()),
    }
}

fn fail_closed(reason: &str) -> VerdictRecord {
    VerdictRecord {
        sensitive: true,
        categories: vec![category::UNINSPECTABLE.to_owned()],
        findings: serde_json::json!([{
            "detector": "inspection",
            "category": category::UNINSPECTABLE,
            "confidence": 100,
            "location": {},
            "hint": reason,
        }])
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_classification_that_takes_too_long_fails_closed() {
        // 3 MB of text with the Steuer-ID pattern's first digits everywhere keeps the
        // classifier busy longer than a zero timeout allows.
        let raw = format!("Subject: x\r\n\r\n{}\r\n", "86095 ".repeat(500_000)).into_bytes();
        let v =
            classify_bounded(raw.into(), Arc::new(Rules::default()), None, Duration::ZERO).await;
        assert!(v.sensitive);
        assert_eq!(v.categories, [category::UNINSPECTABLE]);
        assert!(v.findings.contains("classifier timeout"), "{}", v.findings);
    }

    #[tokio::test]
    async fn a_verdict_is_recorded_without_values() {
        let raw = b"Subject: x\r\n\r\nSteuer-ID 86095742719\r\n".to_vec();
        let v = classify_bounded(
            raw.into(),
            Arc::new(Rules::default()),
            None,
            Duration::from_secs(30),
        )
        .await;
        assert!(v.sensitive);
        assert_eq!(v.categories, ["tax_id"]);
        assert!(!v.findings.contains("86095742719"), "{}", v.findings);
    }
}
