//! From the tiler's manifest to the cache's plan: labels, shard assignment and each shard's
//! input key. Planning reads only the manifest (no tile is opened), so the up-to-date check
//! that builds on it is cheap.
//!
//! Rules (the contract with incremental rebuilds):
//! - Classes are the manifest's sorted unique class names; a label is a class's position.
//! - Shards per split: `--shards N`, else `ceil(samples / per_shard)` with
//!   `per_shard = min(50 000, 256 MiB / size²)`, at least 1, from the current manifest only,
//!   so a fresh build and an incremental one agree.
//! - A photo's samples all go to one shard of its split: a stable hash of the photo path modulo
//!   the split's shard count. Adding a photo therefore touches one shard per split.
//! - Within a shard, samples are ordered by (photo path, manifest row, copy).
//! - Shards are numbered globally, train first then val: job I of N builds those with
//!   `k % N == I`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ballast_format::Split;
use ballast_format::cache_files::PackerParams;
use ballast_format::digest::{self, KeyHasher};
use ballast_format::manifest::{MANIFEST_FILE, TileRecord};
use ballast_format::relpath::resolve_inside;
use ballast_format::shard_file::{self, SHARD_FORMAT};

use crate::error::PackError;
use crate::preprocess::{LUMA, RESIZE};

/// Most samples in one default-sized shard.
pub const MAX_SAMPLES_PER_SHARD: u64 = 50_000;
/// Most image bytes in one default-sized shard.
pub const MAX_SHARD_IMAGE_BYTES: u64 = 256 << 20;

/// What changes the cache's contents (everything but the job split and thread count).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub size: u32,
    pub jitter: f64,
    pub copies: u32,
    pub seed: u64,
    /// `--shards N` (both splits), else size-based.
    pub shards: Option<u32>,
}

/// One manifest row with where it came from and its label.
#[derive(Clone, Debug)]
pub struct Row {
    pub rec: TileRecord,
    /// 1-based line in the manifest.
    pub line: usize,
    pub label: u32,
    pub path: PathBuf,
}

/// One shard to be made.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    pub split: Split,
    pub index: u32,
    pub count: u32,
    pub file: String,
    /// Rows (indexes into [`Plan::rows`]) in sample order.
    pub tiles: Vec<usize>,
    /// Samples per tile: `--copies` for train, 1 for val.
    pub copies: u32,
    /// Digest of everything the shard's bytes depend on.
    pub inputs: String,
}

