//! `trainer runs DIR`: one row per run folder in DIR, to compare experiments.

use std::path::Path;

use serde::Serialize;

use crate::error::{Result, TrainError};
use crate::run_files::{self, CONFIG_FILE, METRICS_FILE, RunConfig};

/// One run, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRow {
    /// 1 for the highest val accuracy of the kept model; none for runs without a finished epoch.
    pub rank: Option<usize>,
    pub name: String,
    pub optimizer: String,
    pub lr: f64,
    pub batch: usize,
    pub schedule: String,
    pub epochs_done: usize,
    pub epochs_planned: usize,
    pub conv: String,
    pub fc: String,
    pub size: usize,
    pub classes: usize,
    pub seed: u64,
    /// Val accuracy and loss of the epoch kept in model.safetensors (lowest val loss).
    pub best_val_acc: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub best_epoch: Option<usize>,
    /// Highest val accuracy of any epoch.
    pub max_val_acc: Option<f64>,
    /// Sum of the recorded epoch times (epochs rebuilt after a kill have none).
    pub total_seconds: f64,
    /// Problems reading the run, if any (the row is still listed).
    pub note: Option<String>,
}

fn list(v: &[usize]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Rows for every folder in `dir` holding a config.json, best val accuracy first.
pub fn collect(dir: &Path) -> Result<Vec<RunRow>> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut rows = Vec::new();
    let mut folders: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(CONFIG_FILE).is_file())
        .collect();
    folders.sort();
    for folder in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let config = match RunConfig::read(&folder.join(CONFIG_FILE)) {
            Ok(c) => c,
            Err(e) => {
                rows.push(RunRow {
                    rank: None,
                    name,
                    optimizer: "?".into(),
                    lr: f64::NAN,
                    batch: 0,
                    schedule: "?".into(),
                    epochs_done: 0,
                    epochs_planned: 0,
                    conv: "?".into(),
                    fc: "?".into(),
                    size: 0,
                    classes: 0,
                    seed: 0,
                    best_val_acc: None,
                    best_val_loss: None,
                    best_epoch: None,
                    max_val_acc: None,
                    total_seconds: 0.0,
                    note: Some(e.to_string()),
                });
                continue;
            }
        };
        let (metrics, note) = match run_files::read_metrics(&folder.join(METRICS_FILE)) {
            Ok(m) => (m, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let best = metrics.iter().min_by(|a, b| {
            a.val_loss
                .total_cmp(&b.val_loss)
                .then(a.epoch.cmp(&b.epoch))
        });
        let s = &config.spec;
        rows.push(RunRow {
            rank: None,
            name,
            optimizer: s.optimizer.kind.as_str().into(),
            lr: s.optimizer.lr,
            batch: s.batch,
            schedule: s.schedule.kind.as_str().into(),
            epochs_done: metrics.len(),
            epochs_planned: s.epochs,
            conv: list(&s.model.conv),
            fc: list(&s.model.fc),
            size: s.model.size,
            classes: s.model.classes,
            seed: s.seed,
            best_val_acc: best.map(|m| m.val_acc),
            best_val_loss: best.map(|m| m.val_loss),
            best_epoch: best.map(|m| m.epoch),
            max_val_acc: metrics.iter().map(|m| m.val_acc).reduce(f64::max),
            total_seconds: epoch_seconds(&folder),
            note,
        });
    }
    rows.sort_by(|a, b| {
        b.best_val_acc
            .unwrap_or(-1.0)
            .total_cmp(&a.best_val_acc.unwrap_or(-1.0))
            .then(a.name.cmp(&b.name))
    });
    for (k, r) in rows
        .iter_mut()
        .filter(|r| r.best_val_acc.is_some())
        .enumerate()
    {
        r.rank = Some(k + 1);
    }
    Ok(rows)
}

/// The rows as an aligned text table.
pub fn render(rows: &[RunRow]) -> String {
    let header = [
        "#", "run", "optim", "lr", "batch", "sched", "epochs", "conv", "fc", "size", "val acc",
        "val loss", "best ep", "max acc", "time",
    ];
    let pct = |v: Option<f64>| {
        v.map(|a| format!("{:.2} %", 100.0 * a))
            .unwrap_or("-".into())
    };
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        table.push(vec![
            r.rank.map(|k| k.to_string()).unwrap_or("-".into()),
            r.name.clone(),
            r.optimizer.clone(),
            format!("{}", r.lr),
            r.batch.to_string(),
            r.schedule.clone(),
            format!("{}/{}", r.epochs_done, r.epochs_planned),
            r.conv.clone(),
            r.fc.clone(),
            r.size.to_string(),
            pct(r.best_val_acc),
            r.best_val_loss
                .map(|l| format!("{l:.4}"))
                .unwrap_or("-".into()),
            r.best_epoch.map(|e| e.to_string()).unwrap_or("-".into()),
            pct(r.max_val_acc),
            format!("{:.1} s", r.total_seconds),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                // Names and words left-aligned, numbers right-aligned.
                if matches!(c, 1 | 2 | 5 | 7 | 8) {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    for r in rows {
        if let Some(n) = &r.note {
            out.push_str(&format!("note: {}: {n}\n", r.name));
        }
    }
    out
}

/// Training time of the epochs the run kept, from log.jsonl: the last timing of each epoch
/// (an epoch redone after a kill counts once).
fn epoch_seconds(run: &Path) -> f64 {
    let mut by_epoch = std::collections::BTreeMap::new();
    for e in crate::run_files::read_log(&run.join(crate::run_files::LOG_FILE)) {
        if let crate::run_files::LogEvent::Epoch { epoch, seconds, .. } = e {
            by_epoch.insert(epoch, seconds);
        }
    }
    by_epoch.values().sum()
}
