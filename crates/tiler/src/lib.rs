//! ballast tiler: cuts square tiles from an ImageFolder tree of photos, splitting train/val by
//! photo, and writes them as lossless PNG with a JSONL manifest and a tiler.json summary.
//!
//! The modules the scorer reuses, so that field photos are read and cut exactly as training
//! photos were ("one implementation, no skew"):
//! * [`photo`]: decode a file (JPEG, PNG, TIFF) with EXIF orientation and limits applied;
//! * [`windows`]: where windows go (`grid`, `random`);
//! * [`scan`]: list an ImageFolder tree.
//!
//! [`run::run`] is one tiler job; the binary `tiler` is a thin command line around it.

pub mod commit;
pub mod config;
pub mod encode;
pub mod error;
pub mod jpeg_check;
pub mod naming;
pub mod photo;
pub mod prepass;
pub mod run;
pub mod scan;
pub mod schedule;
pub mod state;
pub mod stratify;
pub mod windows;

pub use config::Config;
pub use error::TilerError;
pub use run::{RunOutcome, run};
