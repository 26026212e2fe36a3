//! The on-disk contracts every ballast stage shares.
//!
//! Stages talk only through files. This crate holds the shapes of those files (the tiler's
//! manifest and summary, the packer's cache index and tensor shards) and the rules every stage
//! follows when writing them: atomic replacement, content digests, deterministic randomness keyed
//! by content rather than by thread or order, and the `--shard I/N` job partition.

pub mod atomic;
pub mod cache_files;
pub mod checkpoint_record;
pub mod digest;
pub mod error;
pub mod job;
pub mod lock;
pub mod manifest;
pub mod parts;
pub mod regular;
pub mod relpath;
pub mod rng;
pub mod shard_file;
pub mod split;
pub mod tiler_files;

pub use error::{Classify, ErrorKind, FormatError};
pub use job::JobShard;
pub use split::Split;
