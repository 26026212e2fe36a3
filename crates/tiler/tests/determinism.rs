//! Same inputs and parameters give byte-identical output whatever the thread count and however
//! the work is split into jobs.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    photo_tree(&photos, 3, 5, 200, 150);
    // Same stem in two places and two formats, a nested folder, a PNG and a TIFF.
    photo(&photos.join("class0/x.png"), 180, 130, 901);
    photo(&photos.join("class0/x.jpg"), 180, 130, 902);
    photo(&photos.join("class1/2024/x.tif"), 170, 170, 903);
    dir
}

const ARGS: &[&str] = &["--size", "64", "--per-photo", "5", "--val-fraction", "0.3"];

#[test]
fn thread_count_does_not_change_output() {
    let dir = fixture();
    let p = dir.path().join("photos");
    let (a, b) = (dir.path().join("t1"), dir.path().join("t2"));
    run_ok(&p, &a, &[ARGS, &["--threads", "1"]].concat());
    run_ok(&p, &b, &[ARGS, &["--threads", "2"]].concat());
    assert_same_tree(&a, &b);
    // Grid mode too, with overlapping windows.
    let (c, d) = (dir.path().join("g1"), dir.path().join("g2"));
    let grid = ["--size", "48", "--stride", "40"];
    run_ok(&p, &c, &[&grid[..], &["--threads", "1"]].concat());
    run_ok(&p, &d, &[&grid[..], &["--threads", "2"]].concat());
    assert_same_tree(&c, &d);
}

#[test]
fn shards_in_either_order_equal_one_run() {
    let dir = fixture();
    let p = dir.path().join("photos");
    let whole = dir.path().join("whole");
    run_ok(&p, &whole, ARGS);
    assert!(!whole.join(".parts").exists());

    for order in [[0, 1], [1, 0]] {
        let out = dir.path().join(format!("sharded-{}{}", order[0], order[1]));
        let first = run_ok(
            &p,
            &out,
            &[ARGS, &["--shard", &format!("{}/2", order[0])]].concat(),
        );
        assert!(first.contains("waiting for job(s)"), "{first}");
        assert!(!out.join("manifest.jsonl").exists());
        assert!(!out.join("tiler.json").exists());
        run_ok(
            &p,
            &out,
            &[ARGS, &["--shard", &format!("{}/2", order[1])]].concat(),
        );
        assert!(!out.join(".parts").exists(), "parts left behind");
        assert_same_tree(&whole, &out);
    }
}

