//! Test data for the packer's end-to-end tests: textured RGB tile PNGs written the way the
//! tiler writes them, a manifest, and helpers to run the real binary and snapshot a cache.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use ballast_format::Split;
use ballast_format::digest;
use ballast_format::manifest::{self, TileRecord};
use ballast_format::rng::SeededRng;

pub const BIN: &str = env!("CARGO_BIN_EXE_packer");

/// A seeded texture: smooth gradient, blobs and noise, so that downsampling and jitter matter.
pub fn texture(px: u32, key: &str) -> Vec<u8> {
    let mut rng = SeededRng::for_key("test.texture", 0, &[key.as_bytes()]);
    let base: [f64; 3] = [
        rng.uniform(40.0, 200.0),
        rng.uniform(40.0, 200.0),
        rng.uniform(40.0, 200.0),
    ];
    let blobs: Vec<(f64, f64, f64, f64)> = (0..6)
        .map(|_| {
            (
                rng.uniform(0.0, px as f64),
                rng.uniform(0.0, px as f64),
                rng.uniform(2.0, px as f64 / 4.0),
                rng.uniform(-90.0, 90.0),
            )
        })
        .collect();
    let mut out = Vec::with_capacity((px * px * 3) as usize);
    for y in 0..px {
        for x in 0..px {
            let mut shade = (x as f64 - y as f64) * 0.3;
            for &(cx, cy, r, d) in &blobs {
                if (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) < r * r {
                    shade += d;
                }
            }
            for b in base {
                let noise = rng.uniform(-25.0, 25.0);
                out.push((b + shade + noise).clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

pub fn encode_png(px: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, px, px);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(rgb).unwrap();
    w.finish().unwrap();
    out
}

/// Writes tile `i` of `photo` (e.g. `coarse/p1.jpg`) and returns its manifest row.
pub fn write_tile(
    tiles: &Path,
    photo: &str,
    split: Split,
    i: u32,
    px: u32,
    variant: u32,
) -> TileRecord {
    let class = photo.split('/').next().unwrap().to_string();
    let stem = Path::new(photo)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let photo_digest = digest::of_bytes(photo.as_bytes());
    let x = i * px;
    let rel = format!(
        "{}/{class}/{stem}-{}_x{x:05}_y00000_s{px}.png",
        split.as_str(),
        &photo_digest[..8]
    );
    let bytes = encode_png(px, &texture(px, &format!("{photo}/{i}/{variant}")));
    let path = tiles.join(&rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    TileRecord {
        tile: Some(rel),
        photo: photo.into(),
        class,
        split,
        x,
        y: 0,
        size: px,
        photo_digest,
        tile_digest: Some(digest::of_bytes(&bytes)),
        photo_width: px * 8,
        photo_height: px,
    }
}

/// A small data set: for each class, `photos` photos of `per_photo` tiles; each class's first
/// photo is val, the rest train. Returns the tiles folder's manifest rows.
pub fn write_dataset(
    tiles: &Path,
    classes: &[&str],
    photos: u32,
    per_photo: u32,
    px: u32,
) -> Vec<TileRecord> {
    let mut rows = Vec::new();
    for c in classes {
        for p in 0..photos {
            let split = if p == 0 { Split::Val } else { Split::Train };
            rows.extend(add_photo(
                tiles,
                &format!("{c}/photo{p}.jpg"),
                split,
                per_photo,
                px,
            ));
        }
    }
    write_manifest(tiles, &rows);
    rows
}

pub fn add_photo(
    tiles: &Path,
    photo: &str,
    split: Split,
    per_photo: u32,
    px: u32,
) -> Vec<TileRecord> {
    (0..per_photo)
        .map(|i| write_tile(tiles, photo, split, i, px, 0))
        .collect()
}

pub fn write_manifest(tiles: &Path, rows: &[TileRecord]) {
    manifest::write(&tiles.join(manifest::MANIFEST_FILE), rows).unwrap();
}

/// The standard test set: 3 classes × 4 photos × 3 tiles of 40 px (9 val, 27 train tiles).
pub fn standard(root: &Path) -> (PathBuf, Vec<TileRecord>) {
    let tiles = root.join("tiles");
    let rows = write_dataset(&tiles, &["coarse", "fine", "medium"], 4, 3, 40);
    (tiles, rows)
}

/// Runs the packer binary with a clean environment (no Slurm, no RUST_LOG).
pub fn packer(args: &[&str]) -> Output {
    packer_env(args, &[])
}

pub fn packer_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ballast_testkit::clean(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    ballast_testkit::run(&mut cmd)
}

#[allow(unused_imports)]
pub use ballast_testkit::{stderr, stdout};

/// Runs `packer --tiles T --out O ARGS...` and asserts success.
pub fn pack_ok(tiles: &Path, out: &Path, args: &[&str]) -> Output {
    let mut all = vec![
        "--tiles",
        tiles.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let o = packer(&all);
    assert!(o.status.success(), "packer {all:?} failed: {}", stderr(&o));
    o
}

pub fn pack_args<'a>(tiles: &'a Path, out: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "--tiles",
        tiles.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    all
}

/// Every file under `dir` (relative path → bytes), hidden ones included, lock files not.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    ballast_testkit::tree(dir)
}

#[allow(unused_imports)]
pub use ballast_testkit::mtimes;

/// Sets every shard file's mtime to a fixed past instant, so a rewrite is unmistakable.
pub fn age_shards(dir: &Path) -> SystemTime {
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
    }
    past
}

pub fn shard_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    v.sort();
    v
}

/// Python for interop checks: `BALLAST_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("BALLAST_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
