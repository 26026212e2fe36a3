//! ballast packer: turns the tiler's tiles into a reproducible tensor cache.
//!
//! Each tile becomes a `size`×`size` u8 gray sample (BT.601 luma as Pillow, Pillow's
//! antialiased bilinear downsample, and for train tiles seeded brightness/contrast jitter with
//! torchvision `ColorJitter` semantics), stored in safetensors shards with an `index.json` that
//! later stages trust. See [`preprocess`] for the per-sample functions the scorer reuses,
//! [`plan`] for shard assignment and up-to-date rules, [`pack`] for the run and how sharded
//! jobs finish, and [`verify`] for checking a cache against its index.

pub mod build;
pub mod cut;
pub mod error;
pub mod finish;
pub mod pack;
pub mod plan;
pub mod preprocess;
mod resample;
pub mod reuse;
pub mod tile_png;
pub mod verify;

pub use error::PackError;
pub use pack::{Finish, PackOptions, PackReport, pack};
pub use plan::Settings;
