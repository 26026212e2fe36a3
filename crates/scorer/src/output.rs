//! What `scorer photos` writes per photo, as CSV, JSON or JSON Lines.
//!
//! CSV columns (classes in the run's label order):
//! `photo,width,height,n_tiles,predicted,agreement,p_<class>...,votes_<class>...`, then with a
//! class map `expected_compaction,top_class_compaction,unit,predicted_label`; with sieve curves
//! in the map `passing_<mm>mm...` (the expected curve at every sieve size of the map's curves),
//! `d10_mm,d30_mm,d50_mm,d60_mm,d90_mm,cu,cc`, and with an envelope
//! `within_envelope,envelope_fails` (`;`-separated sieve sizes); then always `ood_score,flag`
//! (the novelty check fitted by `scorer eval`: the median of the windows' distance-to-training
//! ratios, and `ok` / `unlike-training`; both empty when the run has no fitted check), then
//! `digest,error`. A value the curve cannot give (it never reaches 10 %, say) is empty.
//! Probabilities are calibrated (temperature scaling) when the run has a calibration file.
//! Probabilities, agreement and compaction have 6 decimals. A photo that could not be scored
//! has only `photo`, `digest` (when the file could be read) and `error` filled.
//!
//! JSON Lines: one object per photo (`{"photo":..,"error":..}` for a bad one). JSON: one
//! document with the run's identity, the classes, the geometry, the class map, `photos` and
//! `errors`.

use std::path::Path;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::aggregate::PhotoVerdict;
use crate::class_map::{ClassMap, PhotoGradation};
use crate::csv_text;
use crate::novelty::Verdict;

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
    /// The novelty check's verdict; `None` when the run has no fitted check.
    pub novelty: Option<Verdict>,
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

/// A photo's (or window's) expected gradation in JSON.
#[derive(Serialize)]
pub struct JsonGradation {
    sieve_mm: Vec<f64>,
    passing: Vec<Option<f64>>,
    d10_mm: Option<f64>,
    d30_mm: Option<f64>,
    d50_mm: Option<f64>,
    d60_mm: Option<f64>,
    d90_mm: Option<f64>,
    cu: Option<f64>,
    cc: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    within_envelope: Option<Option<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope_fails: Option<Vec<f64>>,
}

impl From<PhotoGradation> for JsonGradation {
    fn from(g: PhotoGradation) -> Self {
        let s = g.summary;
        JsonGradation {
            sieve_mm: g.curve.sieve_mm,
            passing: g.curve.passing,
            d10_mm: s.d10,
            d30_mm: s.d30,
            d50_mm: s.d50,
            d60_mm: s.d60,
            d90_mm: s.d90,
            cu: s.cu,
            cc: s.cc,
            within_envelope: g.envelope.as_ref().map(|e| e.as_ref().map(Vec::is_empty)),
            envelope_fails: g.envelope.flatten(),
        }
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    gradation: Option<Box<JsonGradation>>,
    /// Median window novelty score (null without a fitted check) and its flag.
    ood_score: Option<f64>,
    flag: Option<&'static str>,
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
        h.extend(self.gradation_columns());
        h.extend(["ood_score", "flag"].map(String::from));
        h.push("digest".into());
        h.push("error".into());
        h
    }

    /// The gradation columns (none without curves in the map).
    pub fn gradation_columns(&self) -> Vec<String> {
        let Some(m) = self.map.as_ref().filter(|m| m.has_curves()) else {
            return Vec::new();
        };
        let mut h: Vec<String> = m
            .sieve_sizes()
            .iter()
            .map(|s| format!("passing_{s}mm"))
            .collect();
        h.extend(["d10_mm", "d30_mm", "d50_mm", "d60_mm", "d90_mm", "cu", "cc"].map(String::from));
        if m.envelope.is_some() {
            h.extend(["within_envelope", "envelope_fails"].map(String::from));
        }
        h
    }

    /// The gradation cells for class probabilities `probs` (none without curves).
    pub fn gradation_cells(&self, probs: &[f64]) -> Vec<String> {
        let mut f = Vec::new();
        if let Some(g) = self.map.as_ref().and_then(|m| m.gradation(probs)) {
            gradation_cells(&g, &mut f);
        }
        f
    }

    /// The gradation object for class probabilities `probs` (none without curves).
    pub fn gradation_json(&self, probs: &[f64]) -> Option<JsonGradation> {
        self.map
            .as_ref()
            .and_then(|m| m.gradation(probs))
            .map(JsonGradation::from)
    }