impl ShardPlan {
    pub fn samples(&self) -> u64 {
        self.tiles.len() as u64 * self.copies as u64
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitCounts {
    pub tiles: u64,
    pub photos: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub tiles_dir: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest_digest: String,
    pub rows: Vec<Row>,
    pub classes: Vec<String>,
    pub params: PackerParams,
    /// Train shards first, then val: position = global shard number.
    pub shards: Vec<ShardPlan>,
    pub train: SplitCounts,
    pub val: SplitCounts,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Reads `TILES/manifest.jsonl` and plans the cache.
    pub fn from_tiles(tiles_dir: &Path, settings: &Settings) -> Result<Plan, PackError> {
        let (manifest_path, bytes) = read_manifest_bytes(tiles_dir)?;
        let manifest_digest = digest::of_bytes(&bytes);
        let records = parse_manifest(&manifest_path, &bytes)?;
        Plan::new(tiles_dir, manifest_path, manifest_digest, records, settings)
    }

    /// Plans from parsed rows (`(line, record)`).
    pub fn new(
        tiles_dir: &Path,
        manifest_path: PathBuf,
        manifest_digest: String,
        records: Vec<(usize, TileRecord)>,
        settings: &Settings,
    ) -> Result<Plan, PackError> {
        let at = |line: usize| format!("{}:{line}", manifest_path.display());
        if records.is_empty() {
            return Err(PackError::Input(format!(
                "{}: no tiles: the manifest is empty",
                manifest_path.display()
            )));
        }

        let (paths, photo_split) = check_rows(tiles_dir, &manifest_path, &records)?;
        check_content_leaks(&manifest_path, &records)?;

        let count_split = |split: Split| {
            let tiles = records.iter().filter(|(_, r)| r.split == split).count() as u64;
            let photos = photo_split.values().filter(|(s, _)| *s == split).count() as u64;
            SplitCounts { tiles, photos }
        };
        let train = count_split(Split::Train);
        let val = count_split(Split::Val);
        if train.tiles == 0 {
            return Err(PackError::Input(format!(
                "{}: no train tiles: the train split is empty (nothing to learn from)",
                manifest_path.display()
            )));
        }

        // Classes: sorted unique names; a class seen only in val cannot be learnt.
        let mut class_splits: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
        for (line, rec) in &records {
            let e = class_splits.entry(&rec.class).or_insert((0, 0, *line));
            match rec.split {
                Split::Train => e.0 += 1,
                Split::Val => e.1 += 1,
            }
        }
        let mut warnings = Vec::new();
        for (class, &(train, val, line)) in &class_splits {
            if train == 0 {
                return Err(PackError::Input(format!(
                    "{}: class {class:?} has {val} val tiles but no train tiles: the model could \
                     never learn it (add train photos of it, or remove its val photos)",
                    at(line)
                )));
            }
            if val == 0 {
                warnings.push(format!(
                    "class {class:?} has no val tiles: its accuracy cannot be measured"
                ));
            }
        }
        if val.tiles == 0 {
            warnings.push("the val split is empty: the cache will have no val samples".into());
        }
        let classes: Vec<String> = class_splits.keys().map(|c| c.to_string()).collect();
        let label_of: HashMap<&str, u32> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u32))
            .collect();

        let rows: Vec<Row> = records
            .into_iter()
            .zip(paths)
            .map(|((line, rec), path)| {
                let label = label_of[rec.class.as_str()];
                Row {
                    rec,
                    line,
                    label,
                    path,
                }
            })
            .collect();

        let shard_count = |samples: u64| -> u32 {
            settings.shards.unwrap_or_else(|| {
                let ss = settings.size as u64 * settings.size as u64;
                let per = (MAX_SHARD_IMAGE_BYTES / ss).clamp(1, MAX_SAMPLES_PER_SHARD);
                samples.div_ceil(per).clamp(1, u32::MAX as u64) as u32
            })
        };
        let train_shards = shard_count(train.tiles * settings.copies as u64);
        let val_shards = shard_count(val.tiles);
        let params = PackerParams {
            size: settings.size,
            jitter: settings.jitter,
            copies: settings.copies,
            seed: settings.seed,
            train_shards,
            val_shards,
            luma: LUMA.into(),
            resize: RESIZE.into(),
        };

        let mut shards = Vec::with_capacity((train_shards + val_shards) as usize);
        for (split, count, copies) in [
            (Split::Train, train_shards, settings.copies),
            (Split::Val, val_shards, 1),
        ] {
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); count as usize];
            for (i, row) in rows.iter().enumerate() {
                if row.rec.split == split {
                    members[shard_of_photo(&row.rec.photo, count) as usize].push(i);
                }
            }
            for (index, mut tiles) in members.into_iter().enumerate() {
                tiles.sort_by(|&a, &b| rows[a].rec.photo.cmp(&rows[b].rec.photo).then(a.cmp(&b)));
                let mut shard = ShardPlan {
                    split,
                    index: index as u32,
                    count,
                    file: shard_file::file_name(split, index as u32, count),
                    tiles,
                    copies,
                    inputs: String::new(),
                };
                shard.inputs = inputs_key(&params, &classes, &rows, &shard);
                shards.push(shard);
            }
        }

        Ok(Plan {
            tiles_dir: tiles_dir.to_path_buf(),
            manifest_path,
            manifest_digest,
            rows,
            classes,
            params,
            shards,
            train,
            val,
            warnings,
        })
    }

    pub fn counts(&self, split: Split) -> &SplitCounts {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }

    /// Digest naming this build (manifest + parameters): parts of sharded jobs finish together
    /// only when they agree on it.
    pub fn generation(&self) -> String {
        let mut h = KeyHasher::new("ballast.packer.generation.v1");
        h.str(&self.manifest_digest)
            .str(&serde_json::to_string(&self.params).unwrap_or_default());
        for c in &self.classes {
            h.str(c);
        }
        h.finish_hex()
    }

    /// `manifest.jsonl:LINE` of a row, for messages.
    pub fn at(&self, row: usize) -> String {
        format!("{}:{}", self.manifest_path.display(), self.rows[row].line)
    }
}

