//! Turning every photo's outcome into the committed output: manifest.jsonl, the stat cache and
//! tiler.json (in that order; tiler.json, which seals the manifest's digest, is the commit
//! point), then removing what the new manifest no longer lists.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;

use ballast_format::manifest::{self, TileRecord};
use ballast_format::parts::Parts;
use ballast_format::tiler_files::{
    ClassCounts, DuplicateGroup, Skipped, TILER_FORMAT, TILER_SUMMARY_FILE, TilerCounts,
    TilerParams, TilerSummary,
};
use ballast_format::{Split, atomic, digest};

use crate::error::TilerError;
use crate::scan::Listing;
use crate::state::{self, PhotoOutcome};
use crate::stratify::SplitPlan;

/// The stage name of the tiler's part records.
pub const STAGE: &str = "tiler";

/// The output described by a set of outcomes (one per listed photo, in listing order).
pub struct Assembled {
    pub rows: Vec<TileRecord>,
    pub manifest_bytes: Vec<u8>,
    pub summary: TilerSummary,
}

/// Builds the manifest and summary. Pure: the same listing and outcomes give the same bytes.
/// `input` (the canonical input folder) is recorded only for window rows (`--tile-files
/// none`), whose pixels the packer reads from the photos.
pub fn assemble(
    listing: &Listing,
    input: &Path,
    params: &TilerParams,
    outcomes: &[PhotoOutcome],
) -> Assembled {
    let rows: Vec<TileRecord> = outcomes
        .iter()
        .flat_map(|o| o.tiles.iter().cloned())
        .collect();
    let manifest_bytes = manifest::to_bytes(&rows);
    let mut skipped: Vec<Skipped> = listing
        .skipped
        .iter()
        .map(|s| Skipped {
            path: s.path.clone(),
            reason: s.reason.clone(),
        })
        .collect();
    let mut bad = listing.skipped.iter().filter(|s| s.bad).count() as u64;
    for o in outcomes {
        if let Some(note) = &o.state.skipped {
            skipped.push(Skipped {
                path: o.state.photo.clone(),
                reason: note.reason.clone(),
            });
            bad += note.bad as u64;
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.reason.cmp(&b.reason)));

    let mut classes: BTreeMap<&str, ClassCounts> = BTreeMap::new();
    for p in &listing.photos {
        classes.entry(&p.class).or_insert_with(|| ClassCounts {
            class: p.class.clone(),
            ..ClassCounts::default()
        });
    }
    for o in outcomes {
        let Some(first) = o.tiles.first() else {
            continue;
        };
        if let Some(c) = classes.get_mut(first.class.as_str()) {
            let n = o.tiles.len() as u64;
            match first.split {
                Split::Train => {
                    c.train_photos += 1;
                    c.train_tiles += n;
                }
                Split::Val => {
                    c.val_photos += 1;
                    c.val_tiles += n;
                }
            }
        }
    }
    let classes: Vec<ClassCounts> = classes.into_values().collect();
    let warnings = split_warnings(&classes, params.val_fraction);
    let duplicates = duplicate_groups(listing, outcomes);
    let counts = TilerCounts {
        duplicates: duplicates.iter().map(|g| g.photos.len() as u64 - 1).sum(),
        photos: listing.photos.len() as u64,
        photos_tiled: outcomes.iter().filter(|o| !o.tiles.is_empty()).count() as u64,
        tiles: rows.len() as u64,
        skipped: skipped.len() as u64,
        bad,
    };
    let summary = TilerSummary {
        format: TILER_FORMAT.into(),
        params: params.clone(),
        counts,
        classes,
        skipped,
        duplicates,
        manifest_digest: digest::of_bytes(&manifest_bytes),
        input: (!params.tile_files.is_png()).then(|| input.display().to_string()),
        warnings,
    };
    Assembled {
        rows,
        manifest_bytes,
        summary,
    }
}

