//! What ballast's test suites share: running the real stage binaries with a clean
//! environment and checking how they end ([`process`]), photos and damaged image files made
//! in the test ([`images`]), and snapshots and comparisons of output trees ([`trees`]), signals to catch a
//! running stage mid-write ([`signals`]), pages loaded in a real headless Chromium ([`browser`]).
//! A dev-dependency only: nothing here ships in a stage binary.

pub mod browser;
pub mod images;
pub mod process;
pub mod signals;
pub mod trees;

pub use process::{clean, code, fails, ok, run, stderr, stdout};
pub use trees::{assert_same_tree, mtimes, read_json, shift_mtime, tree};
