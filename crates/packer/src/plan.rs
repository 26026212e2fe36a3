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
use ballast_format::tiler_files::{TILER_SUMMARY_FILE, TilerSummary};

use crate::error::PackError;
use ballast_tiler::photo::DEFAULT_MAX_PIXELS;

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
    /// The file that holds the row's pixels: its tile, or (a window reference) its photo.
    pub path: PathBuf,
}

impl Row {
    /// The row's pixels come from its photo (`tiler --tile-files none`), not a tile file.
    pub fn from_photo(&self) -> bool {
        self.rec.tile.is_none()
    }

    /// BLAKE3 that `path`'s bytes must have.
    pub fn expected_digest(&self) -> &str {
        self.rec
            .tile_digest
            .as_deref()
            .unwrap_or(&self.rec.photo_digest)
    }
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
    /// Where window references' photos are (from tiler.json or `--photos`); None when every
    /// row has a tile file.
    pub photos_dir: Option<PathBuf>,
    /// The tiler's decompression-bomb limit, applied again when photos are decoded here.
    pub photo_max_pixels: u64,
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
        Plan::from_tiles_with(tiles_dir, settings, None)
    }

    /// As [`Plan::from_tiles`], with the photo folder of window references given (`--photos`)
    /// instead of read from `tiler.json`.
    pub fn from_tiles_with(
        tiles_dir: &Path,
        settings: &Settings,
        photos: Option<&Path>,
    ) -> Result<Plan, PackError> {
        let (manifest_path, bytes) = read_manifest_bytes(tiles_dir)?;
        let manifest_digest = digest::of_bytes(&bytes);
        let records = parse_manifest(&manifest_path, &bytes)?;
        let (photos_dir, max_pixels) = if records.iter().any(|(_, r)| r.tile.is_none()) {
            let (recorded, max_pixels) = recorded_input(tiles_dir, photos.is_some())?;
            let dir = photos.map(Path::to_path_buf).or(recorded);
            (dir, max_pixels)
        } else {
            (None, DEFAULT_MAX_PIXELS)
        };
        let source = Sources {
            tiles_dir,
            photos_dir: photos_dir.as_deref(),
            manifest_path: &manifest_path,
            max_pixels,
        };
        Plan::new(source, manifest_digest, records, settings)
    }

    /// Plans from parsed rows (`(line, record)`).
    pub fn new(
        source: Sources<'_>,
        manifest_digest: String,
        records: Vec<(usize, TileRecord)>,
        settings: &Settings,
    ) -> Result<Plan, PackError> {
        let manifest_path = source.manifest_path;
        if records.is_empty() {
            return Err(PackError::Input(format!(
                "{}: no tiles: the manifest is empty",
                manifest_path.display()
            )));
        }
        let (paths, photo_split) = check_rows(&source, &records)?;
        check_content_leaks(manifest_path, &records)?;

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
        let (classes, mut warnings) = classes_of(manifest_path, &records)?;
        if val.tiles == 0 {
            warnings.push("the val split is empty: the cache will have no val samples".into());
        }
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
        let params = PackerParams {
            size: settings.size,
            jitter: settings.jitter,
            copies: settings.copies,
            seed: settings.seed,
            train_shards: shard_count(train.tiles * settings.copies as u64),
            val_shards: shard_count(val.tiles),
            luma: LUMA.into(),
            resize: RESIZE.into(),
        };
        let shards = plan_shards(&params, &classes, &rows);
        Ok(Plan {
            tiles_dir: source.tiles_dir.to_path_buf(),
            photos_dir: source.photos_dir.map(Path::to_path_buf),
            photo_max_pixels: source.max_pixels,
            manifest_path: manifest_path.to_path_buf(),
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

/// Where a manifest's rows point.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    pub tiles_dir: &'a Path,
    /// The photo folder of window references (required when the manifest has any).
    pub photos_dir: Option<&'a Path>,
    pub manifest_path: &'a Path,
    /// Photos declaring more pixels are refused (the tiler's `--max-pixels`).
    pub max_pixels: u64,
}

/// The input folder and pixel limit a `--tile-files none` tiler run recorded in `tiler.json`.
/// With `given` (`--photos`), a missing summary or folder is no error.
fn recorded_input(tiles_dir: &Path, given: bool) -> Result<(Option<PathBuf>, u64), PackError> {
    let path = tiles_dir.join(TILER_SUMMARY_FILE);
    let summary = ballast_format::regular::read(&path)
        .map_err(|e| PackError::io(&path, e))
        .and_then(|bytes| {
            serde_json::from_slice::<TilerSummary>(&bytes).map_err(|e| {
                PackError::Input(format!("{}: malformed tiler summary: {e}", path.display()))
            })
        });
    let summary = match summary {
        Ok(s) => s,
        Err(_) if given => return Ok((None, DEFAULT_MAX_PIXELS)),
        Err(e) => return Err(e),
    };
    let max_pixels = summary.params.max_pixels;
    match summary.input {
        Some(dir) => Ok((Some(PathBuf::from(dir)), max_pixels)),
        None if given => Ok((None, max_pixels)),
        None => Err(PackError::Input(format!(
            "{}: the manifest's rows are windows without tile files, but this summary records \
             no input folder to cut them from; pass --photos DIR (the tiler's --input)",
            path.display()
        ))),
    }
}

/// Classes (sorted unique names; a label is a position) and warnings about them. A class
/// seen only in val cannot be learnt: an error.
fn classes_of(
    manifest_path: &Path,
    records: &[(usize, TileRecord)],
) -> Result<(Vec<String>, Vec<String>), PackError> {
    let mut class_splits: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
    for (line, rec) in records {
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
                "{}:{line}: class {class:?} has {val} val tiles but no train tiles: the model                  could never learn it (add train photos of it, or remove its val photos)",
                manifest_path.display()
            )));
        }
        if val == 0 {
            warnings.push(format!(
                "class {class:?} has no val tiles: its accuracy cannot be measured"
            ));
        }
    }
    Ok((
        class_splits.keys().map(|c| c.to_string()).collect(),
        warnings,
    ))
}