    pub fn csv_row(&self, row: &PhotoRow) -> String {
        let width = self.csv_columns().len();
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
                f.extend(self.gradation_cells(&v.mean));
                f.push(cell(s.novelty.map(|n| n.score)));
                f.push(s.novelty.map(|n| n.flag().to_string()).unwrap_or_default());
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
                let gradation = self.gradation_json(&v.mean).map(Box::new);
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
                    gradation,
                    ood_score: s.novelty.map(|n| n.score),
                    flag: s.novelty.map(|n| n.flag()),
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

/// 6 decimals, or empty when undefined.
fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// The gradation cells of a scored photo, in [`Layout::gradation_columns`] order.
fn gradation_cells(g: &PhotoGradation, f: &mut Vec<String>) {
    f.extend(g.curve.passing.iter().map(|p| cell(*p)));
    let s = &g.summary;
    f.extend([s.d10, s.d30, s.d50, s.d60, s.d90, s.cu, s.cc].map(cell));
    if let Some(e) = &g.envelope {
        match e {
            Some(fails) => {
                f.push(fails.is_empty().to_string());
                let sizes: Vec<String> = fails.iter().map(f64::to_string).collect();
                f.push(sizes.join(";"));
            }
            None => f.extend([String::new(), String::new()]),
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
                        curve: None,
                    },
                    ClassValue {
                        class: "coarse".into(),
                        compaction: 90.0,
                        label: None,
                        curve: None,
                    },
                ],
                envelope: None,
            }),
        }
    }

    /// `layout(true)` with sieve curves (fine 0.5/2 mm: 10/100 %, coarse 1/8 mm: 0/60 %) and an
    /// envelope at 1 and 8 mm.
    fn with_curves() -> Layout {
        use crate::gradation::{Curve, Envelope};
        let mut l = layout(true);
        let m = l.map.as_mut().unwrap();
        m.classes[0].curve = Some(Curve::new(vec![0.5, 2.0], vec![10.0, 100.0]).unwrap());
        m.classes[1].curve = Some(Curve::new(vec![1.0, 8.0], vec![0.0, 60.0]).unwrap());
        m.envelope =
            Some(Envelope::new(vec![1.0, 8.0], vec![10.0, 60.0], vec![20.0, 100.0]).unwrap());
        l
    }

    #[test]
    fn gradation_columns_by_hand() {
        let l = with_curves();
        let cols = l.csv_columns();
        let at = |name: &str| cols.iter().position(|c| c == name).unwrap();
        let row = crate::csv_text::parse_line(&l.csv_row(&scored())).unwrap();
        assert_eq!(row.len(), cols.len());
        // 0.25·fine + 0.75·coarse at 0.5, 1, 2, 8 mm: 2.5, 13.75, 40, 70 % (log-linear).
        for (c, v) in [
            ("passing_0.5mm", 2.5),
            ("passing_1mm", 13.75),
            ("passing_2mm", 40.0),
            ("passing_8mm", 70.0),
        ] {
            assert_eq!(row[at(c)], format!("{v:.6}"), "{c}");
        }
        // D10 between (0.5, 2.5) and (1, 13.75); D50 and D60 between (2, 40) and (8, 70).
        let d10 = 0.5 * 2f64.powf(7.5 / 11.25);
        let d60 = 2.0 * 4f64.powf(20.0 / 30.0);
        assert_eq!(row[at("d10_mm")], format!("{d10:.6}"));
        assert_eq!(
            row[at("d50_mm")],
            format!("{:.6}", 2.0 * 4f64.powf(1.0 / 3.0))
        );
        assert_eq!(row[at("d60_mm")], format!("{d60:.6}"));
        assert_eq!(row[at("cu")], format!("{:.6}", d60 / d10));
        // The curve stops at 70 %: no D90, no invented value.
        assert_eq!(row[at("d90_mm")], "");
        assert_eq!(row[at("within_envelope")], "true");
        assert_eq!(row[at("envelope_fails")], "");
        let json = l.jsonl_row(&scored());
        assert!(json.contains("\"d90_mm\":null"), "{json}");
        assert!(json.contains("\"within_envelope\":true"), "{json}");
        // A bad photo's row keeps the width.
        let bad_row = crate::csv_text::parse_line(&l.csv_row(&bad())).unwrap();
        assert_eq!(bad_row.len(), cols.len());
    }

    fn scored() -> PhotoRow {
        PhotoRow {
            photo: "site a/IMG 1.jpg".into(),
            outcome: Ok(Scored {
                width: 4896,
                height: 3264,
                digest: "d".repeat(64),
                novelty: None,
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
             votes_coarse,ood_score,flag,digest,error"
        );
        assert_eq!(
            l.csv_row(&scored()),
            format!(
                "site a/IMG 1.jpg,4896,3264,54,coarse,0.814815,0.250000,0.750000,10,44,,,{},",
                "d".repeat(64)
            )
        );
        assert_eq!(
            l.csv_row(&bad()),
            "\"x,y.jpg\",,,,,,,,,,,,,truncated JPEG data"
        );
        // A fitted novelty check fills its two cells.
        let mut flagged = scored();
        if let Ok(s) = &mut flagged.outcome {
            s.novelty = Some(Verdict {
                score: 2.5,
                unlike_training: true,
            });
        }
        assert!(
            l.csv_row(&flagged)
                .contains(",10,44,2.500000,unlike-training,dddd")
        );
        assert!(
            l.jsonl_row(&flagged)
                .contains("\"ood_score\":2.5,\"flag\":\"unlike-training\",\"digest\"")
        );
        let m = layout(true);
        assert!(m.csv_header().ends_with(
            ",votes_coarse,expected_compaction,top_class_compaction,unit,predicted_label,ood_score,\
             flag,digest,error"
        ));
        // 0.25·98 + 0.75·90 = 92; the top class (coarse) has no label.
        assert!(
            m.csv_row(&scored())
                .contains(",10,44,92.000000,90.000000,%,,,,dddd")
        );
        let fields = crate::csv_text::parse_line(&m.csv_row(&bad())).unwrap();
        assert_eq!(fields.len(), 18);
        assert_eq!(fields[17], "truncated JPEG data");
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
                 \"compaction\":{\"expected\":92.0,\"top_class\":90.0,\"unit\":\"%\"},\
                 \"ood_score\":null,\"flag\":null,\"digest\":"
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
