//! ballast synth: renders photos of densely packed grains (railway ballast / embankment fill
//! seen from above) whose particle-size distribution (gradation) is the class.
//!
//! The project's built-in demo data set, the source of the test fixtures and the benchmark data.
//! Output is an ImageFolder tree `OUT/<class>/<class>-NNNN.jpg` plus `OUT/synth.json` (what was
//! rendered) and `OUT/class-map.toml` (a synthetic compaction value per class for the scorer).
//!
//! Modules, from the bottom up: [`gradation`] (the classes' size distributions), [`texture`]
//! (stone surface noise), [`shape`] (grain outlines), [`canvas`] (front-to-back grain painting),
//! [`photo`] (one photo: look, grains, fines, camera), [`encode`] (file formats), [`summary`]
//! (synth.json, class-map.toml) and [`run`] (the whole data set, in parallel, up to date).

pub mod canvas;
pub mod encode;
pub mod error;
pub mod gradation;
pub mod photo;
pub mod run;
pub mod shape;
pub mod summary;
pub mod texture;

pub use encode::PhotoFormat;
pub use error::SynthError;
pub use run::{Options, Outcome, run};
