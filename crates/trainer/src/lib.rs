//! ballast's trainer: the texture CNN in candle, with the whole tensor cache resident on the
//! device. What inference needs too (spec, model, weight files, cache and normaliser, device)
//! lives in `ballast_model` and is re-exported here under the same module names.
//!
//! - [`optim`]: SGD with momentum and AdamW, PyTorch semantics.
//! - [`train`]: the loop and the run folder's life cycle (new, up to date, resume, force).
//! - [`curves`], [`notes`]: what a run folder holds beyond the model crate's records.
//! - [`runs_table`]: `trainer runs DIR`.
//! - [`sweep`]: `trainer sweep`, one run per setting.
//! - [`synthetic`]: a synthetic cache for tests, benchmarks and the GPU check.

pub use ballast_model::{
    checkpoint, classifier, data, device, model, run_files, runtime, spec, tensor_file,
};

pub mod args;
pub mod curves;
pub mod error;
pub mod notes;
pub mod optim;
pub mod preflight;
pub mod runs_table;
pub mod sweep;
pub mod synthetic;
pub mod tally;
pub mod train;

pub use error::TrainError;
