//! The digest pre-pass of the stratified split: a class's k val photos can only be chosen once
//! every photo of the class has a content digest, so every job (each `--shard I/N` job too, so
//! they all make the same plan) learns the digest of every listed photo before it tiles any.
//!
//! Digests an earlier run recorded for the same (size, mtime) are taken as they are, the same
//! trust the tiler's reuse of unchanged photos already places in a file's stat; everything
//! else is read and hashed, in parallel. `--force` trusts nothing and hashes every photo.

use std::collections::HashMap;

use ballast_format::digest;
use rayon::prelude::*;

use crate::photo;
use crate::scan::{FileStat, Listing};
use crate::state::PhotoOutcome;

/// What the pre-pass learnt of one listed photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Examined {
    /// Not examined: its outcome is decided by the listing alone (it takes no part in the
    /// split).
    Preset,
    /// Its content digest.
    Digest(String),
    /// It could not be read: why (it is then a bad photo).
    Unreadable(String),
}

impl Examined {
    pub fn digest(&self) -> Option<&str> {
        match self {
            Examined::Digest(d) => Some(d),
            _ => None,
        }
    }
}

/// Digests recorded earlier, by photo: `(stat, digest)`.
pub type Known = HashMap<String, (FileStat, String)>;

/// Adds the readable digests of `outcomes` to `known` (entries already there win).
pub fn remember<'a>(known: &mut Known, outcomes: impl IntoIterator<Item = &'a PhotoOutcome>) {
    for o in outcomes {
        if let Some(d) = &o.state.digest {
            known
                .entry(o.state.photo.clone())
                .or_insert_with(|| (o.state.stat(), d.clone()));
        }
    }
}

/// What every listed photo is, in listing order. `preset` holds the listing indexes whose
/// outcome is already decided.
pub fn examine(
    listing: &Listing,
    preset: &HashMap<usize, PhotoOutcome>,
    known: &Known,
    quiet: bool,
) -> Vec<Examined> {
    let bar = ballast_cli::progress(listing.photos.len() as u64, "hashing", quiet);
    let examined: Vec<Examined> = listing
        .photos
        .par_iter()
        .enumerate()
        .map(|(k, p)| {
            let e = match &p.stat {
                _ if preset.contains_key(&k) => Examined::Preset,
                Err(reason) => Examined::Unreadable(reason.clone()),
                Ok(stat) => match known.get(&p.rel) {
                    Some((s, d)) if s == stat => Examined::Digest(d.clone()),
                    _ => match photo::read(&p.path) {
                        Ok(bytes) => Examined::Digest(digest::of_bytes(&bytes)),
                        Err(e) => Examined::Unreadable(e.to_string()),
                    },
                },
            };
            bar.inc(1);
            e
        })
        .collect();
    bar.finish_and_clear();
    examined
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::PhotoState;

    #[test]
    fn known_digests_are_used_only_for_the_same_stat() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("c");
        std::fs::create_dir_all(&class).unwrap();
        std::fs::write(class.join("a.jpg"), b"aaa").unwrap();
        std::fs::write(class.join("b.jpg"), b"bbb").unwrap();
        let listing = crate::scan::scan(dir.path(), None).unwrap();
        let stat_a = *listing.photos[0].stat.as_ref().unwrap();
        let stat_b = *listing.photos[1].stat.as_ref().unwrap();
        let state = |photo: &str, stat: FileStat, digest: &str| PhotoOutcome {
            state: PhotoState {
                photo: photo.into(),
                bytes: stat.bytes,
                mtime_ns: stat.mtime_ns,
                digest: Some(digest.into()),
                skipped: None,
            },
            tiles: Vec::new(),
        };
        let mut known = Known::new();
        let older = FileStat {
            mtime_ns: stat_b.mtime_ns - 1,
            ..stat_b
        };
        remember(
            &mut known,
            [
                &state("c/a.jpg", stat_a, "recorded"),
                &state("c/b.jpg", older, "stale"),
            ],
        );
        // A later record for the same photo does not replace the first one.
        remember(&mut known, [&state("c/a.jpg", stat_a, "later")]);
        let got = examine(&listing, &HashMap::new(), &known, true);
        assert_eq!(
            got,
            [
                Examined::Digest("recorded".into()),
                Examined::Digest(digest::of_bytes(b"bbb")),
            ]
        );
        let preset = HashMap::from([(1, state("c/b.jpg", stat_b, "x"))]);
        assert_eq!(
            examine(&listing, &preset, &known, true)[1],
            Examined::Preset
        );
        std::fs::remove_file(class.join("b.jpg")).unwrap();
        assert!(matches!(
            examine(&listing, &HashMap::new(), &known, true)[1],
            Examined::Unreadable(_)
        ));
    }
}