/// Every shard of both splits, train first: rows assigned by photo, ordered by (photo, row).
fn plan_shards(params: &PackerParams, classes: &[String], rows: &[Row]) -> Vec<ShardPlan> {
    let mut shards = Vec::with_capacity((params.train_shards + params.val_shards) as usize);
    for (split, count, copies) in [
        (Split::Train, params.train_shards, params.copies),
        (Split::Val, params.val_shards, 1),
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
            shard.inputs = inputs_key(params, classes, rows, &shard);
            shards.push(shard);
        }
    }
    shards
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
    // v2: jitter is keyed by the window (photo, x, y, size), not the tile's name.
    let mut h = KeyHasher::new("ballast.packer.inputs.v2");
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
        h.str(&r.rec.name())
            .str(r.expected_digest())
            .str(&r.rec.photo)
            .u64(r.rec.x as u64)
            .u64(r.rec.y as u64)
            .u64(r.rec.size as u64)
            .u64(r.label as u64);
    }
    h.finish_hex()
}

/// Per-row checks across the manifest: paths inside the tiles (or photos) folder, a class
/// name, no sample listed twice, no photo in both splits. Returns each row's file and each
/// photo's split.
#[allow(clippy::type_complexity)]
fn check_rows<'a>(
    source: &Sources<'_>,
    records: &'a [(usize, TileRecord)],
) -> Result<(Vec<PathBuf>, HashMap<&'a str, (Split, usize)>), PackError> {
    let at = |line: usize| format!("{}:{line}", source.manifest_path.display());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(records.len());
    let mut photo_split: HashMap<&str, (Split, usize)> = HashMap::new();
    let mut paths = Vec::with_capacity(records.len());
    for (line, rec) in records {
        let name = rec.name();
        let path = match (&rec.tile, source.photos_dir) {
            (Some(tile), _) => resolve_inside(source.tiles_dir, tile).map_err(|m| {
                PackError::Input(format!(
                    "{}: tile {tile:?} is outside the tiles folder: {m}",
                    at(*line)
                ))
            })?,
            (None, Some(photos)) => resolve_inside(photos, &rec.photo).map_err(|m| {
                PackError::Input(format!(
                    "{}: photo {:?} is outside the photo folder {}: {m}",
                    at(*line),
                    rec.photo,
                    photos.display()
                ))
            })?,
            (None, None) => {
                return Err(PackError::Input(format!(
                    "{}: window {name:?} has no tile file and no photo folder was given",
                    at(*line)
                )));
            }
        };
        if rec.class.is_empty() {
            return Err(PackError::Input(format!(
                "{}: tile {name:?} has an empty class name",
                at(*line)
            )));
        }
        if let Some(first) = seen.insert(name, *line) {
            return Err(PackError::Input(format!(
                "{}: tile {:?} is listed twice (first on line {first})",
                at(*line),
                rec.name()
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
        let tile = rec.tile.as_deref().zip(rec.tile_digest.as_deref());
        let photo = Some((rec.photo.as_str(), rec.photo_digest.as_str()));
        for (is_photo, (name, digest)) in [(true, photo), (false, tile)]
            .into_iter()
            .filter_map(|(p, nd)| Some((p, nd?)))
        {
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
            tile: Some(tile.into()),
            photo: photo.into(),
            class: class.into(),
            split,
            x: 0,
            y: 0,
            size: 32,
            photo_digest: digest::of_bytes(photo.as_bytes()),
            tile_digest: Some(digest::of_bytes(tile.as_bytes())),
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
        let sources = Sources {
            tiles_dir: Path::new("/t"),
            photos_dir: None,
            manifest_path: Path::new("/t/manifest.jsonl"),
            max_pixels: DEFAULT_MAX_PIXELS,
        };
        Plan::new(sources, "m".into(), rows, s)
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
        v[4].tile = Some("../escape.png".into());
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
        leak.tile = Some("val/b/leak.png".into());
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
