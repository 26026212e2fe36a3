//! `tiler --tile-files none` (issue #13): the manifest and summary without tile files, and the
//! packer cutting the windows straight from the photos. A sample's identity is its window, so
//! both paths must give the very same `images` and `labels`.

use std::fs;
use std::path::Path;

use ballast_e2e::{json, mtimes, ok, stage, synth_photos, tree};
use ballast_format::cache_files::CacheIndex;
use ballast_format::shard_file;
use ballast_testkit::images;
use ballast_testkit::process::{code, stderr};

/// Synth photos plus the layouts synth does not make: a PNG photo, a grayscale JPEG and a JPEG
/// whose EXIF orientation turns it (the windows are placed on the turned photo).
fn photos(dir: &Path) {
    synth_photos(dir, 3, 4, 400, 272, 5);
    images::photo(&dir.join("class0/extra.png"), 300, 260, 17);
    let gray = image::DynamicImage::ImageRgb8(images::texture(280, 300, 23)).to_luma8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&gray)
        .unwrap();
    images::write(&dir.join("class1/gray.jpg"), &jpeg);
    let turned = images::jpeg_bytes(&images::texture(320, 220, 29));
    images::write(
        &dir.join("class2/turned.jpg"),
        &images::with_exif_orientation(&turned, 6),
    );
}

fn tile(photos: &Path, out: &Path, extra: &[&str]) {
    ok(stage("tiler")
        .arg("--input")
        .arg(photos)
        .arg("--out")
        .arg(out)
        .args(["--size", "96", "--per-photo", "6", "--val-fraction", "0.3"])
        .args(["--threads", "2", "-q"])
        .args(extra));
}

fn pack(tiles: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = stage("packer");
    c.arg("--tiles").arg(tiles).arg("--out").arg(out);
    c.args(["--size", "24", "--copies", "2", "--shards", "2", "-q"]);
    c.args(extra);
    c.output().expect("run packer")
}

/// Every shard's tensors by file name: (images, labels).
fn tensors(cache: &Path) -> Vec<(String, Vec<u8>, Vec<i64>)> {
    let index = CacheIndex::read(cache).unwrap();
    index
        .shards
        .iter()
        .map(|e| {
            let d = shard_file::read(&cache.join(&e.file), index.classes.len()).unwrap();
            (e.file.clone(), d.images, d.labels)
        })
        .collect()
}

/// Manifest rows without the tile-file fields.
fn windows(tiles: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(tiles.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("tile");
            o.remove("tile_digest");
            v
        })
        .collect()
}

