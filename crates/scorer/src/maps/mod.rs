//! Per-photo pictures for `scorer photos --maps`: a PNG map of where the model saw which class,
//! and an SVG of the photo's expected sieve curve among the class curves and the envelope.
//!
//! - [`downscale`]: [`thumbnail`], an antialiased (area-averaged) colour copy of the photo,
//!   small enough to encode in milliseconds.
//! - [`map_png`]: [`render_map`], the thumbnail tinted per window by its most likely class,
//!   the tint stronger the more confident the model, with a legend drawn with the embedded
//!   [`crate::font`] (no system fonts); [`png_bytes`] encodes it.
//! - [`sieve_chart`]: [`curve_svg`], a self-contained SVG sieve chart (log size axis),
//!   written by hand so the text is deterministic.
//! - [`class_colour`]: the palette both share (and the HTML report can use).

pub mod downscale;
pub mod map_png;
pub mod sieve_chart;

pub use downscale::{Thumbnail, thumbnail};
pub use map_png::{MapInput, png_bytes, render_map};
pub use sieve_chart::{CurveChart, curve_svg};

/// Why a map could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error(
        "{probs} class probabilities for {windows} windows × {classes} classes \
         (expected {expected})"
    )]
    Shape {
        probs: usize,
        windows: usize,
        classes: usize,
        expected: usize,
    },
    #[error("thumbnail scale {0} is not a positive number")]
    Scale(f64),
}

/// The palette: Okabe–Ito without black (black is the expected curve), ordered so the first
/// few classes differ most.
const PALETTE: [[u8; 3]; 7] = [
    [0x00, 0x72, 0xB2], // blue
    [0xE6, 0x9F, 0x00], // orange
    [0x00, 0x9E, 0x73], // bluish green
    [0xD5, 0x5E, 0x00], // vermillion
    [0x56, 0xB4, 0xE9], // sky blue
    [0xCC, 0x79, 0xA7], // reddish purple
    [0xF0, 0xE4, 0x42], // yellow
];

/// Colour of class `i`: the colour-blind-friendly Okabe–Ito palette; beyond its 7 colours the
/// palette repeats darker, then lighter (21 distinct colours), then cycles.
pub fn class_colour(i: usize) -> [u8; 3] {
    let base = PALETTE[i % PALETTE.len()];
    match (i / PALETTE.len()) % 3 {
        0 => base,
        1 => base.map(|v| (u32::from(v) * 55 / 100) as u8),
        _ => base.map(|v| (u32::from(v) + (255 - u32::from(v)) * 45 / 100) as u8),
    }
}

/// Helpers the submodules' tests share.
#[cfg(test)]
pub(crate) mod test_util {
    /// Owned class names.
    pub(crate) fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_is_fixed_and_distinct_for_21_classes() {
        assert_eq!(class_colour(0), [0x00, 0x72, 0xB2]);
        let all: Vec<[u8; 3]> = (0..21).map(class_colour).collect();
        for i in 0..21 {
            for j in 0..i {
                assert_ne!(all[i], all[j], "{i} vs {j}");
            }
        }
        assert_eq!(class_colour(21), class_colour(0));
    }
}
