//! The trainer's errors are the model crate's: one enum from a flag to a weight file.

pub use ballast_model::error::{ModelError as TrainError, Result};
