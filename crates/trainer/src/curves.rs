//! curves.svg: loss and accuracy per epoch, train and val, side by side.

use std::path::Path;

use plotters::prelude::*;

use crate::checkpoint::EpochScores;
use crate::error::{Result, TrainError};

/// Renders the curves as SVG text.
pub fn render(history: &[EpochScores], title: &str) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        draw(&root, history, title)
            .map_err(|e| TrainError::config(format!("plotting failed: {e}")))?;
        root.present()
            .map_err(|e| TrainError::config(format!("plotting failed: {e}")))?;
    }
    Ok(svg)
}

/// Writes curves.svg atomically.
pub fn write(path: &Path, history: &[EpochScores], title: &str) -> Result<()> {
    let svg = render(history, title)?;
    crate::run_files::write_if_changed(path, svg.as_bytes())
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error + 'static>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    history: &[EpochScores],
    title: &str,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(480);
    let last = history.last().map(|h| h.epoch).unwrap_or(1).max(2) as f64;
    let max_loss = history
        .iter()
        .flat_map(|h| [finite(h.train_loss), finite(h.val_loss)])
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    draw_panel(&left, "loss", max_loss, last, history, |h| {
        (h.train_loss, h.val_loss)
    })?;
    draw_panel(&right, "accuracy", 1.0, last, history, |h| {
        (h.train_acc, h.val_acc)
    })?;
    Ok(())
}

/// One chart: train and val curves of the value `pick` returns, over epochs 1..=last.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    ymax: f64,
    last: f64,
    history: &[EpochScores],
    pick: fn(&EpochScores) -> (f64, f64),
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(name, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(1.0f64..last, 0.0f64..ymax)?;
    chart.configure_mesh().x_desc("epoch").y_desc(name).draw()?;
    for (label, color, which) in [("train", BLUE, 0usize), ("val", RED, 1usize)] {
        let pts: Vec<(f64, f64)> = history
            .iter()
            .map(|h| {
                let (t, v) = pick(h);
                (h.epoch as f64, finite(if which == 0 { t } else { v }))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_panels() {
        let h: Vec<EpochScores> = (1..=3)
            .map(|e| EpochScores {
                epoch: e,
                train_loss: 1.0 / e as f64,
                train_acc: 0.3 * e as f64,
                val_loss: 1.2 / e as f64,
                val_acc: 0.25 * e as f64,
                lr: 0.01,
            })
            .collect();
        let svg = render(&h, "run").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("accuracy") && svg.contains("loss"));
        assert_eq!(svg, render(&h, "run").unwrap());
        // One epoch and a NaN still render.
        let mut one = h[..1].to_vec();
        one[0].val_loss = f64::NAN;
        assert!(render(&one, "x").is_ok());
    }
}
