//! A tiler run's settings, independent of how they were parsed.

use std::path::PathBuf;

use ballast_format::JobShard;
use ballast_format::tiler_files::{SplitRule, TileFiles, TilerParams, WindowMode};

use crate::encode::PngCompression;
use crate::photo::DEFAULT_MAX_PIXELS;

/// Default tile side in photo pixels.
pub const DEFAULT_SIZE: u32 = 500;
/// Default share of photos (not tiles) in the val split.
pub const DEFAULT_VAL_FRACTION: f64 = 0.2;
/// Default number of bad inputs tolerated before a run fails.
pub const DEFAULT_MAX_BAD: u64 = 10;

#[derive(Clone, Debug)]
pub struct Config {
    pub input: PathBuf,
    pub out: PathBuf,
    pub size: u32,
    pub windows: WindowMode,
    pub val_fraction: f64,
    /// Seeds random window positions.
    pub seed: u64,
    /// Seeds the train/val split (kept apart from `seed`, so new windows keep the split).
    pub split_seed: u64,
    /// How photos are assigned to train and val (see [`crate::stratify`]).
    pub split: SplitRule,
    pub png_compression: PngCompression,
    /// PNG tile files, or window references only (the packer then cuts from the photos).
    pub tile_files: TileFiles,
    /// Photos declaring more pixels are refused as decompression bombs.
    pub max_pixels: u64,
    pub shard: JobShard,
    /// More bad inputs than this fail the run (exit 1) without committing its output.
    pub max_bad: u64,
    /// Redo every photo, trusting nothing from earlier runs.
    pub force: bool,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Benchmark aid: read, hash and decode this job's photos, write nothing.
    pub decode_only: bool,
}

impl Config {
    /// A configuration with the documented defaults (grid windows with stride = size).
    pub fn new(input: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Config {
        Config {
            input: input.into(),
            out: out.into(),
            size: DEFAULT_SIZE,
            windows: WindowMode::Grid {
                stride: DEFAULT_SIZE,
            },
            val_fraction: DEFAULT_VAL_FRACTION,
            seed: 0,
            split_seed: 0,
            split: SplitRule::Stratified,
            png_compression: PngCompression::Fast,
            tile_files: TileFiles::Png,
            max_pixels: DEFAULT_MAX_PIXELS,
            shard: JobShard::WHOLE,
            max_bad: DEFAULT_MAX_BAD,
            force: false,
            quiet: false,
            decode_only: false,
        }
    }

    /// The parameters that determine the output (recorded in tiler.json).
    pub fn params(&self) -> TilerParams {
        TilerParams {
            size: self.size,
            windows: self.windows.clone(),
            val_fraction: self.val_fraction,
            seed: self.seed,
            split_seed: self.split_seed,
            split: self.split,
            png_compression: self.png_compression.as_str().to_string(),
            max_pixels: self.max_pixels,
            tile_files: self.tile_files,
        }
    }

    /// Checks values the command line cannot (for library callers too).
    pub fn validate(&self) -> Result<(), String> {
        if self.size == 0 {
            return Err("--size must be at least 1".into());
        }
        match self.windows {
            WindowMode::Grid { stride: 0 } => return Err("--stride must be at least 1".into()),
            WindowMode::Random { per_photo: 0 } => {
                return Err("--per-photo must be at least 1".into());
            }
            _ => {}
        }
        if !(0.0..=1.0).contains(&self.val_fraction) {
            return Err(format!(
                "--val-fraction {} is outside 0..=1",
                self.val_fraction
            ));
        }
        if self.split == SplitRule::PathHash {
            return Err(
                "the path-hash split of earlier versions can no longer be chosen; use the \
                 stratified or the content-hash split"
                    .into(),
            );
        }
        if self.max_pixels == 0 {
            return Err("--max-pixels must be at least 1".into());
        }
        Ok(())
    }
}

/// Parses a pixel count: `250000000`, `250M`, `250MP`, `1.5G`, `800k`.
pub fn parse_pixels(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix('P').unwrap_or(&upper);
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1e3),
        Some('M') => (&body[..body.len() - 1], 1e6),
        Some('G') => (&body[..body.len() - 1], 1e9),
        _ => (body, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a pixel count (e.g. 250M or 250000000)"))?;
    if !v.is_finite() || v < 1.0 || v * mult > u64::MAX as f64 {
        return Err(format!("{s:?} is not a positive pixel count"));
    }
    Ok((v * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_counts() {
        assert_eq!(parse_pixels("250M").unwrap(), 250_000_000);
        assert_eq!(parse_pixels("250mp").unwrap(), 250_000_000);
        assert_eq!(parse_pixels("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_pixels("800k").unwrap(), 800_000);
        assert_eq!(parse_pixels("1000").unwrap(), 1000);
        assert!(parse_pixels("lots").is_err());
        assert!(parse_pixels("0").is_err());
    }

    #[test]
    fn defaults_validate() {
        let c = Config::new("in", "out");
        assert!(c.validate().is_ok());
        assert_eq!(c.params().windows, WindowMode::Grid { stride: 500 });
        assert_eq!(c.params().split, SplitRule::Stratified);
        let mut bad = c.clone();
        bad.val_fraction = 1.5;
        assert!(bad.validate().is_err());
        let mut old = c.clone();
        old.split = SplitRule::PathHash;
        assert!(old.validate().is_err());
    }
}