/// The shard (of `count`) that holds every sample of `photo`.
pub fn shard_of_photo(photo: &str, count: u32) -> u32 {
    let h = KeyHasher::new("ballast.packer.shard.v1")
        .str(photo)
        .finish_u64();
    (h % count as u64) as u32
}

fn inputs_key(
    params: &PackerParams,
    classes: &[String],
    rows: &[Row],
    shard: &ShardPlan,
) -> String {
    let mut h = KeyHasher::new("ballast.packer.inputs.v1");
    h.str(SHARD_FORMAT)
        .str(&params.luma)
        .str(&params.resize)
        .u64(params.size as u64)
        .f64(params.jitter)
        .u64(params.seed)
        .str(shard.split.as_str())
        .u64(shard.index as u64)
        .u64(shard.count as u64)
        .u64(shard.copies as u64)
        .u64(classes.len() as u64);
    for c in classes {
        h.str(c);
    }
    h.u64(shard.tiles.len() as u64);
    for &i in &shard.tiles {
        let r = &rows[i];
        h.str(&r.rec.tile)
            .str(&r.rec.tile_digest)
            .str(&r.rec.photo)
            .u64(r.label as u64);
    }
    h.finish_hex()
}

/// Per-row checks across the manifest: paths inside the tiles folder, a class name, no tile
/// listed twice, no photo in both splits. Returns each row's path and each photo's split.
#[allow(clippy::type_complexity)]
fn check_rows<'a>(
    tiles_dir: &Path,
    manifest_path: &Path,
    records: &'a [(usize, TileRecord)],
) -> Result<(Vec<PathBuf>, HashMap<&'a str, (Split, usize)>), PackError> {
    let at = |line: usize| format!("{}:{line}", manifest_path.display());
    let mut seen_tiles: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    let mut photo_split: HashMap<&str, (Split, usize)> = HashMap::new();
    let mut paths = Vec::with_capacity(records.len());
    for (line, rec) in records {
        let path = resolve_inside(tiles_dir, &rec.tile).map_err(|m| {
            PackError::Input(format!(
                "{}: tile {:?} is outside the tiles folder: {m}",
                at(*line),
                rec.tile
            ))
        })?;
        if rec.class.is_empty() {
            return Err(PackError::Input(format!(
                "{}: tile {:?} has an empty class name",
                at(*line),
                rec.tile
            )));
        }
        if let Some(first) = seen_tiles.insert(&rec.tile, *line) {
            return Err(PackError::Input(format!(
                "{}: tile {:?} is listed twice (first on line {first})",
                at(*line),
                rec.tile
            )));
        }
        match photo_split.get(rec.photo.as_str()) {
            Some(&(split, first)) if split != rec.split => {
                return Err(PackError::Input(format!(
                    "{}: photo {:?} has {} tiles here but {} tiles on line {first}: \
                     a photo must feed one split only (rerun the tiler)",
                    at(*line),
                    rec.photo,
                    rec.split,
                    split
                )));
            }
            Some(_) => {}
            None => {
                photo_split.insert(&rec.photo, (rec.split, *line));
            }
        }
        paths.push(path);
    }
    Ok((paths, photo_split))
}

