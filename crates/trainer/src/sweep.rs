//! `trainer sweep`: many settings over one cache, one ordinary run folder per setting.
//!
//! A setting is a list of trainer flags (`--lr 0.003 --batch 16`); its folder name is made from
//! them (`lr0.003-batch16`), so a rerun finds each run where it left it, and the settings are
//! split across jobs as the other stages split their work (`k % N == I`). The command line is
//! parsed by the binary (the flags are the trainer's own, checked by the same parser); this
//! module holds what a sweep is made of.

use std::collections::BTreeSet;
use std::path::Path;

use ballast_format::JobShard;
use serde::Serialize;

use crate::error::{Result, TrainError};

/// What a sweep folder holds, written by every job of the sweep (all write the same bytes).
pub const SWEEP_FILE: &str = "sweep.json";

/// Flags a setting may not set: the sweep chooses them (or, for threads, sets them once for
/// the whole process).
const RESERVED: [&str; 5] = ["cache", "run", "threads", "resume", "restart-if-changed"];

/// List-valued flags, whose values contain commas: their grid values are separated by `/`.
const LIST_FLAGS: [&str; 2] = ["conv", "fc"];

/// One value of one flag; `Switch(false)` leaves a flag without value out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Switch(bool),
}

/// One run of a sweep: its folder name and the flags that make it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub pairs: Vec<(String, Value)>,
}

impl Setting {
    /// The trainer flags of this setting, as on a command line.
    pub fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in &self.pairs {
            match value {
                Value::Text(v) => {
                    out.push(format!("--{key}"));
                    out.push(v.clone());
                }
                Value::Switch(true) => out.push(format!("--{key}")),
                Value::Switch(false) => {}
            }
        }
        out
    }
}

/// A setting's flags and values, in order.
pub type Pairs = Vec<(String, Value)>;
/// A setting as read, with the folder name a list gave it (if any).
pub type Named = (Option<String>, Pairs);

/// Whether flag `key` (long name without dashes) takes no value: asked of the binary's parser.
pub type IsSwitch<'a> = &'a dyn Fn(&str) -> Option<bool>;

/// The base flags without those `setting` sets itself, so that a swept flag (say `--seed`)
/// overrides the same flag among the base flags instead of clashing with it.
pub fn base_without(base: &[String], setting: &Setting, is_switch: IsSwitch) -> Vec<String> {
    let swept: BTreeSet<&str> = setting.pairs.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = Vec::new();
    let mut it = base.iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            out.push(arg.clone());
            continue;
        };
        let (key, inline_value) = match flag.split_once('=') {
            Some((k, _)) => (k, true),
            None => (flag, false),
        };
        if !swept.contains(key) {
            out.push(arg.clone());
            continue;
        }
        // Skip the flag and, for a valued flag written `--key value`, its value.
        if !inline_value && is_switch(key) == Some(false) {
            it.next();
        }
    }
    out
}

fn usage(msg: String) -> TrainError {
    TrainError::config(msg)
}

fn check_key(key: &str, is_switch: IsSwitch) -> Result<bool> {
    if RESERVED.contains(&key) {
        return Err(usage(format!(
            "--{key} cannot vary in a sweep (the sweep sets it for every run)"
        )));
    }
    is_switch(key).ok_or_else(|| usage(format!("--{key} is not a trainer flag")))
}

fn value_of(key: &str, raw: &str, switch: bool) -> Result<Value> {
    if !switch {
        if raw.is_empty() {
            return Err(usage(format!("--{key} needs a value in the sweep")));
        }
        return Ok(Value::Text(raw.to_string()));
    }
    match raw {
        "true" | "on" | "yes" => Ok(Value::Switch(true)),
        "false" | "off" | "no" => Ok(Value::Switch(false)),
        _ => Err(usage(format!(
            "--{key} is a switch: its sweep values are true or false, not {raw:?}"
        ))),
    }
}