/// One sentence per class the split leaves thin: no tiled photo at all, none on a side that
/// `val_fraction` asks for, or a single one on a side.
pub fn split_warnings(classes: &[ClassCounts], val_fraction: f64) -> Vec<String> {
    let mut out = Vec::new();
    for c in classes {
        let (t, v) = (c.train_photos, c.val_photos);
        let counts = format!("{t} train, {v} val");
        if t == 0 && v == 0 {
            out.push(format!("class {} has no tiled photo", c.class));
            continue;
        }
        if v == 0 && val_fraction > 0.0 {
            out.push(format!(
                "class {} has no val photo ({counts}): it is never validated",
                c.class
            ));
        }
        if t == 0 && val_fraction < 1.0 {
            out.push(format!(
                "class {} has no train photo ({counts}): it is never trained on",
                c.class
            ));
        }
        if v == 1 {
            out.push(format!(
                "class {} has a single val photo ({counts}): its val accuracy rests on one photo",
                c.class
            ));
        }
        if t == 1 {
            out.push(format!(
                "class {} has a single train photo ({counts}): it is trained on one photo",
                c.class
            ));
        }
    }
    out
}

/// Checks that every tile lies on the side the split rule gives its photo, with the plan made
/// afresh from all jobs' outcomes: jobs that saw different contents (a photo rewritten during
/// the run) cannot commit a plan mixed from both.
fn check_sides(
    listing: &Listing,
    params: &TilerParams,
    outcomes: &[PhotoOutcome],
) -> Result<(), TilerError> {
    let members = listing
        .photos
        .iter()
        .zip(outcomes)
        .filter_map(|(p, o)| Some((p.class.as_str(), o.state.digest.as_deref()?)));
    let plan = SplitPlan::new(
        params.split,
        members,
        params.val_fraction,
        params.split_seed,
    );
    for t in outcomes.iter().flat_map(|o| &o.tiles) {
        if plan.split_of(&t.photo_digest) != Some(t.split) {
            return Err(TilerError::Inconsistent(format!(
                "{} was tiled into {} but the split puts its content elsewhere: the photos \
                 changed during the run; rerun the jobs",
                t.photo, t.split
            )));
        }
    }
    Ok(())
}

/// Groups of photos with the same content digest, in digest order.
fn duplicate_groups(listing: &Listing, outcomes: &[PhotoOutcome]) -> Vec<DuplicateGroup> {
    let class_of: HashMap<&str, &str> = listing
        .photos
        .iter()
        .map(|p| (p.rel.as_str(), p.class.as_str()))
        .collect();
    let mut by_digest: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for o in outcomes {
        if let Some(d) = &o.state.digest {
            by_digest.entry(d).or_default().push(&o.state.photo);
        }
    }
    by_digest
        .into_iter()
        .filter(|(_, photos)| photos.len() > 1)
        .map(|(digest, mut photos)| {
            photos.sort_unstable();
            let mut classes: Vec<String> = photos
                .iter()
                .filter_map(|p| class_of.get(p).map(|c| c.to_string()))
                .collect();
            classes.sort();
            classes.dedup();
            DuplicateGroup {
                digest: digest.to_string(),
                photos: photos.into_iter().map(str::to_string).collect(),
                classes,
            }
        })
        .collect()
}

/// Writes the output of a complete set of outcomes and tidies the folder. Fails without
/// writing anything when the outcomes do not cover the listing or there are more bad inputs
/// than `max_bad`.
pub fn commit(
    out: &Path,
    listing: &Listing,
    input: &Path,
    params: &TilerParams,
    mut outcomes: Vec<PhotoOutcome>,
    max_bad: u64,
) -> Result<TilerSummary, TilerError> {
    outcomes.sort_by(|a, b| a.state.photo.cmp(&b.state.photo));
    let covers = outcomes.len() == listing.photos.len()
        && outcomes
            .iter()
            .zip(&listing.photos)
            .all(|(o, p)| o.state.photo == p.rel);
    if !covers {
        return Err(TilerError::Inconsistent(format!(
            "the jobs' results ({} photos) do not match the input listing ({} photos); \
             was the input changed during the run? Rerun the jobs",
            outcomes.len(),
            listing.photos.len()
        )));
    }
    check_sides(listing, params, &outcomes)?;
    let a = assemble(listing, input, params, &outcomes);
    if a.summary.counts.bad > max_bad {
        return Err(TilerError::TooManyBad {
            bad: a.summary.counts.bad,
            limit: max_bad,
        });
    }
    // Tiles are written rename-only; make them (and the other jobs' tiles) durable before the
    // files that list them.
    atomic::sync_filesystem(out)?;
    write_if_changed(&out.join(manifest::MANIFEST_FILE), &a.manifest_bytes)?;
    let states: Vec<_> = outcomes.into_iter().map(|o| o.state).collect();
    write_if_changed(
        &out.join(state::STATE_FILE),
        &state::state_file_bytes(&a.summary.manifest_digest, states),
    )?;
    write_if_changed(&out.join(TILER_SUMMARY_FILE), &json_bytes(&a.summary))?;

    let keep: HashSet<&str> = a.rows.iter().filter_map(|r| r.tile.as_deref()).collect();
    let removed = remove_unlisted(out, &keep)?;
    if removed > 0 {
        tracing::info!("removed {removed} tile files the new manifest no longer lists");
    }
    Parts::new(out, STAGE).clear()?;
    state::clear_journals(out)?;
    atomic::remove_stale_temps(out, None)?;
    Ok(a.summary)
}

