//! ballast scorer: what a trained run is worth, and what it says about new photos.
//!
//! - [`eval`]: `scorer eval`: the run's best model on the cache's val split: accuracy,
//!   per-class precision/recall/F1, confusion matrix, per-photo accuracy, every mistake with its
//!   provenance ([`metrics`], [`aggregate`], [`confusion_svg`]).
//! - [`photos`]: `scorer photos`: field photos decoded and cut with the tiler's code
//!   ([`ballast_tiler::photo`], [`ballast_tiler::windows`]), preprocessed with the packer's
//!   ([`ballast_packer::preprocess`]), scored with the trainer's model
//!   ([`ballast_model::classifier::TrainedRun`]): one implementation, no train/serve skew
//!   ([`photo_scorer`], [`inputs`], [`output`], [`class_map`], [`watch`]).
//! - [`compat`]: whether a run and a cache (or photos) belong together.
//! - [`run_model`]: the run loaded with its model file read once (digest of the same bytes,
//!   finite weights); [`complete`]: whether a photo file is still being written.

pub mod aggregate;
pub mod calibration;
pub mod class_map;
pub mod compat;
pub mod complete;
pub mod confusion_svg;
pub mod csv_text;
pub mod error;
pub mod eval;
pub mod figures;
pub mod font;
pub mod gradation;
pub mod html;
pub mod inference;
pub mod inputs;
pub mod maps;
pub mod metrics;
pub mod novelty;
pub mod output;
pub mod photo_scorer;
pub mod photos;
pub mod report_page;
pub mod run_model;
pub mod trust;
pub mod watch;

pub use error::ScoreError;
