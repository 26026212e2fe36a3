//! `scorer photos --html FILE`: the batch's rows and pictures as one page ([`crate::html`]).
//! The table shows the columns an engineer reads first, cut from [`Layout::csv_row`] (one
//! formatting for both), decimals shortened to 2 places for reading.

use crate::csv_text;
use crate::figures::Figures;
use crate::html::{self, Page, PagePhoto};
use crate::output::PhotoRow;
use crate::photos::{PhotosOptions, Session};

/// The CSV columns the page's table shows, in this order, when the layout has them.
const SHOWN: &[&str] = &[
    "photo",
    "predicted",
    "agreement",
    "ood_score",
    "expected_compaction",
    "d10_mm",
    "d50_mm",
    "d60_mm",
    "d90_mm",
    "cu",
    "cc",
    "within_envelope",
    "envelope_fails",
];

/// The page for `rows` (each with its pictures).
pub fn render(
    session: &Session,
    o: &PhotosOptions,
    rows: &[(PhotoRow, Option<Figures>)],
) -> String {
    let layout = &session.layout;
    let all = layout.csv_columns();
    let picks: Vec<usize> = SHOWN
        .iter()
        .filter_map(|c| all.iter().position(|a| a == c))
        .collect();
    let columns: Vec<String> = picks.iter().map(|&i| all[i].clone()).collect();
    let photos: Vec<PagePhoto> = rows
        .iter()
        .map(|(row, figures)| {
            let fields = csv_text::parse_line(&layout.csv_row(row)).unwrap_or_default();
            let cell = |i: usize| fields.get(i).cloned().unwrap_or_default();
            let scored = row.outcome.as_ref().ok();
            PagePhoto {
                name: row.photo.clone(),
                cells: picks.iter().map(|&i| readable(&cell(i))).collect(),
                flag: scored.and_then(|s| s.novelty).map(|n| n.flag().to_string()),
                predicted: scored.map(|s| layout.classes[s.verdict.predicted].clone()),
                map_image: figures.as_ref().and_then(|f| f.map_jpeg.clone()),
                curve_svg: figures.as_ref().and_then(|f| f.curve_svg.clone()),
                error: row.outcome.as_ref().err().map(|b| b.reason.clone()),
            }
        })
        .collect();
    let run = session.run_info(&o.run);
    let mut notes = vec![format!(
        "{} px windows every {} px, {}×{} samples; classes: {}",
        session.geometry.tile,
        session.geometry.stride,
        session.geometry.sample,
        session.geometry.sample,
        layout.classes.join(", ")
    )];
    match &session.trust {
        Some(t) => {
            let c = &t.calibration;
            notes.push(format!(
                "Probabilities calibrated by temperature scaling (T = {:.3}; expected calibration \
                 error on val {:.3} → {:.3}).",
                c.temperature, c.ece_before, c.ece_after
            ));
            notes.push(match &t.novelty {
                Some(_) => "flag: unlike-training when the median of a photo's window \
                            distances to the training data exceeds the 99th percentile of val \
                            windows (ood_score > 1)."
                    .to_string(),
                None => format!(
                    "No novelty check ({}).",
                    t.novelty_note.as_deref().unwrap_or("not fitted")
                ),
            });
        }
        None => notes.push(
            "Uncalibrated probabilities and no novelty check: run `scorer eval` on this run \
             first."
                .into(),
        ),
    }
    let run_text = format!(
        "{} (identity {}, epoch {}, model {})",
        run.dir,
        short(&run.identity),
        run.epoch,
        short(&run.model_digest)
    );
    let generated_by = format!("ballast scorer {}", env!("CARGO_PKG_VERSION"));
    html::render(&Page {
        title: "ballast: field photo report",
        run: &run_text,
        generated_by: &generated_by,
        columns: &columns,
        photos: &photos,
        notes: &notes,
    })
}

/// A decimal cell to 2 decimals for reading (the CSV keeps 6); anything else as it is.
fn readable(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(v) if cell.contains('.') && v.is_finite() => format!("{v:.2}"),
        _ => cell.to_string(),
    }
}

fn short(d: &str) -> &str {
    d.get(..12).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn decimals_are_shortened_and_the_rest_kept() {
        assert_eq!(readable("12.392406"), "12.39");
        assert_eq!(readable("54"), "54");
        assert_eq!(readable("g1-fine"), "g1-fine");
        assert_eq!(readable(""), "");
        assert_eq!(readable("1.5;3.75"), "1.5;3.75");
    }
}