/// `--grid KEY=V1,V2 --grid KEY2=...`: every combination, the first key varying slowest.
pub fn grid(specs: &[String], is_switch: IsSwitch) -> Result<Vec<Vec<(String, Value)>>> {
    let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
    for spec in specs {
        let (key, values) = spec.split_once('=').ok_or_else(|| {
            usage(format!(
                "--grid {spec:?}: expected KEY=V1,V2,... (e.g. lr=0.001,0.003)"
            ))
        })?;
        let key = key.trim().trim_start_matches("--").to_string();
        let switch = check_key(&key, is_switch)?;
        if axes.iter().any(|(k, _)| *k == key) {
            return Err(usage(format!("--grid names {key} twice")));
        }
        let sep = if LIST_FLAGS.contains(&key.as_str()) {
            '/'
        } else {
            ','
        };
        let values = values
            .split(sep)
            .map(|v| value_of(&key, v.trim(), switch))
            .collect::<Result<Vec<_>>>()?;
        axes.push((key, values));
    }
    let mut out: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in &axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((key.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    Ok(if axes.is_empty() { Vec::new() } else { out })
}

/// A settings list: one setting per line, `KEY=VALUE` words (`name=NAME` names its folder),
/// blank lines and `#` comments ignored. Returns (line's name if given, pairs).
pub fn list(text: &str, is_switch: IsSwitch) -> Result<Vec<Named>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut name = None;
        let mut pairs = Vec::new();
        for word in line.split_whitespace() {
            let (key, value) = word.split_once('=').ok_or_else(|| {
                usage(format!(
                    "line {}: {word:?} is not KEY=VALUE (e.g. lr=0.003 batch=16)",
                    n + 1
                ))
            })?;
            let key = key.trim_start_matches("--");
            if key == "name" {
                name = Some(value.to_string());
                continue;
            }
            let switch =
                check_key(key, is_switch).map_err(|e| usage(format!("line {}: {e}", n + 1)))?;
            pairs.push((key.to_string(), value_of(key, value, switch)?));
        }
        out.push((name, pairs));
    }
    Ok(out)
}

/// A folder name for `pairs`: `lr0.003-batch16`, `conv8.16.32`, `augment`; `base` for none.
pub fn name_of(pairs: &[(String, Value)]) -> String {
    if pairs.is_empty() {
        return "base".into();
    }
    let words: Vec<String> = pairs
        .iter()
        .map(|(k, v)| match v {
            Value::Text(t) => format!("{k}{t}"),
            Value::Switch(true) => k.clone(),
            Value::Switch(false) => format!("no-{k}"),
        })
        .collect();
    words
        .join("-")
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            ',' => '.',
            _ => '_',
        })
        .collect()
}