/// Pretty JSON with a trailing newline, as `atomic::write_json` writes it.
fn json_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes `bytes` atomically and durably unless the file already holds exactly them (a rerun
/// that only refreshed the stat cache leaves the manifest's and summary's times alone).
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), TilerError> {
    if ballast_format::regular::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    atomic::write_bytes(path, bytes, atomic::Durability::Fsync)?;
    Ok(())
}

/// True for files the tiler owns under `train/` and `val/`: tiles and temporary files.
pub fn is_tiler_file(name: &str) -> bool {
    name.ends_with(".png") || atomic::is_temp_name(name)
}

/// Deletes tiler files under `out/train` and `out/val` not in `keep`, then empty folders.
fn remove_unlisted(out: &Path, keep: &HashSet<&str>) -> Result<usize, TilerError> {
    let mut removed = 0;
    for split in ["train", "val"] {
        let root = out.join(split);
        if !root.exists() {
            continue;
        }
        for item in walkdir::WalkDir::new(&root).contents_first(true) {
            let e = match item {
                Ok(e) => e,
                Err(err) => {
                    let p = err.path().unwrap_or(&root).to_path_buf();
                    return Err(TilerError::Inconsistent(format!(
                        "cannot list {}: {err}",
                        p.display()
                    )));
                }
            };
            if e.file_type().is_dir() {
                // Fails (harmlessly) unless empty.
                let _ = fs::remove_dir(e.path());
                continue;
            }
            let name = e.file_name().to_string_lossy();
            if !is_tiler_file(&name) {
                continue;
            }
            let rel = ballast_format::relpath::relative_to(out, e.path()).unwrap_or_default();
            if keep.contains(rel.as_str()) {
                continue;
            }
            match fs::remove_file(e.path()) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(TilerError::io(e.path(), err)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, train: u64, val: u64) -> ClassCounts {
        ClassCounts {
            class: name.into(),
            train_photos: train,
            val_photos: val,
            train_tiles: train * 3,
            val_tiles: val * 3,
        }
    }

    #[test]
    fn thin_classes_are_named_with_their_counts() {
        let classes = [
            class("fine", 4, 2),
            class("lonely", 1, 0),
            class("coarse", 0, 3),
            class("empty", 0, 0),
            class("pair", 1, 1),
        ];
        assert_eq!(
            split_warnings(&classes, 0.3),
            [
                "class lonely has no val photo (1 train, 0 val): it is never validated",
                "class lonely has a single train photo (1 train, 0 val): it is trained on one photo",
                "class coarse has no train photo (0 train, 3 val): it is never trained on",
                "class empty has no tiled photo",
                "class pair has a single val photo (1 train, 1 val): its val accuracy rests on one photo",
                "class pair has a single train photo (1 train, 1 val): it is trained on one photo",
            ]
        );
        // A side the fraction asks to leave empty is not warned about; a single photo is.
        assert_eq!(
            split_warnings(&[class("fine", 4, 0), class("lonely", 1, 0)], 0.0),
            ["class lonely has a single train photo (1 train, 0 val): it is trained on one photo"]
        );
        assert!(split_warnings(&[class("fine", 0, 4)], 1.0).is_empty());
    }
}
