//! The class map: a compaction value (with its unit, and optionally a label) for each class,
//! so that a photo's class probabilities become an expected compaction.
//!
//! Two formats, chosen by extension (`.toml`, `.csv`; anything else is tried as TOML):
//!
//! ```toml
//! unit = "% of max dry density"      # default unit of every class
//!
//! [classes.g1-fine]
//! compaction = 97.5
//! label = "fine, well graded"        # optional
//! # unit = "..."                     # optional per class; all classes must agree
//! ```
//!
//! ```csv
//! class,compaction,unit,label
//! g1-fine,97.5,% of max dry density,"fine, well graded"
//! ```
//! (columns in any order; `label` is optional; fields may be quoted as in RFC 4180; blank lines
//! and lines starting with `#` are ignored.)
//!
//! Every class of the run must be in the map and every class in the map must be one of the
//! run's: a map made for another model is refused, naming the classes. The probability-weighted
//! mean of values in different units would be meaningless, so mixed units are refused too.
//!
//! **Gradation curves** (optional, for every class or none): in TOML, `sieve_mm = [...]`
//! (increasing sizes in mm) and `passing = [...]` (percent, non-decreasing, 0–100) in each
//! `[classes.NAME]`, and optionally a specification band:
//!
//! ```toml
//! [envelope]
//! sieve_mm = [0.5, 2.0, 8.0]
//! lower = [5.0, 30.0, 80.0]
//! upper = [30.0, 70.0, 100.0]
//! ```
//!
//! In CSV, columns `sieve_mm` and `passing` hold the lists separated by `;` (e.g.
//! `"0.5;2;8"` and `"10;55;100"`); the envelope is TOML only. A bad curve is an error naming the
//! class (see [`crate::gradation::Curve::new`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::csv_text;
use crate::gradation::{self, Curve, Envelope, Gradation, Mixture};

#[derive(Debug, thiserror::Error)]
pub enum ClassMapError {
    #[error("class map {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("class map {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("class map {path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One class's entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassValue {
    pub class: String,
    pub compaction: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The class's sieve curve (every class has one, or none has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<Curve>,
}

/// A class map checked against a run's classes: one entry per class, in the run's class order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassMap {
    pub unit: String,
    pub classes: Vec<ClassValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

/// A photo's expected gradation: the probability-weighted curve and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoGradation {
    pub curve: Mixture,
    pub summary: Gradation,
    /// With an envelope: `Some(failing sieves)` (empty: within), `None` when the curve is
    /// unknown at one of its sieves.
    pub envelope: Option<Option<Vec<f64>>>,
}

/// A parsed map before it is matched with a run. Entries keep file order.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedMap {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    pub envelope: Option<Envelope>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub class: String,
    pub compaction: f64,
    pub unit: String,
    pub label: Option<String>,
    pub curve: Option<Curve>,
}

impl ClassMap {
    /// Reads `path` and matches it with `classes` (the run's, in label order).
    pub fn load(path: &Path, classes: &[String]) -> Result<ClassMap, ClassMapError> {
        read(path)?.resolve(classes)
    }

    /// Σ p_c · value_c over classes (`probs` in class order).
    pub fn expected(&self, probs: &[f64]) -> f64 {
        self.classes
            .iter()
            .zip(probs)
            .map(|(c, p)| c.compaction * p)
            .sum()
    }

    pub fn value(&self, class: usize) -> &ClassValue {
        &self.classes[class]
    }

    /// Every class has a sieve curve.
    pub fn has_curves(&self) -> bool {
        self.classes.iter().all(|c| c.curve.is_some())
    }

    /// The class curves' sieve sizes, merged (empty without curves).
    pub fn sieve_sizes(&self) -> Vec<f64> {
        gradation::union_sizes(self.classes.iter().filter_map(|c| c.curve.as_ref()))
    }

    /// The photo's expected curve for class probabilities `probs`, when the map has curves.
    pub fn gradation(&self, probs: &[f64]) -> Option<PhotoGradation> {
        let curves: Vec<Curve> = self
            .classes
            .iter()
            .map(|c| c.curve.clone())
            .collect::<Option<_>>()?;
        let curve = gradation::mixture(&curves, probs, &self.sieve_sizes());
        Some(PhotoGradation {
            summary: curve.summary(),
            envelope: self.envelope.as_ref().map(|e| e.check(&curve)),
            curve,
        })
    }
}