#[test]
fn slurm_array_variables_stand_in_for_shard() {
    let dir = fixture();
    let p = dir.path().join("photos");
    let whole = dir.path().join("whole");
    run_ok(&p, &whole, ARGS);
    let out = dir.path().join("slurm");
    // A Slurm array 1-3 (SLURM_ARRAY_TASK_MIN=1): task ids 1, 2, 3 are jobs 0, 1, 2 of 3.
    for id in ["3", "1", "2"] {
        let o = tiler()
            .arg("--input")
            .arg(&p)
            .arg("--out")
            .arg(&out)
            .args(ARGS)
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(!out.join(".parts").exists());
    assert_same_tree(&whole, &out);
}

#[test]
fn per_photo_windows_are_reproducible_and_inside() {
    let dir = fixture();
    let p = dir.path().join("photos");
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run_ok(&p, &a, &["--size", "64", "--per-photo", "7", "--seed", "3"]);
    run_ok(&p, &b, &["--size", "64", "--per-photo", "7", "--seed", "3"]);
    assert_same_tree(&a, &b);
    run_ok(&p, &c, &["--size", "64", "--per-photo", "7", "--seed", "4"]);

    let rows = manifest_rows(&a);
    let mut per_photo: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for r in &rows {
        let (x, y, s) = (
            r["x"].as_u64().unwrap(),
            r["y"].as_u64().unwrap(),
            r["size"].as_u64().unwrap(),
        );
        assert_eq!(s, 64);
        assert!(x + s <= r["photo_width"].as_u64().unwrap());
        assert!(y + s <= r["photo_height"].as_u64().unwrap());
        per_photo
            .entry(r["photo"].as_str().unwrap().to_string())
            .or_default()
            .push((x, y));
        // Tiles are PNGs of the window size, and the digest is of the file as written.
        let bytes = std::fs::read(a.join(r["tile"].as_str().unwrap())).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            r["tile_digest"].as_str().unwrap()
        );
    }
    assert_eq!(per_photo.len(), 18);
    assert!(per_photo.values().all(|w| w.len() == 7));
    // Another seed moves the windows but not the split.
    let rows_c = manifest_rows(&c);
    let split_of = |rows: &[serde_json::Value]| -> BTreeSet<(String, String)> {
        rows.iter()
            .map(|r| {
                (
                    r["photo"].as_str().unwrap().to_string(),
                    r["split"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(split_of(&rows), split_of(&rows_c));
    let windows_c: BTreeSet<(u64, u64, String)> = rows_c
        .iter()
        .map(|r| {
            (
                r["x"].as_u64().unwrap(),
                r["y"].as_u64().unwrap(),
                r["photo"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let windows_a: BTreeSet<(u64, u64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["x"].as_u64().unwrap(),
                r["y"].as_u64().unwrap(),
                r["photo"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_ne!(windows_a, windows_c);
}

#[test]
fn reads_jpeg_png_and_tiff_and_keeps_colour() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    let img = texture(130, 70, 5);
    write(&p.join("a/one.png"), &png_bytes(&img));
    write(&p.join("a/two.TIFF"), &tiff_bytes(&img));
    write(&p.join("a/three.jpeg"), &jpeg_bytes(&img));
    let out = dir.path().join("out");
    run_ok(&p, &out, &["--size", "64", "--val-fraction", "0"]);
    let rows = manifest_rows(&out);
    assert_eq!(rows.len(), 3 * 2);
    // Lossless inputs give exactly the source pixels.
    for r in &rows {
        let photo = r["photo"].as_str().unwrap();
        let tile = image::open(out.join(r["tile"].as_str().unwrap())).unwrap();
        assert_eq!(tile.color(), image::ColorType::Rgb8);
        if photo.ends_with(".jpeg") {
            continue;
        }
        let (x, y) = (
            r["x"].as_u64().unwrap() as u32,
            r["y"].as_u64().unwrap() as u32,
        );
        let want = image::imageops::crop_imm(&img, x, y, 64, 64).to_image();
        assert_eq!(tile.to_rgb8(), want, "{photo} at ({x},{y})");
    }
    let summary = read_json(&out.join("tiler.json"));
    assert_eq!(summary["counts"]["photos_tiled"], 3);
    assert_eq!(summary["counts"]["tiles"], 6);
    assert_eq!(summary["params"]["png_compression"], "fast");
}

#[test]
fn grayscale_photos_give_gray_tiles_and_compression_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("photos");
    let gray = image::GrayImage::from_fn(100, 100, |x, y| image::Luma([(x * 2 + y) as u8]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageLuma8(gray.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    write(&p.join("g/a.png"), &bytes);
    let out = dir.path().join("out");
    run_ok(
        &p,
        &out,
        &[
            "--size",
            "50",
            "--png-compression",
            "best",
            "--val-fraction",
            "0",
        ],
    );
    let rows = manifest_rows(&out);
    assert_eq!(rows.len(), 4);
    let t = image::open(out.join(rows[3]["tile"].as_str().unwrap())).unwrap();
    assert_eq!(t.color(), image::ColorType::L8);
    assert_eq!(
        t.to_luma8(),
        image::imageops::crop_imm(&gray, 50, 50, 50, 50).to_image()
    );
    assert_eq!(
        read_json(&out.join("tiler.json"))["params"]["png_compression"],
        "best"
    );
}