/// The field report's leak, by content: byte-identical photos, or identical tiles, on both
/// sides of the split. The tiler splits by content digest, so only a manifest from an older
/// tiler (or edited by hand) can hold one; training on it would inflate val accuracy.
fn check_content_leaks(
    manifest_path: &Path,
    records: &[(usize, TileRecord)],
) -> Result<(), PackError> {
    let mut seen: HashMap<(&str, bool), (Split, &str, usize)> = HashMap::new();
    for (line, rec) in records {
        for (digest, is_photo, name) in [
            (rec.photo_digest.as_str(), true, rec.photo.as_str()),
            (rec.tile_digest.as_str(), false, rec.tile.as_str()),
        ] {
            match seen.get(&(digest, is_photo)) {
                Some(&(split, other, first)) if split != rec.split => {
                    let what = if is_photo { "photo" } else { "tile" };
                    return Err(PackError::Input(format!(
                        "{}:{line}: {what} {name:?} ({}) has the same content as {what} \
                         {other:?} ({split}, line {first}): train and val would share it. \
                         Rerun the tiler (it splits by content) or remove the copy",
                        manifest_path.display(),
                        rec.split
                    )));
                }
                Some(_) => {}
                None => {
                    seen.insert((digest, is_photo), (rec.split, name, *line));
                }
            }
        }
    }
    Ok(())
}

