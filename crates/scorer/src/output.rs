//! What `scorer photos` writes per photo, as CSV, JSON or JSON Lines.
//!
//! CSV columns (classes in the run's label order):
//! `photo,width,height,n_tiles,predicted,agreement,p_<class>...,votes_<class>...`, then with a
//! class map `expected_compaction,top_class_compaction,unit,predicted_label`, then
//! `digest,error`. Probabilities, agreement and compaction have 6 decimals. A photo that could
//! not be scored has only `photo`, `digest` (when the file could be read) and `error` filled.
//!
//! JSON Lines: one object per photo (`{"photo":..,"error":..}` for a bad one). JSON: one
//! document with the run's identity, the classes, the geometry, the class map, `photos` and
//! `errors`.

use std::path::Path;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::aggregate::PhotoVerdict;
use crate::class_map::ClassMap;
use crate::csv_text;

/// Output format of `scorer photos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Jsonl,
}

impl Format {
    /// The format a file name asks for: `.csv`, `.json`, `.jsonl`/`.ndjson`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// Whether results can be appended one line at a time (watch mode).
    pub fn is_line_based(&self) -> bool {
        !matches!(self, Format::Json)
    }
}

/// One scored photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub width: u32,
    pub height: u32,
    pub digest: String,
    pub verdict: PhotoVerdict,
}

/// One photo's line of output: scored, or why not.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoRow {
    /// The photo's path as shown (see [`crate::inputs`]).
    pub photo: String,
    pub outcome: Result<Scored, Bad>,
}

/// A photo that could not be scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Bad {
    pub reason: String,
    /// BLAKE3 of the file when it could be read.
    pub digest: Option<String>,
}

/// Serialises `values` as a JSON object keyed by class name, in class order.
pub(crate) struct ClassValues<'a, T> {
    pub classes: &'a [String],
    pub values: &'a [T],
}

impl<T: Serialize> Serialize for ClassValues<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.classes.len()))?;
        for (c, v) in self.classes.iter().zip(self.values) {
            m.serialize_entry(c, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct JsonCompaction<'a> {
    expected: f64,
    top_class: f64,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted_label: Option<&'a str>,
}

#[derive(Serialize)]
pub struct JsonPhoto<'a> {
    photo: &'a str,
    width: u32,
    height: u32,
    n_tiles: usize,
    predicted: &'a str,
    agreement: f64,
    probabilities: ClassValues<'a, f64>,
    votes: ClassValues<'a, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compaction: Option<JsonCompaction<'a>>,
    digest: &'a str,
}

#[derive(Serialize)]
pub struct JsonBad<'a> {
    photo: &'a str,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
}

/// How rows are laid out: the run's classes and the optional class map.
#[derive(Clone, Debug)]
pub struct Layout {
    pub classes: Vec<String>,
    pub map: Option<ClassMap>,
}

impl Layout {
    pub fn csv_header(&self) -> String {
        csv_text::join(&self.csv_columns())
    }