/// A list of numbers from a TOML array.
fn toml_numbers(v: &toml::Value, what: &str) -> Result<Vec<f64>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("{what} must be an array of numbers, not {}", v.type_str()))?;
    items
        .iter()
        .map(|x| match x {
            toml::Value::Float(f) => Ok(*f),
            toml::Value::Integer(i) => Ok(*i as f64),
            other => Err(format!(
                "{what} must hold numbers, not {} ({other})",
                other.type_str()
            )),
        })
        .collect()
}

/// The `[envelope]` table.
fn toml_envelope(v: &toml::Value) -> Result<Envelope, String> {
    let t = v
        .as_table()
        .ok_or_else(|| "[envelope] must be a table with sieve_mm, lower, upper".to_string())?;
    let get = |k: &str| {
        t.get(k)
            .ok_or_else(|| format!("[envelope] has no `{k}`"))
            .and_then(|v| toml_numbers(v, &format!("envelope.{k}")))
    };
    if let Some(k) = t
        .keys()
        .find(|k| !matches!(k.as_str(), "sieve_mm" | "lower" | "upper"))
    {
        return Err(format!(
            "[envelope]: unknown key `{k}` (expected sieve_mm, lower, upper)"
        ));
    }
    Envelope::new(get("sieve_mm")?, get("lower")?, get("upper")?)
        .map_err(|e| format!("[envelope]: {e}"))
}

/// Parses a class map file (format by extension).
pub fn read(path: &Path) -> Result<ParsedMap, ClassMapError> {
    // The tiler's reader: a FIFO or device named as the map is refused, not opened and waited on.
    let bytes = ballast_tiler::photo::read(path).map_err(|e| match e {
        ballast_tiler::photo::PhotoError::Read(source) => ClassMapError::Read {
            path: path.to_path_buf(),
            source,
        },
        other => invalid(path, other.to_string()),
    })?;
    let text =
        String::from_utf8(bytes).map_err(|e| invalid(path, format!("not UTF-8 text ({e})")))?;
    // Spreadsheet programs start UTF-8 CSV files with a byte-order mark; it is not part of the
    // first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(path, text)
    } else {
        parse_toml(path, text)
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> ClassMapError {
    ClassMapError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn check_value(v: f64, what: &str) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{what}: compaction {v} is not a finite number"))
    }
}

/// TOML: top-level `unit`, then `[classes.NAME]` tables with `compaction`, optional `label`
/// and `unit`.
pub fn parse_toml(path: &Path, text: &str) -> Result<ParsedMap, ClassMapError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        invalid(
            path,
            format!("not valid TOML: {}", e.to_string().trim_end()),
        )
    })?;
    let mut default_unit = None;
    let mut classes = None;
    let mut envelope = None;
    for (key, value) in &table {
        match (key.as_str(), value) {
            ("unit", toml::Value::String(s)) => default_unit = Some(s.clone()),
            ("unit", other) => {
                return Err(invalid(
                    path,
                    format!("`unit` must be a string, not {}", other.type_str()),
                ));
            }
            ("classes", toml::Value::Table(t)) => classes = Some(t),
            ("envelope", v) => envelope = Some(toml_envelope(v).map_err(|m| invalid(path, m))?),
            ("classes", other) => {
                return Err(invalid(
                    path,
                    format!(
                        "`classes` must be a table of [classes.NAME] sections, not {}",
                        other.type_str()
                    ),
                ));
            }
            (other, _) => {
                return Err(invalid(
                    path,
                    format!(
                        "unknown top-level key `{other}` (expected `unit`, [classes.NAME] and \
                         [envelope])"
                    ),
                ));
            }
        }
    }
    let classes =
        classes.ok_or_else(|| invalid(path, "no [classes.NAME] sections: the map is empty"))?;
    let mut entries = Vec::new();
    for (name, value) in classes {
        let t = value.as_table().ok_or_else(|| {
            invalid(
                path,
                format!(
                    "classes.{name} must be a table with `compaction` (e.g. \
                     [classes.{name}] compaction = 95.0)"
                ),
            )
        })?;
        let mut compaction = None;
        let mut unit = default_unit.clone();
        let mut label = None;
        let (mut sieve, mut passing) = (None, None);
        for (k, v) in t {
            match k.as_str() {
                "compaction" => {
                    let x = match v {
                        toml::Value::Float(f) => *f,
                        toml::Value::Integer(i) => *i as f64,
                        other => {
                            return Err(invalid(
                                path,
                                format!(
                                    "classes.{name}.compaction must be a number, not {} ({other})",
                                    other.type_str()
                                ),
                            ));
                        }
                    };
                    compaction = Some(
                        check_value(x, &format!("classes.{name}")).map_err(|m| invalid(path, m))?,
                    );
                }
                "label" | "unit" => {
                    let s = v.as_str().ok_or_else(|| {
                        invalid(
                            path,
                            format!("classes.{name}.{k} must be a string, not {}", v.type_str()),
                        )
                    })?;
                    if k == "label" {
                        label = Some(s.to_string());
                    } else {
                        unit = Some(s.to_string());
                    }
                }
                "sieve_mm" | "passing" => {
                    let xs = toml_numbers(v, &format!("classes.{name}.{k}"))
                        .map_err(|m| invalid(path, m))?;
                    if k == "sieve_mm" {
                        sieve = Some(xs);
                    } else {
                        passing = Some(xs);
                    }
                }
                other => {
                    return Err(invalid(
                        path,
                        format!(
                            "classes.{name}: unknown key `{other}` (expected compaction, label, \
                             unit, sieve_mm, passing)"
                        ),
                    ));
                }
            }
        }
        let compaction = compaction
            .ok_or_else(|| invalid(path, format!("classes.{name} has no `compaction` value")))?;
        let unit = unit.ok_or_else(|| {
            invalid(
                path,
                format!(
                    "classes.{name} has no unit: give a top-level `unit = \"...\"` or a `unit` \
                     in the class"
                ),
            )
        })?;
        let curve = curve_of(name, sieve, passing).map_err(|m| invalid(path, m))?;
        entries.push(Entry {
            class: name.clone(),
            compaction,
            unit,
            label,
            curve,
        });
    }
    Ok(ParsedMap {
        path: path.to_path_buf(),
        entries,
        envelope,
    })
}