/// Names and checks the settings: folder names must be unique and safe.
pub fn settings(named: Vec<Named>) -> Result<Vec<Setting>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(named.len());
    for (name, pairs) in named {
        let name = name.unwrap_or_else(|| name_of(&pairs));
        let safe = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !safe {
            return Err(usage(format!(
                "run name {name:?}: use letters, digits, '.', '-' and '_' (not starting with '.')"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(usage(format!(
                "two settings share the run folder name {name:?}"
            )));
        }
        out.push(Setting { name, pairs });
    }
    if out.is_empty() {
        return Err(usage(
            "a sweep needs settings: --grid KEY=V1,V2 (repeatable) or --list FILE".into(),
        ));
    }
    Ok(out)
}

/// The settings (indexes) that job `shard` trains: `k % N == I`, like the other stages.
pub fn owned(count: usize, shard: JobShard) -> Vec<usize> {
    (0..count).filter(|&k| shard.owns(k)).collect()
}

#[derive(Serialize)]
struct Record<'a> {
    format: &'static str,
    /// Flags given to every run.
    base: &'a [String],
    runs: Vec<RecordRun>,
}

#[derive(Serialize)]
struct RecordRun {
    name: String,
    flags: Vec<String>,
}

/// Writes `DIR/sweep.json`: the base flags and each run's folder and flags.
pub fn record(dir: &Path, base: &[String], settings: &[Setting]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let record = Record {
        format: "ballast.sweep.v1",
        base,
        runs: settings
            .iter()
            .map(|s| RecordRun {
                name: s.name.clone(),
                flags: s.flags(),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&record)
        .map_err(|e| TrainError::config(format!("cannot encode {SWEEP_FILE}: {e}")))?;
    bytes.push(b'\n');
    crate::run_files::write_if_changed(&dir.join(SWEEP_FILE), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swept_flags_override_base_flags() {
        let sw = |k: &str| Some(matches!(k, "augment" | "nesterov"));
        let base: Vec<String> = ["--seed", "3", "--epochs=20", "--augment", "--lr", "0.1"]
            .map(String::from)
            .into();
        let setting = Setting {
            name: "x".into(),
            pairs: vec![
                ("seed".into(), Value::Text("1".into())),
                ("epochs".into(), Value::Text("5".into())),
                ("augment".into(), Value::Switch(false)),
            ],
        };
        assert_eq!(base_without(&base, &setting, &sw), vec!["--lr", "0.1"]);
        let none = Setting {
            name: "y".into(),
            pairs: vec![],
        };
        assert_eq!(base_without(&base, &none, &sw), base);
    }

    fn switch(key: &str) -> Option<bool> {
        match key {
            "augment" | "nesterov" => Some(true),
            "lr" | "batch" | "conv" | "optimizer" | "epochs" => Some(false),
            _ => None,
        }
    }

    #[test]
    fn grid_is_the_product_first_key_slowest() {
        let g = grid(&["lr=0.001,0.003".into(), "batch=16,32,64".into()], &switch).unwrap();
        let named = settings(g.into_iter().map(|p| (None, p)).collect()).unwrap();
        let names: Vec<_> = named.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "lr0.001-batch16",
                "lr0.001-batch32",
                "lr0.001-batch64",
                "lr0.003-batch16",
                "lr0.003-batch32",
                "lr0.003-batch64"
            ]
        );
        assert_eq!(named[4].flags(), ["--lr", "0.003", "--batch", "32"]);
    }

    #[test]
    fn list_flags_switches_and_names() {
        let g = grid(
            &["conv=6,16,32/8,16,32".into(), "augment=true,false".into()],
            &switch,
        )
        .unwrap();
        let s = settings(g.into_iter().map(|p| (None, p)).collect()).unwrap();
        assert_eq!(s[0].name, "conv6.16.32-augment");
        assert_eq!(s[0].flags(), ["--conv", "6,16,32", "--augment"]);
        assert_eq!(s[1].name, "conv6.16.32-no-augment");
        assert_eq!(s[1].flags(), ["--conv", "6,16,32"]);
        assert_eq!(s[3].name, "conv8.16.32-no-augment");
    }

    #[test]
    fn lists_name_lines_and_report_mistakes_with_line_numbers() {
        let text = "# recipes\nname=report optimizer=sgd lr=0.01 batch=64\n\nlr=0.003 # fast\n";
        let s = settings(list(text, &switch).unwrap()).unwrap();
        assert_eq!(s[0].name, "report");
        assert_eq!(
            s[0].flags(),
            ["--optimizer", "sgd", "--lr", "0.01", "--batch", "64"]
        );
        assert_eq!(s[1].name, "lr0.003");
        let e = list("lr=0.1\nbogus=1\n", &switch).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("--bogus"), "{e}");
        let e = list("lr 0.1\n", &switch).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn reserved_unknown_duplicate_and_unsafe_settings_are_refused() {
        for bad in [
            "run=x",
            "threads=1,2",
            "cache=c",
            "nope=1",
            "augment=maybe",
            "lr=",
        ] {
            assert!(grid(&[bad.into()], &switch).is_err(), "{bad} accepted");
        }
        assert!(grid(&["lr=1".into(), "lr=2".into()], &switch).is_err());
        let dup = vec![(None, vec![]), (None, vec![])];
        assert!(settings(dup).unwrap_err().to_string().contains("share"));
        for name in ["../x", ".hidden", "a/b", ""] {
            let one = vec![(Some(name.to_string()), vec![])];
            assert!(settings(one).is_err(), "{name:?} accepted");
        }
        assert!(settings(Vec::new()).is_err());
    }

    #[test]
    fn jobs_partition_the_settings() {
        let mut all: Vec<usize> = (0..3)
            .flat_map(|i| owned(10, JobShard { index: i, count: 3 }))
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(owned(10, JobShard { index: 1, count: 3 }), [1, 4, 7]);
    }
}