    /// The CSV column names (class names as they are: `p_<class>` is quoted when needed).
    pub fn csv_columns(&self) -> Vec<String> {
        let mut h: Vec<String> = [
            "photo",
            "width",
            "height",
            "n_tiles",
            "predicted",
            "agreement",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        h.extend(self.classes.iter().map(|c| format!("p_{c}")));
        h.extend(self.classes.iter().map(|c| format!("votes_{c}")));
        if self.map.is_some() {
            h.extend(
                [
                    "expected_compaction",
                    "top_class_compaction",
                    "unit",
                    "predicted_label",
                ]
                .map(String::from),
            );
        }
        h.push("digest".into());
        h.push("error".into());
        h
    }

    pub fn csv_row(&self, row: &PhotoRow) -> String {
        let c = self.classes.len();
        let width = 6 + 2 * c + if self.map.is_some() { 4 } else { 0 } + 2;
        let mut f: Vec<String> = Vec::with_capacity(width);
        f.push(row.photo.clone());
        match &row.outcome {
            Ok(s) => {
                let v = &s.verdict;
                f.push(s.width.to_string());
                f.push(s.height.to_string());
                f.push(v.n_tiles.to_string());
                f.push(self.classes[v.predicted].clone());
                f.push(format!("{:.6}", v.agreement));
                f.extend(v.mean.iter().map(|p| format!("{p:.6}")));
                f.extend(v.votes.iter().map(u64::to_string));
                if let Some(m) = &self.map {
                    let top = m.value(v.predicted);
                    f.push(format!("{:.6}", m.expected(&v.mean)));
                    f.push(format!("{:.6}", top.compaction));
                    f.push(m.unit.clone());
                    f.push(top.label.clone().unwrap_or_default());
                }
                f.push(s.digest.clone());
                f.push(String::new());
            }
            Err(b) => {
                f.resize(width - 2, String::new());
                f.push(b.digest.clone().unwrap_or_default());
                f.push(b.reason.clone());
            }
        }
        csv_text::join(&f)
    }

    /// The row as a serialisable JSON object (keys in a fixed order; see the module docs).
    pub fn json<'a>(&'a self, row: &'a PhotoRow) -> JsonRow<'a> {
        match &row.outcome {
            Ok(s) => {
                let v = &s.verdict;
                let compaction = self.map.as_ref().map(|m| {
                    let top = m.value(v.predicted);
                    JsonCompaction {
                        expected: m.expected(&v.mean),
                        top_class: top.compaction,
                        unit: &m.unit,
                        predicted_label: top.label.as_deref(),
                    }
                });
                JsonRow::Photo(JsonPhoto {
                    photo: &row.photo,
                    width: s.width,
                    height: s.height,
                    n_tiles: v.n_tiles,
                    predicted: &self.classes[v.predicted],
                    agreement: v.agreement,
                    probabilities: ClassValues {
                        classes: &self.classes,
                        values: &v.mean,
                    },
                    votes: ClassValues {
                        classes: &self.classes,
                        values: &v.votes,
                    },
                    compaction,
                    digest: &s.digest,
                })
            }
            Err(b) => JsonRow::Bad(JsonBad {
                photo: &row.photo,
                error: &b.reason,
                digest: b.digest.as_deref(),
            }),
        }
    }

    /// One JSON Lines line (without the line break).
    pub fn jsonl_row(&self, row: &PhotoRow) -> String {
        // Plain structs of strings and numbers always serialise.
        serde_json::to_string(&self.json(row)).unwrap_or_default()
    }

    /// The line for `row` in a line-based format.
    pub fn line(&self, format: Format, row: &PhotoRow) -> String {
        match format {
            Format::Csv => self.csv_row(row),
            Format::Json | Format::Jsonl => self.jsonl_row(row),
        }
    }
}

/// One photo's JSON object: scored, or the error.
#[derive(Serialize)]
#[serde(untagged)]
pub enum JsonRow<'a> {
    Photo(JsonPhoto<'a>),
    Bad(JsonBad<'a>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class_map::{ClassMap, ClassValue};

    fn layout(map: bool) -> Layout {
        Layout {
            classes: vec!["fine".into(), "coarse".into()],
            map: map.then(|| ClassMap {
                unit: "%".into(),
                classes: vec![
                    ClassValue {
                        class: "fine".into(),
                        compaction: 98.0,
                        label: Some("fine, graded".into()),
                    },
                    ClassValue {
                        class: "coarse".into(),
                        compaction: 90.0,
                        label: None,
                    },
                ],
            }),
        }
    }

    fn scored() -> PhotoRow {
        PhotoRow {
            photo: "site a/IMG 1.jpg".into(),
            outcome: Ok(Scored {
                width: 4896,
                height: 3264,
                digest: "d".repeat(64),
                verdict: PhotoVerdict {
                    n_tiles: 54,
                    mean: vec![0.25, 0.75],
                    votes: vec![10, 44],
                    predicted: 1,
                    agreement: 44.0 / 54.0,
                },
            }),
        }
    }

    fn bad() -> PhotoRow {
        PhotoRow {
            photo: "x,y.jpg".into(),
            outcome: Err(Bad {
                reason: "truncated JPEG data".into(),
                digest: None,
            }),
        }
    }

    #[test]
    fn csv_rows() {
        let l = layout(false);
        assert_eq!(
            l.csv_header(),
            "photo,width,height,n_tiles,predicted,agreement,p_fine,p_coarse,votes_fine,\
             votes_coarse,digest,error"
        );
        assert_eq!(
            l.csv_row(&scored()),
            format!(
                "site a/IMG 1.jpg,4896,3264,54,coarse,0.814815,0.250000,0.750000,10,44,{},",
                "d".repeat(64)
            )
        );
        assert_eq!(
            l.csv_row(&bad()),
            "\"x,y.jpg\",,,,,,,,,,,truncated JPEG data"
        );
        let m = layout(true);
        assert!(m.csv_header().ends_with(
            ",votes_coarse,expected_compaction,top_class_compaction,unit,predicted_label,digest,error"
        ));
        // 0.25·98 + 0.75·90 = 92; the top class (coarse) has no label.
        assert!(
            m.csv_row(&scored())
                .contains(",10,44,92.000000,90.000000,%,,dddd")
        );
        let fields = crate::csv_text::parse_line(&m.csv_row(&bad())).unwrap();
        assert_eq!(fields.len(), 16);
        assert_eq!(fields[15], "truncated JPEG data");
    }

    #[test]
    fn json_rows_keep_class_order() {
        let m = layout(true);
        let line = m.jsonl_row(&scored());
        assert!(
            line.starts_with(
                "{\"photo\":\"site a/IMG 1.jpg\",\"width\":4896,\"height\":3264,\"n_tiles\":54,\
                 \"predicted\":\"coarse\",\"agreement\":0.8148148148148148,\
                 \"probabilities\":{\"fine\":0.25,\"coarse\":0.75},\
                 \"votes\":{\"fine\":10,\"coarse\":44},\
                 \"compaction\":{\"expected\":92.0,\"top_class\":90.0,\"unit\":\"%\"},\"digest\":"
            ),
            "{line}"
        );
        assert_eq!(
            m.jsonl_row(&bad()),
            "{\"photo\":\"x,y.jpg\",\"error\":\"truncated JPEG data\"}"
        );
        assert_eq!(m.line(Format::Csv, &bad()), m.csv_row(&bad()));
        let plain = layout(false).jsonl_row(&scored());
        assert!(!plain.contains("compaction"));
    }

    #[test]
    fn formats_from_extensions() {
        assert_eq!(Format::from_path(Path::new("a.CSV")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("a.json")), Some(Format::Json));
        assert_eq!(
            Format::from_path(Path::new("a.ndjson")),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::from_path(Path::new("a.txt")), None);
        assert!(!Format::Json.is_line_based());
    }
}