/// The manifest's bytes; a missing manifest is explained (no tiler run, or an unfinished
/// sharded one).
fn read_manifest_bytes(tiles_dir: &Path) -> Result<(PathBuf, Vec<u8>), PackError> {
    let path = tiles_dir.join(MANIFEST_FILE);
    match ballast_format::regular::read(&path) {
        Ok(b) => Ok((path, b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pending = ballast_format::parts::Parts::pending_summary(tiles_dir);
            Err(PackError::Input(if !tiles_dir.is_dir() {
                format!("{}: no such tiles folder", tiles_dir.display())
            } else if let Some(pending) = pending {
                format!(
                    "{}: missing: a sharded build has not finished: {pending}",
                    path.display()
                )
            } else {
                format!("{}: missing: run the tiler first", path.display())
            }))
        }
        Err(e) => Err(PackError::io(path, e)),
    }
}

/// Parses manifest rows with their 1-based line numbers (the format crate's parser).
pub fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, TileRecord)>, PackError> {
    Ok(ballast_format::manifest::parse_numbered(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tile: &str, photo: &str, class: &str, split: Split) -> TileRecord {
        TileRecord {
            tile: tile.into(),
            photo: photo.into(),
            class: class.into(),
            split,
            x: 0,
            y: 0,
            size: 32,
            photo_digest: digest::of_bytes(photo.as_bytes()),
            tile_digest: digest::of_bytes(tile.as_bytes()),
            photo_width: 64,
            photo_height: 64,
        }
    }

    fn settings(shards: Option<u32>) -> Settings {
        Settings {
            size: 8,
            jitter: 0.25,
            copies: 2,
            seed: 0,
            shards,
        }
    }

    fn plan(recs: Vec<TileRecord>, s: &Settings) -> Result<Plan, PackError> {
        let rows = recs
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect();
        Plan::new(
            Path::new("/t"),
            PathBuf::from("/t/manifest.jsonl"),
            "m".into(),
            rows,
            s,
        )
    }

    fn sample_set() -> Vec<TileRecord> {
        let mut v = Vec::new();
        for (class, split) in [("b", Split::Train), ("a", Split::Train), ("a", Split::Val)] {
            for p in 0..6 {
                for t in 0..3 {
                    v.push(rec(
                        &format!("{split}/{class}/p{p}-{t}.png"),
                        &format!("{class}/{split}-p{p}.jpg"),
                        class,
                        split,
                    ));
                }
            }
        }
        v
    }

    #[test]
    fn labels_shards_and_order() {
        let p = plan(sample_set(), &settings(Some(3))).unwrap();
        assert_eq!(p.classes, vec!["a", "b"]);
        assert_eq!(p.shards.len(), 6);
        assert_eq!(p.train.tiles, 36);
        assert_eq!(p.val.photos, 6);
        let mut seen = 0;
        for s in &p.shards {
            seen += s.tiles.len();
            // Each photo lives in one shard; within it, photo order then row order.
            for w in s.tiles.windows(2) {
                let (a, b) = (&p.rows[w[0]].rec, &p.rows[w[1]].rec);
                assert!((a.photo.as_str(), w[0]) < (b.photo.as_str(), w[1]));
            }
            for &t in &s.tiles {
                let r = &p.rows[t].rec;
                assert_eq!(r.split, s.split);
                assert_eq!(shard_of_photo(&r.photo, 3), s.index);
            }
        }
        assert_eq!(seen, 54);
        assert_eq!(p.shards[0].copies, 2);
        assert_eq!(p.shards[5].copies, 1);
    }

    #[test]
    fn default_shard_count_follows_size() {
        let p = plan(sample_set(), &settings(None)).unwrap();
        assert_eq!((p.params.train_shards, p.params.val_shards), (1, 1));
        assert_eq!(shard_of_photo("x", 1), 0);
    }

    #[test]
    fn adding_a_photo_changes_only_its_shards_key() {
        let s = settings(Some(3));
        let before = plan(sample_set(), &s).unwrap();
        let mut recs = sample_set();
        recs.push(rec("train/b/new.png", "b/new.jpg", "b", Split::Train));
        let after = plan(recs, &s).unwrap();
        let changed: Vec<_> = before
            .shards
            .iter()
            .zip(&after.shards)
            .filter(|(x, y)| x.inputs != y.inputs)
            .map(|(x, _)| x.file.clone())
            .collect();
        let k = shard_of_photo("b/new.jpg", 3);
        assert_eq!(changed, vec![shard_file::file_name(Split::Train, k, 3)]);
    }

    #[test]
    fn bad_manifests_are_named() {
        let s = settings(None);
        let mut v = sample_set();
        v[4].tile = "../escape.png".into();
        let e = plan(v, &s).unwrap_err().to_string();
        assert!(
            e.contains("manifest.jsonl:5") && e.contains("outside"),
            "{e}"
        );

        let mut v = sample_set();
        v.push(rec("val/z/x.png", "z/x.jpg", "z", Split::Val));
        let e = plan(v, &s).unwrap_err().to_string();
        assert!(e.contains("\"z\"") && e.contains("no train tiles"), "{e}");

        let v: Vec<_> = sample_set()
            .into_iter()
            .filter(|r| r.split == Split::Val)
            .collect();
        assert!(plan(v, &s).is_err());

        let mut v = sample_set();
        let dup = v[0].clone();
        v.push(dup);
        assert!(plan(v, &s).unwrap_err().to_string().contains("twice"));

        let mut v = sample_set();
        let mut leak = v[0].clone();
        leak.tile = "val/b/leak.png".into();
        leak.split = Split::Val;
        v.push(leak);
        assert!(plan(v, &s).unwrap_err().to_string().contains("one split"));

        let v: Vec<_> = sample_set()
            .into_iter()
            .filter(|r| r.split == Split::Train)
            .collect();
        let p = plan(v, &s).unwrap();
        assert!(p.warnings.iter().any(|w| w.contains("val split is empty")));
    }

    #[test]
    fn malformed_line_is_named() {
        let good =
            serde_json::to_string(&rec("train/a/x.png", "a/x.jpg", "a", Split::Train)).unwrap();
        let text = format!("{good}\n\n{{\"tile\": 3}}\n");
        let e = parse_manifest(Path::new("m/manifest.jsonl"), text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("manifest.jsonl:3:"), "{e}");
    }
}