#[test]
fn windows_cut_from_photos_are_the_png_tiles_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let p = w.join("photos");
    photos(&p);
    tile(&p, &w.join("tiles-png"), &[]);
    tile(&p, &w.join("tiles-none"), &["--tile-files", "none"]);

    // The same windows, split and counts; no tile files, and the input recorded.
    let (png, none) = (w.join("tiles-png"), w.join("tiles-none"));
    assert_eq!(windows(&png), windows(&none));
    let rows = fs::read_to_string(none.join("manifest.jsonl")).unwrap();
    assert!(!rows.contains("\"tile\""), "{rows}");
    assert_eq!(rows.lines().count(), 15 * 6);
    let listed: Vec<String> = tree(&none).into_keys().collect();
    assert!(
        listed.iter().all(|f| !f.ends_with(".png")),
        "tile files written: {listed:?}"
    );
    let (sp, sn) = (
        json(&png.join("tiler.json")),
        json(&none.join("tiler.json")),
    );
    assert_eq!(sp["counts"], sn["counts"]);
    assert_eq!(sp["classes"], sn["classes"]);
    assert_eq!(sn["params"]["tile_files"], "none");
    assert!(sp.get("input").is_none());
    assert_eq!(
        Path::new(sn["input"].as_str().unwrap()),
        p.canonicalize().unwrap()
    );
    assert!(rows.contains("class2/turned.jpg"), "EXIF photo tiled");

    // Same images and labels, shard by shard, jittered copies included.
    assert!(pack(&png, &w.join("cache-png"), &[]).status.success());
    let o = pack(&none, &w.join("cache-none"), &["--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (
        tensors(&w.join("cache-png")),
        tensors(&w.join("cache-none")),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
    assert!(a.iter().map(|s| s.2.len()).sum::<usize>() > 0);

    // Threads and job splits change no byte; a rerun rebuilds nothing.
    let one = w.join("cache-1");
    assert!(pack(&none, &one, &["--threads", "1"]).status.success());
    assert_eq!(tree(&one), tree(&w.join("cache-none")));
    let split = w.join("cache-split");
    for job in ["0/2", "1/2"] {
        let o = pack(&none, &split, &["--shard", job, "--threads", "1"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(tree(&split), tree(&one));
    let before = mtimes(&one);
    let o = pack(&none, &one, &[]);
    assert!(o.status.success());
    assert_eq!(mtimes(&one), before, "an up-to-date rerun rewrote files");
    ok(stage("packer").arg("verify").arg(&one));
}

#[test]
fn a_changed_moved_or_missing_photo_is_named_and_skipped_only_within_max_bad() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let p = w.join("photos");
    synth_photos(&p, 2, 3, 320, 240, 8);
    let tiles = w.join("tiles");
    tile(&p, &tiles, &["--tile-files", "none"]);
    let cache = w.join("cache");
    assert!(pack(&tiles, &cache, &[]).status.success());
    let good = tree(&cache);

    // Rewritten after tiling: an error naming it, the old cache untouched.
    let rel = "g2-medium-fine/g2-medium-fine-0001.jpg";
    let victim = p.join(rel);
    let original = fs::read(&victim).unwrap();
    images::photo(&victim, 320, 240, 999);
    let o = pack(&tiles, &cache, &["--force"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(rel) && e.contains("changed since tiling") && e.contains("--max-bad"),
        "{e}"
    );
    assert_eq!(tree(&cache), good);

    // One bad photo with 6 windows counts once against --max-bad.
    let o = pack(&tiles, &cache, &["--force", "--max-bad", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = json(&cache.join("packer.json"));
    let bad = summary["bad_tiles"].as_array().unwrap();
    assert_eq!(bad.len(), 6, "{bad:?}");
    assert!(bad.iter().all(|b| b["photo"] == rel));
    fs::write(&victim, &original).unwrap();

    // Moved: --photos finds them (digests still checked); missing: named.
    let moved = w.join("moved");
    fs::rename(&p, &moved).unwrap();
    let o = pack(&tiles, &cache, &["--force"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
    let o = pack(
        &tiles,
        &cache,
        &["--force", "--photos", moved.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tree(&cache), good);
}

#[test]
fn switching_to_window_rows_removes_the_old_tiles_and_reruns_are_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let p = w.join("photos");
    synth_photos(&p, 2, 2, 320, 240, 3);
    let tiles = w.join("tiles");
    tile(&p, &tiles, &[]);
    assert!(tree(&tiles).keys().any(|f| f.ends_with(".png")));
    tile(&p, &tiles, &["--tile-files", "none"]);
    assert!(!tree(&tiles).keys().any(|f| f.ends_with(".png")));
    let before = mtimes(&tiles);
    let o = stage("tiler")
        .arg("--input")
        .arg(&p)
        .arg("--out")
        .arg(&tiles)
        .args(["--size", "96", "--per-photo", "6", "--val-fraction", "0.3"])
        .args(["--tile-files", "none"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("up to date"), "{}", stderr(&o));
    assert_eq!(mtimes(&tiles), before);
}

#[test]
fn a_new_photo_rebuilds_only_its_shards_and_equals_a_fresh_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let p = w.join("photos");
    synth_photos(&p, 2, 6, 320, 240, 12);
    let tiles = w.join("tiles");
    // The hash split never moves an old photo, so only the new photo's shard changes.
    let args = ["--tile-files", "none", "--split", "hash"];
    tile(&p, &tiles, &args);
    let cache = w.join("cache");
    assert!(pack(&tiles, &cache, &[]).status.success());
    let before = mtimes(&cache);

    images::photo(&p.join("g1-fine/new.jpg"), 320, 240, 4242);
    tile(&p, &tiles, &args);
    let o = pack(&tiles, &cache, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = mtimes(&cache);
    let rewritten: Vec<&String> = after
        .iter()
        .filter(|(f, t)| f.ends_with(".safetensors") && before.get(*f) != Some(*t))
        .map(|(f, _)| f)
        .collect();
    // The new photo's samples sit in one shard of its split.
    assert_eq!(rewritten.len(), 1, "{rewritten:?}");
    let fresh = w.join("fresh");
    assert!(pack(&tiles, &fresh, &[]).status.success());
    assert_eq!(tree(&cache), tree(&fresh));
}
