//! One field photo through the model, with the other stages' own code at every step:
//!
//! 1. read and decode with [`ballast_tiler::photo`] (format sniffing, pixel limit, truncation
//!    check, EXIF orientation) — the tiler's decoder;
//! 2. windows from [`ballast_tiler::windows::grid`] — the tiler's geometry;
//! 3. each window through [`ballast_packer::preprocess::Preprocessor`] (BT.601 luma, Pillow's
//!    antialiased bilinear downsample, no jitter) — the packer's preprocessing, in parallel;
//! 4. one upload of the photo's u8 samples to the model's device, then the trainer's
//!    normalisation and model ([`crate::inference`]), `--batch` samples at a time.
//!
//! So a window of a photo gives exactly the sample the packer stores for the same window cut by
//! the tiler, and the same probabilities (the no-skew guarantee, tested end to end).

use std::path::Path;
use std::time::{Duration, Instant};

use ballast_model::classifier::TrainedRun;
use ballast_packer::preprocess::{Pixels as Window, Preprocessor};
use ballast_tiler::photo::{self, Pixels};
use ballast_tiler::windows;
use candle_core::Tensor;
use rayon::prelude::*;

use crate::aggregate::{TileScores, verdict_all};
use crate::error::{Result, ScoreError};
use crate::inference::{self, Scoring};
use crate::maps::{self, Thumbnail};
use crate::novelty;
use crate::output::{Bad, Scored};
use crate::trust::Trust;

/// Where windows are cut and how big samples are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Window side in photo pixels (the tiler's `--size`).
    pub tile: u32,
    /// Grid step in photo pixels (the tiler's `--stride`; `tile` for a non-overlapping grid).
    pub stride: u32,
    /// Sample side fed to the model (the packer's `--size`).
    pub sample: u32,
}

/// A photo scored: its size, digest, windows and per-tile results.
#[derive(Clone, Debug)]
pub struct PhotoScores {
    pub scored: Scored,
    /// Top-left corners of the windows, in the order of `tiles`.
    pub windows: Vec<(u32, u32)>,
    pub tiles: TileScores,
    /// Each window's novelty score (distance to training / threshold), with a fitted check.
    pub novelty: Option<Vec<f64>>,
    /// A downscaled copy of the photo, when maps were asked for.
    pub thumb: Option<Thumbnail>,
}

/// Scores photos with one run.
pub struct PhotoScorer<'a> {
    run: &'a TrainedRun,
    geometry: Geometry,
    max_pixels: u64,
    batch: usize,
    pre: Preprocessor,
    trust: Option<&'a Trust>,
    thumb_side: Option<u32>,
}

impl<'a> PhotoScorer<'a> {
    pub fn new(
        run: &'a TrainedRun,
        geometry: Geometry,
        max_pixels: u64,
        batch: usize,
    ) -> Result<Self> {
        if geometry.tile == 0 || geometry.stride == 0 {
            return Err(ScoreError::usage(
                "--tile-size and --stride must be at least 1",
            ));
        }
        if batch == 0 {
            return Err(ScoreError::usage("--batch must be at least 1"));
        }
        if max_pixels == 0 {
            return Err(ScoreError::usage("--max-pixels must be at least 1"));
        }
        Ok(PhotoScorer {
            run,
            geometry,
            max_pixels,
            batch,
            pre: Preprocessor::new(geometry.sample)?,
            trust: None,
            thumb_side: None,
        })
    }

    /// Also keep a copy of each photo downscaled to at most `side` px (for its map).
    pub fn with_thumbnails(mut self, side: Option<u32>) -> Self {
        self.thumb_side = side;
        self
    }

    /// Calibrated probabilities and the novelty check from `scorer eval`'s fit.
    pub fn with_trust(mut self, trust: Option<&'a Trust>) -> Self {
        self.trust = trust;
        self
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Reads and scores the photo at `path`. The outer error is fatal (the model failed); the
    /// inner one says why this photo cannot be scored.
    pub fn score_file(&self, path: &Path) -> Result<std::result::Result<PhotoScores, Bad>> {
        match photo::read(path) {
            Ok(bytes) => self.score_bytes(&bytes),
            Err(e) => Ok(Err(Bad {
                reason: e.to_string(),
                digest: None,
            })),
        }
    }

    /// Scores a photo file's bytes.
    pub fn score_bytes(&self, bytes: &[u8]) -> Result<std::result::Result<PhotoScores, Bad>> {
        let t0 = Instant::now();
        let digest = ballast_format::digest::of_bytes(bytes);
        let bad = |reason: String| {
            Ok(Err(Bad {
                reason,
                digest: Some(digest.clone()),
            }))
        };
        let pixels = match photo::decode(bytes, self.max_pixels) {
            Ok(d) => d.pixels,
            Err(e) => return bad(e.to_string()),
        };
        let t_decode = t0.elapsed();
        let (w, h) = (pixels.width(), pixels.height());
        let g = self.geometry;
        let windows = windows::grid(w, h, g.tile, g.stride);
        if windows.is_empty() {
            return bad(format!("{w}×{h} is smaller than the {} px tile", g.tile));
        }
        let t1 = Instant::now();
        let samples = self.samples(&pixels, &windows)?;
        let thumb = self.thumb_side.map(|side| maps::thumbnail(&pixels, side));
        drop(pixels);
        let t_pre = t1.elapsed();
        let t2 = Instant::now();
        let s = g.sample as usize;
        let n = windows.len();
        // One upload per photo; batches are views of it on the device.
        let images = Tensor::from_vec(samples, (n, 1, s, s), self.run.model.device())?;
        let novelty = self.trust.and_then(|t| t.novelty.as_ref());
        let how = Scoring {
            temperature: self.trust.map_or(1.0, |t| t.calibration.temperature),
            features: novelty.is_some(),
        };
        let mut tiles = inference::score(self.run, &images, self.batch, how, |_| {})?;
        let verdict = verdict_all(&tiles);
        let ratios = novelty.map(|m| m.ratios(&tiles.features));
        // The features are only needed for the ratios.
        tiles.features = Vec::new();
        tracing::debug!(
            "{w}x{h}: hash+decode {:.0} ms, {} windows preprocessed in {:.0} ms, model {:.0} ms",
            ms(t_decode),
            windows.len(),
            ms(t_pre),
            ms(t2.elapsed())
        );
        Ok(Ok(PhotoScores {
            scored: Scored {
                width: w,
                height: h,
                digest,
                verdict,
                novelty: ratios.as_deref().and_then(novelty::verdict),
            },
            windows,
            tiles,
            novelty: ratios,
            thumb,
        }))
    }

    /// The unjittered u8 sample of every window, in window order, made in parallel.
    pub fn samples(&self, pixels: &Pixels, windows: &[(u32, u32)]) -> Result<Vec<u8>> {
        let full = Window::new(
            pixels.as_raw(),
            pixels.width(),
            pixels.height(),
            pixels.channels() as u8,
        )?;
        let t = self.geometry.tile;
        let ss = (self.geometry.sample as usize).pow(2);
        let mut out = vec![0u8; windows.len() * ss];
        out.par_chunks_mut(ss)
            .zip(windows.par_iter())
            .try_for_each_init(
                || self.pre.clone(),
                |pre, (chunk, &(x, y))| {
                    let win = full.window(x, y, t, t)?;
                    pre.sample_into(&win, chunk);
                    Ok::<(), ScoreError>(())
                },
            )?;
        Ok(out)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