/// A class's curve from its two lists (both or neither).
fn curve_of(
    class: &str,
    sieve: Option<Vec<f64>>,
    passing: Option<Vec<f64>>,
) -> Result<Option<Curve>, String> {
    match (sieve, passing) {
        (None, None) => Ok(None),
        (Some(s), Some(p)) => Curve::new(s, p)
            .map(Some)
            .map_err(|e| format!("class {class}: bad sieve curve: {e}")),
        (Some(_), None) => Err(format!("class {class} has sieve_mm but no passing")),
        (None, Some(_)) => Err(format!("class {class} has passing but no sieve_mm")),
    }
}

/// `0.5;2;8` (CSV curve cells); empty: no list.
fn csv_numbers(cell: &str, what: &str) -> Result<Option<Vec<f64>>, String> {
    if cell.trim().is_empty() {
        return Ok(None);
    }
    cell.split(';')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| format!("{what}: {x:?} is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// CSV with a header naming `class`, `compaction`, `unit` and optionally `label`.
pub fn parse_csv(path: &Path, text: &str) -> Result<ParsedMap, ClassMapError> {
    let line_err = |line: usize, message: String| ClassMapError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    // Records, not lines: a quoted class name or label may hold a line break.
    let mut records = csv_text::Records::new(text, true);
    let (hline, header) = match records.next() {
        None => {
            return Err(invalid(
                path,
                "empty file: expected a header `class,compaction,unit`",
            ));
        }
        Some(r) => r
            .map(|r| (r.line, r.fields))
            .map_err(|e| line_err(e.line, e.message))?,
    };
    let mut col = BTreeMap::new();
    for (i, h) in header.iter().enumerate() {
        let h = h.trim().to_ascii_lowercase();
        if !matches!(
            h.as_str(),
            "class" | "compaction" | "unit" | "label" | "sieve_mm" | "passing"
        ) {
            return Err(line_err(
                hline,
                format!(
                    "unknown column `{h}` (expected class, compaction, unit, label, sieve_mm, \
                     passing)"
                ),
            ));
        }
        if col.insert(h.clone(), i).is_some() {
            return Err(line_err(hline, format!("column `{h}` appears twice")));
        }
    }
    for needed in ["class", "compaction", "unit"] {
        if !col.contains_key(needed) {
            return Err(line_err(
                hline,
                format!(
                    "the header has no `{needed}` column (expected class,compaction,unit[,label])"
                ),
            ));
        }
    }
    let mut entries = Vec::new();
    for record in records {
        let record = record.map_err(|e| line_err(e.line, e.message))?;
        let (n, fields) = (record.line, record.fields);
        if fields.len() != header.len() {
            return Err(line_err(
                n,
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        let get = |c: &str| col.get(c).map(|&i| fields[i].trim().to_string());
        let class = get("class").unwrap_or_default();
        if class.is_empty() {
            return Err(line_err(n, "empty class name".into()));
        }
        let raw = get("compaction").unwrap_or_default();
        let compaction: f64 = raw.parse().map_err(|_| {
            line_err(
                n,
                format!("compaction {raw:?} of class {class} is not a number"),
            )
        })?;
        let compaction = check_value(compaction, &class).map_err(|m| line_err(n, m))?;
        let unit = get("unit").unwrap_or_default();
        if unit.is_empty() {
            return Err(line_err(n, format!("class {class} has an empty unit")));
        }
        let label = get("label").filter(|l| !l.is_empty());
        let list = |c: &str| {
            csv_numbers(&get(c).unwrap_or_default(), &format!("class {class} {c}"))
                .map_err(|m| line_err(n, m))
        };
        let curve =
            curve_of(&class, list("sieve_mm")?, list("passing")?).map_err(|m| line_err(n, m))?;
        if let Some(prev) = entries
            .iter()
            .position(|e: &(usize, Entry)| e.1.class == class)
        {
            return Err(line_err(
                n,
                format!(
                    "class {class} appears twice (first on line {})",
                    entries[prev].0
                ),
            ));
        }
        entries.push((
            n,
            Entry {
                class,
                compaction,
                unit,
                label,
                curve,
            },
        ));
    }
    if entries.is_empty() {
        return Err(invalid(path, "no classes after the header"));
    }
    Ok(ParsedMap {
        path: path.to_path_buf(),
        entries: entries.into_iter().map(|(_, e)| e).collect(),
        envelope: None,
    })
}

impl ParsedMap {
    /// Matches the map with the run's classes: every run class present, no other class, one
    /// unit. The result is in the run's class order.
    pub fn resolve(self, classes: &[String]) -> Result<ClassMap, ClassMapError> {
        let path = &self.path;
        let missing: Vec<&str> = classes
            .iter()
            .filter(|c| !self.entries.iter().any(|e| &e.class == *c))
            .map(String::as_str)
            .collect();
        let unknown: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| !classes.contains(&e.class))
            .map(|e| e.class.as_str())
            .collect();
        if !missing.is_empty() || !unknown.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!(
                    "missing the run's class(es) {}",
                    missing.join(", ")
                ));
            }
            if !unknown.is_empty() {
                parts.push(format!(
                    "has class(es) {} that the run does not know",
                    unknown.join(", ")
                ));
            }
            return Err(invalid(
                path,
                format!(
                    "{} (the run's classes: {})",
                    parts.join("; "),
                    classes.join(", ")
                ),
            ));
        }
        let mut units: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in &self.entries {
            units.entry(&e.unit).or_default().push(&e.class);
        }
        if units.len() > 1 {
            let list: Vec<String> = units
                .iter()
                .map(|(u, cs)| format!("{u:?} ({})", cs.join(", ")))
                .collect();
            return Err(invalid(
                path,
                format!(
                    "mixed units {}: a probability-weighted compaction needs one unit",
                    list.join(" vs ")
                ),
            ));
        }
        let without: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.curve.is_none())
            .map(|e| e.class.as_str())
            .collect();
        if !without.is_empty() && without.len() < self.entries.len() {
            return Err(invalid(
                path,
                format!(
                    "class(es) {} have no sieve curve while others do: give every class \
                     sieve_mm and passing, or none",
                    without.join(", ")
                ),
            ));
        }
        if self.envelope.is_some() && !without.is_empty() {
            return Err(invalid(
                path,
                "an [envelope] needs the classes' sieve curves (sieve_mm, passing)",
            ));
        }
        let unit = self.entries[0].unit.clone();
        let classes = classes
            .iter()
            .filter_map(|c| self.entries.iter().find(|e| &e.class == c))
            .map(|e| ClassValue {
                class: e.class.clone(),
                compaction: e.compaction,
                label: e.label.clone(),
                curve: e.curve.clone(),
            })
            .collect();
        Ok(ClassMap {
            unit,
            classes,
            envelope: self.envelope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const TOML: &str = r#"
# a comment
unit = "% of max dry density"

[classes.g1-fine]
compaction = 97.5
label = "fine, well graded (Fuller n = 0.45)"

[classes.g2-medium]
compaction = 96

[classes.g3-coarse]
compaction = 94.5
"#;

    #[test]
    fn toml_as_synth_writes_it() {
        let m = parse_toml(Path::new("m.toml"), TOML)
            .unwrap()
            .resolve(&names(&["g3-coarse", "g1-fine", "g2-medium"]))
            .unwrap();
        assert_eq!(m.unit, "% of max dry density");
        // Run class order, not file order.
        let got: Vec<(&str, f64)> = m
            .classes
            .iter()
            .map(|c| (c.class.as_str(), c.compaction))
            .collect();
        assert_eq!(
            got,
            vec![("g3-coarse", 94.5), ("g1-fine", 97.5), ("g2-medium", 96.0)]
        );
        assert_eq!(
            m.classes[1].label.as_deref(),
            Some("fine, well graded (Fuller n = 0.45)")
        );
        assert_eq!(m.classes[0].label, None);
        assert!((m.expected(&[0.5, 0.25, 0.25]) - (47.25 + 24.375 + 24.0)).abs() < 1e-12);
    }

    #[test]
    fn the_fixture_map_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos/class-map.toml");
        let m = ClassMap::load(&p, &names(&["g1-fine", "g2-medium-fine", "g3-medium"])).unwrap();
        assert_eq!(m.classes.len(), 3);
        assert_eq!(m.unit, "% of max dry density");
    }

    #[test]
    fn csv_with_quotes_and_comments() {
        let text = "# map\nclass,compaction,unit,label\n\
                    a,97.5,%,\"fine, \"\"well\"\" graded\"\n\
                    \n\
                    b,-3e1,%,\n";
        let m = parse_csv(Path::new("m.csv"), text)
            .unwrap()
            .resolve(&names(&["a", "b"]))
            .unwrap();
        assert_eq!(m.classes[0].label.as_deref(), Some("fine, \"well\" graded"));
        assert_eq!(m.classes[1].compaction, -30.0);
        assert_eq!(m.classes[1].label, None);
        assert_eq!(m.unit, "%");
        // Columns in any order, label optional.
        let m = parse_csv(
            Path::new("m.csv"),
            "unit,compaction,class\nkN,1,a\nkN,2,b\n",
        )
        .unwrap()
        .resolve(&names(&["a", "b"]))
        .unwrap();
        assert_eq!(m.classes[1].compaction, 2.0);
    }

    #[test]
    fn unknown_and_missing_classes_are_named() {
        let e = parse_toml(Path::new("m.toml"), TOML)
            .unwrap()
            .resolve(&names(&["g1-fine", "g2-medium", "g4-gravel", "g5"]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("class map m.toml: "), "{e}");
        assert!(
            e.contains("missing the run's class(es) g4-gravel, g5"),
            "{e}"
        );
        assert!(
            e.contains("has class(es) g3-coarse that the run does not know"),
            "{e}"
        );
    }

    #[test]
    fn bad_numbers_duplicates_units_and_syntax() {
        let p = Path::new("m.csv");
        let e = parse_csv(p, "class,compaction,unit\na,lots,%\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "class map m.csv:2: compaction \"lots\" of class a is not a number"
        );
        let e = parse_csv(p, "class,compaction,unit\na,1,%\nb,2,%\na,3,%\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "class map m.csv:4: class a appears twice (first on line 2)"
        );
        let e = parse_csv(p, "class,compaction,unit\na,1,%\nb,2,kPa\n")
            .unwrap()
            .resolve(&names(&["a", "b"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mixed units \"%\" (a) vs \"kPa\" (b)"), "{e}");
        let e = parse_csv(p, "class,compaction\na,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `unit` column"), "{e}");
        let e = parse_csv(p, "class,compaction,unit\na,nan,%\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a finite number"), "{e}");
        let e = parse_csv(p, "class,compaction,unit\na,1,%,extra\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2: 4 fields, the header has 3"), "{e}");

        let t = Path::new("m.toml");
        let e = parse_toml(t, "unit = \"%\"\n[classes.a]\ncompaction = \"high\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("classes.a.compaction must be a number"), "{e}");
        let e = parse_toml(
            t,
            "unit = \"%\"\n[classes.a]\ncompaction = 1\n[classes.a]\ncompaction = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not valid TOML") && e.contains("line"), "{e}");
        let e = parse_toml(t, "[classes.a]\ncompaction = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("classes.a has no unit"), "{e}");
        let e = parse_toml(t, "unit = \"%\"\n[classes.a]\ncompation = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `compation`"), "{e}");
        let e = parse_toml(t, "unit = \"%\"\n[classes.a]\ncompaction = 1\n[classes.b]\ncompaction = 2\nunit = \"kPa\"\n")
            .unwrap()
            .resolve(&names(&["a", "b"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mixed units"), "{e}");
        let e = parse_toml(t, "this is not toml").unwrap_err().to_string();
        assert!(e.starts_with("class map m.toml: not valid TOML"), "{e}");
    }

    #[test]
    fn reading_a_missing_file_names_it() {
        let e = read(Path::new("/nonexistent/map.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("class map /nonexistent/map.toml: "), "{e}");
    }

    const CURVES: &str = r#"
unit = "%"
[classes.a]
compaction = 97
sieve_mm = [0.5, 2.0]
passing = [10, 100]
[classes.b]
compaction = 94
sieve_mm = [1.0, 8.0]
passing = [0.0, 60.0]
[envelope]
sieve_mm = [1.0, 8.0]
lower = [10, 60]
upper = [20, 100]
"#;

    #[test]
    fn curves_and_envelope_in_toml_and_csv() {
        let ab = names(&["a", "b"]);
        let m = parse_toml(Path::new("m.toml"), CURVES)
            .unwrap()
            .resolve(&ab)
            .unwrap();
        assert!(m.has_curves());
        assert_eq!(m.sieve_sizes(), vec![0.5, 1.0, 2.0, 8.0]);
        let g = m.gradation(&[0.25, 0.75]).unwrap();
        assert_eq!(g.curve.passing[3], Some(70.0));
        assert_eq!(g.envelope, Some(Some(vec![])));
        let csv = "class,compaction,unit,sieve_mm,passing\n\
                   a,97,%,0.5;2,10;100\n\
                   b,94,%,1;8,0;60\n";
        let c = parse_csv(Path::new("m.csv"), csv)
            .unwrap()
            .resolve(&ab)
            .unwrap();
        assert_eq!(c.classes, m.classes);
        // Without curves there is no gradation.
        let plain = parse_toml(Path::new("m.toml"), TOML)
            .unwrap()
            .resolve(&names(&["g1-fine", "g2-medium", "g3-coarse"]))
            .unwrap();
        assert!(plain.gradation(&[1.0, 0.0, 0.0]).is_none());
    }

    #[test]
    fn bad_curves_name_the_class() {
        let ab = names(&["a", "b"]);
        let err = |text: &str| {
            parse_toml(Path::new("m.toml"), text)
                .and_then(|p| p.resolve(&ab))
                .unwrap_err()
                .to_string()
        };
        let e = err(&CURVES.replace("passing = [0.0, 60.0]", "passing = [60.0, 0.0]"));
        assert!(
            e.contains("class b") && e.contains("must not decrease"),
            "{e}"
        );
        let e = err(&CURVES.replace(
            "sieve_mm = [1.0, 8.0]\npassing",
            "sieve_mm = [8.0, 1.0]\npassing",
        ));
        assert!(e.contains("class b") && e.contains("must increase"), "{e}");
        let e = err(&CURVES.replace("passing = [10, 100]", "passing = [10, 120]"));
        assert!(e.contains("class a") && e.contains("outside 0–100"), "{e}");
        let no_b = CURVES.replace("sieve_mm = [1.0, 8.0]\npassing = [0.0, 60.0]\n", "");
        let e = err(&no_b);
        assert!(e.contains("b have no sieve curve"), "{e}");
        let e = err(&CURVES.replace("lower = [10, 60]", "lower = [30, 60]"));
        assert!(e.contains("[envelope]") && e.contains("above upper"), "{e}");
        let csv = "class,compaction,unit,sieve_mm,passing\na,97,%,0.5;x,10;100\nb,94,%,1;8,0;60\n";
        let e = parse_csv(Path::new("m.csv"), csv).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("class a sieve_mm"), "{e}");
    }
}
