//! What inference needs, in one place for the trainer and the scorer (no train/serve skew): what
//! a run is, the network, its weight files, the cache on the device with its normaliser, and the
//! device. The trainer adds the optimiser, the loop and the run folder's life cycle.
//!
//! - [`spec`]: what a run is (model, optimiser, schedule) and the checks made before training.
//! - [`model`]: the network, which ends in [`model::Logits`]; the loss takes logits only.
//! - [`data`]: the cache on the device, batches gathered there, host→device byte counts.
//! - [`checkpoint`], [`tensor_file`], [`run_files`]: weight files and the run folder's records.
//! - [`classifier`]: a finished run loaded for scoring.
//! - [`device`], [`runtime`]: the device and the thread pools.

pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod device;
pub mod error;
pub mod model;
pub mod run_files;
pub mod runtime;
pub mod spec;
pub mod tensor_file;

pub use error::ModelError;
