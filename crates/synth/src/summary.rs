//! synth's output files: `synth.json` (what was rendered, for people and for the up-to-date
//! check) and `class-map.toml` (the scorer's compaction value per class).

use serde::{Deserialize, Serialize};

use crate::encode::PhotoFormat;
use crate::gradation::{Gradation, MM_PER_REFERENCE_PX, SievePoint};

/// The `format` tag of synth.json.
pub const FORMAT_TAG: &str = "ballast.synth/1";
/// Bumped whenever the renderer's output for the same parameters changes, so old photos are
/// re-rendered rather than trusted.
pub const RENDERER_VERSION: u64 = 1;

pub const SUMMARY_FILE: &str = "synth.json";
pub const CLASS_MAP_FILE: &str = "class-map.toml";

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub format: String,
    pub renderer: u64,
    pub params: Params,
    pub classes: Vec<ClassInfo>,
    pub photos: Vec<PhotoRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Params {
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    pub classes: usize,
    pub per_class: u32,
    pub format: PhotoFormat,
    /// JPEG quality (absent for lossless formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// Gradation sizes are pixels at this photo size...
    pub reference_width: u32,
    pub reference_height: u32,
    /// ...and are multiplied by this for the photos written.
    pub scale: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassInfo {
    pub name: String,
    pub label: String,
    /// Synthetic compaction, % of max dry density (also in class-map.toml).
    pub compaction: f64,
    pub gradation: GradationInfo,
}

#[derive(Clone, Debug, Serialize)]
pub struct GradationInfo {
    /// `P(d) = (d^n − d_min^n) / (d_max^n − d_min^n)`, mass fraction passing.
    pub curve: String,
    /// Reference-size pixels.
    pub d_min_px: f64,
    pub d_max_px: f64,
    pub exponent: f64,
    /// Pixels in the photos written (reference × scale).
    pub d_min_px_rendered: f64,
    pub d_max_px_rendered: f64,
    /// (size in reference pixels, mass fraction passing), smallest first.
    pub sieve: Vec<SievePoint>,
}

impl ClassInfo {
    pub fn new(g: &Gradation, scale: f64) -> Self {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        ClassInfo {
            name: g.name.clone(),
            label: g.label.clone(),
            compaction: g.compaction,
            gradation: GradationInfo {
                curve: "modified-fuller".into(),
                d_min_px: g.d_min,
                d_max_px: g.d_max,
                exponent: g.exponent,
                d_min_px_rendered: r(g.d_min * scale),
                d_max_px_rendered: r(g.d_max * scale),
                sieve: g.sieve_curve(),
            },
        }
    }
}

/// One photo written (or found up to date).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRecord {
    /// Path relative to the output folder, `/`-separated.
    pub file: String,
    pub class: String,
    pub index: u32,
    /// Digest of everything that determines the photo's bytes.
    pub key: String,
    pub bytes: u64,
    /// BLAKE3 of the file.
    pub digest: String,
}

/// What an earlier run left in synth.json (only what the up-to-date check needs).
#[derive(Debug, Deserialize)]
pub struct Previous {
    pub format: String,
    pub photos: Vec<PhotoRecord>,
}

/// The class map, in the format the scorer parses.
pub fn class_map_toml(gradations: &[Gradation]) -> String {
    let mut s = String::from(
        "# ballast class map: compaction value per class\n\
         # Written by synth. These compaction values are SYNTHETIC (invented for the demo data\n\
         # set): they fall as the gradation moves away from the densest Fuller curve and loses\n\
         # fines. The gradations are described in synth.json. Sieve curves: mass percent\n\
         # passing at sieve sizes in mm, at the stated scale of 0.5 mm per pixel of a\n\
         # 4896x3264 photo (the rendered grains follow these curves).\n\
         unit = \"% of max dry density\"\n",
    );
    for g in gradations {
        let curve = g.sieve_curve();
        let mm: Vec<String> = curve
            .iter()
            .map(|p| format!("{:?}", round3(p.size * MM_PER_REFERENCE_PX)))
            .collect();
        let passing: Vec<String> = curve
            .iter()
            .map(|p| format!("{:?}", round3(p.passing * 100.0)))
            .collect();
        s.push_str(&format!(
            "\n[classes.{}]\ncompaction = {:?}\nlabel = {}\nsieve_mm = [{}]\npassing = [{}]\n",
            g.name,
            g.compaction,
            toml_string(&g.label),
            mm.join(", "),
            passing.join(", ")
        ));
    }
    s
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradation::{defaults, for_classes};

    #[test]
    fn class_map_has_the_agreed_shape() {
        let text = class_map_toml(&defaults());
        assert!(text.starts_with("# ballast class map: compaction value per class\n"));
        assert!(text.contains("\nunit = \"% of max dry density\"\n"));
        assert!(text.contains("\n[classes.g1-fine]\ncompaction = 97.5\nlabel = \"fine, well graded (Fuller n = 0.45)\"\n"));
        assert!(text.contains("\n[classes.g5-coarse]\ncompaction = 90.0\n"));
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
        // Interpolated labels carry non-ASCII; still one block per class.
        let many = class_map_toml(&for_classes(12).unwrap());
        assert_eq!(many.matches("[classes.").count(), 12);
    }
}
