//! The train/val split, decided per photo from a stable hash of its content (the BLAKE3 digest
//! of the photo file): [`Split::unit`].
//!
//! Under the content-hash rule ([`Split::of_content`]) a photo's split depends only on its own
//! bytes, the split seed and the val fraction, so adding or removing other photos never moves
//! it. The tiler's stratified rule ranks each class's photos by the same [`Split::unit`]
//! instead. Either way no photo can feed both splits, and byte-identical copies of a photo
//! (under other names, or in other class folders) always share one split: a path-based rule
//! would send copies to both sides, the leak these rules exist to prevent.

use serde::{Deserialize, Serialize};

use crate::digest::KeyHasher;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub const ALL: [Split; 2] = [Split::Train, Split::Val];

    pub fn as_str(&self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }

    /// The split of the photo whose content digest (64 hex digits) is `digest`.
    pub fn of_content(digest: &str, val_fraction: f64, split_seed: u64) -> Split {
        if Self::unit(digest, split_seed) < val_fraction {
            Split::Val
        } else {
            Split::Train
        }
    }

    /// The photo's position in [0, 1): under the content-hash rule photos below the val
    /// fraction go to val; the stratified rule ranks a class's photos by it.
    pub fn unit(digest: &str, split_seed: u64) -> f64 {
        let h = KeyHasher::new("ballast.split.content.v1")
            .u64(split_seed)
            .str(digest)
            .finish_u64();
        (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "val" => Ok(Split::Val),
            _ => Err(format!("unknown split {s:?} (expected train or val)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> String {
        crate::digest::of_bytes(format!("photo {i}").as_bytes())
    }

    #[test]
    fn adding_photos_never_moves_old_ones() {
        let before: Vec<Split> = (0..200)
            .map(|i| Split::of_content(&digest(i), 0.2, 0))
            .collect();
        // A photo's split is a function of its own digest: a larger set around it is irrelevant.
        let after: Vec<Split> = (0..400)
            .map(|i| Split::of_content(&digest(i), 0.2, 0))
            .take(200)
            .collect();
        assert_eq!(before, after);
        let val = before.iter().filter(|s| **s == Split::Val).count();
        assert!((20..=60).contains(&val), "val fraction far off: {val}/200");
    }

    #[test]
    fn fraction_extremes_and_seed() {
        let d = digest(7);
        assert_eq!(Split::of_content(&d, 0.0, 0), Split::Train);
        assert_eq!(Split::of_content(&d, 1.0, 0), Split::Val);
        let moved = (0..100)
            .filter(|&i| {
                Split::of_content(&digest(i), 0.5, 0) != Split::of_content(&digest(i), 0.5, 1)
            })
            .count();
        assert!(moved > 20, "split seed has no effect");
    }
}
