//! ballast's trainer: the texture CNN in candle, with the whole tensor cache resident on the
//! device.
//!
//! - [`spec`]: what a run is (model, optimiser, schedule) and the checks made before training.
//! - [`model`]: the network, which ends in [`model::Logits`]; the loss takes logits only.
//! - [`data`]: the cache on the device, batches gathered there, host→device byte counts.
//! - [`optim`]: SGD with momentum and AdamW, PyTorch semantics.
//! - [`train`]: the loop and the run folder's life cycle (new, up to date, resume, force).
//! - [`checkpoint`], [`run_files`], [`curves`], [`notes`]: what a run folder holds.
//! - [`classifier`]: a finished run loaded for scoring.
//! - [`runs_table`]: `trainer runs DIR`.
//! - [`sweep`]: `trainer sweep`, one run per setting.
//! - [`synthetic`]: a synthetic cache for tests, benchmarks and the GPU check.

pub mod args;
pub mod checkpoint;
pub mod classifier;
pub mod curves;
pub mod data;
pub mod device;
pub mod error;
pub mod model;
pub mod notes;
pub mod optim;
pub mod preflight;
pub mod run_files;
pub mod runs_table;
pub mod runtime;
pub mod spec;
pub mod sweep;
pub mod synthetic;
pub mod tensor_file;
pub mod train;

pub use error::TrainError;
