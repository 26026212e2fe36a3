//! `scorer photos` end to end: the no-skew guarantee, output formats, the class map, the
//! geometry flags and bad photos.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ballast_format::Split;
use ballast_scorer::photo_scorer::{Geometry, PhotoScorer};
use ballast_tiler::photo::DEFAULT_MAX_PIXELS;
use ballast_trainer::classifier::TrainedRun;
use ballast_trainer::data::{CacheInfo, Transfers};
use candle_core::{Device, Tensor};
use common::*;

#[test]
fn scoring_a_photo_equals_evaluating_its_packed_tiles() {
    let f = fixture();
    let rel = val_photos()[0].clone();
    let photo = f.photos.join(&rel);
    let d = scratch("no-skew");
    let (out, tiles_out) = (d.join("scores.json"), d.join("tiles.jsonl"));
    ok(&[
        "photos",
        "--run",
        &s(&f.run),
        "--threads",
        "1",
        "--out",
        &s(&out),
        "--per-tile",
        &s(&tiles_out),
        &s(&photo),
    ]);

    // The photo's val samples in the cache, in window (row-major) order.
    let device = Device::Cpu;
    let run = TrainedRun::load(&f.run, &device).unwrap();
    let cache = CacheInfo::open(&f.cache).unwrap();
    let val = cache
        .load_split(Split::Val, &device, &Transfers::default())
        .unwrap();
    let manifest = ballast_format::manifest::read(&f.tiles.join("manifest.jsonl")).unwrap();
    let at: BTreeMap<String, (u32, u32)> =
        manifest.iter().map(|r| (r.name(), (r.x, r.y))).collect();
    let mut ours: Vec<((u32, u32), usize)> = val
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.photo == rel)
        .map(|(i, s)| (at[s.tile.as_str()], i))
        .collect();
    ours.sort_by_key(|&((x, y), _)| (y, x));
    let ids: Vec<u32> = ours.iter().map(|&(_, i)| i as u32).collect();
    let (images, _) = val
        .gather(&Tensor::new(ids.as_slice(), &device).unwrap())
        .unwrap();

    // 1. The scorer's samples are the packer's bytes, window for window.
    let pixels = ballast_tiler::photo::open(&photo, DEFAULT_MAX_PIXELS)
        .unwrap()
        .pixels;
    let windows = ballast_tiler::windows::grid(pixels.width(), pixels.height(), TILE, TILE);
    assert_eq!(
        windows,
        ours.iter().map(|&(xy, _)| xy).collect::<Vec<_>>(),
        "the scorer cuts the tiler's windows"
    );
    let scorer = PhotoScorer::new(
        &run,
        Geometry {
            tile: TILE,
            stride: TILE,
            sample: SIZE,
        },
        DEFAULT_MAX_PIXELS,
        256,
    )
    .unwrap();
    let cached = images.flatten_all().unwrap().to_vec1::<u8>().unwrap();
    assert_eq!(scorer.samples(&pixels, &windows).unwrap(), cached);

    // 2. The binary's per-tile probabilities are the model's on the cached samples.
    let want = run
        .probabilities(&images)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&tiles_out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), windows.len());
    let classes = run.classes().to_vec();
    let mut worst = 0f32;
    for (line, ((x, y), _)) in lines.iter().zip(&ours) {
        assert_eq!(line["photo"].as_str(), Some(s(&photo).as_str()));
        assert_eq!(
            (line["x"].as_u64(), line["y"].as_u64()),
            (Some(*x as u64), Some(*y as u64))
        );
        let k = ours.iter().position(|(xy, _)| xy == &(*x, *y)).unwrap();
        for (c, name) in classes.iter().enumerate() {
            let got = line["probabilities"][name].as_f64().unwrap() as f32;
            worst = worst.max((got - want[k][c]).abs());
        }
    }
    eprintln!("worst per-tile difference: {worst}");
    assert!(
        worst <= 1e-6,
        "per-tile probabilities differ by up to {worst}"
    );

    // 3. The photo's verdict is the mean of those probabilities.
    let doc = json(&out);
    let p = &doc["photos"][0];
    assert_eq!(p["n_tiles"].as_u64(), Some(windows.len() as u64));
    let mut best = 0;
    for (c, name) in classes.iter().enumerate() {
        let mean = want.iter().map(|r| r[c] as f64).sum::<f64>() / want.len() as f64;
        let got = p["probabilities"][name].as_f64().unwrap();
        assert!((got - mean).abs() <= 1e-6, "{name}: {got} vs {mean}");
        if mean > want.iter().map(|r| r[best] as f64).sum::<f64>() / want.len() as f64 {
            best = c;
        }
    }
    assert_eq!(p["predicted"].as_str(), Some(classes[best].as_str()));
    let digest = ballast_format::digest::of_file(&photo).unwrap();
    assert_eq!(p["digest"].as_str(), Some(digest.as_str()));
    assert_eq!(doc["tile_size"].as_u64(), Some(TILE as u64));
    assert_eq!(doc["run"]["model_digest"].as_str().unwrap().len(), 64);
}

#[test]
fn per_tile_rows_carry_each_windows_gradation() {
    let f = fixture();
    let d = scratch("per-tile-gradation");
    let tiles = d.join("tiles.csv");
    let photo = f.photos.join("g2-medium-fine/g2-medium-fine-0001.jpg");
    ok(&[
        "photos",
        "--run",
        &s(&f.run),
        "--class-map",
        &s(&f.photos.join("class-map.toml")),
        "--per-tile",
        &s(&tiles),
        "-q",
        &s(&photo),
    ]);
    let text = std::fs::read_to_string(&tiles).unwrap();
    let mut lines = text.lines();
    let header = ballast_scorer::csv_text::parse_line(lines.next().unwrap()).unwrap();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (d10, d50, d90) = (col("d10_mm"), col("d50_mm"), col("d90_mm"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| ballast_scorer::csv_text::parse_line(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 15);
    for r in &rows {
        assert_eq!(r.len(), header.len());
        let [a, b, c] = [d10, d50, d90].map(|i| r[i].parse::<f64>().unwrap());
        // Every class curve runs from 0 % to 100 %, so every D-value exists and they rise.
        assert!(a < b && b < c, "{r:?}");
    }
}

#[test]
fn csv_json_and_jsonl_with_a_class_map() {
    let f = fixture();
    let map = f.photos.join("class-map.toml");
    // Default: CSV on stdout, photos sorted by path relative to the single folder.
    let o = ok(&[
        "photos",
        "--run",
        &s(&f.run),
        "--class-map",
        &s(&map),
        "-q",
        &s(&f.photos),
    ]);
    let text = stdout(&o);
    let mut lines = text.lines();
    // synth's map carries sieve curves: the expected curve at the union of their sizes, then
    // the D-values (no envelope in it).
    let sizes = "3,3.75,4,5.5,6.25,7.5,10,12.5,15,20,25,30,40,50,80";
    let passing: Vec<String> = sizes.split(',').map(|s| format!("passing_{s}mm")).collect();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "photo,width,height,n_tiles,predicted,agreement,p_g1-fine,p_g2-medium-fine,\
             p_g3-medium,votes_g1-fine,votes_g2-medium-fine,votes_g3-medium,\
             expected_compaction,top_class_compaction,unit,predicted_label,{},\
             d10_mm,d30_mm,d50_mm,d60_mm,d90_mm,cu,cc,ood_score,flag,digest,error",
            passing.join(",")
        )
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| ballast_scorer::csv_text::parse_line(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0][0], "g1-fine/g1-fine-0000.jpg");
    assert_eq!(rows[11][0], "g3-medium/g3-medium-0003.jpg");
    let values = [97.5, 96.0, 94.5];
    for r in &rows {
        assert_eq!(
            (r[1].as_str(), r[2].as_str(), r[3].as_str()),
            ("480", "320", "15")
        );
        let p: Vec<f64> = r[6..9].iter().map(|v| v.parse().unwrap()).collect();
        let votes: Vec<u64> = r[9..12].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(votes.iter().sum::<u64>(), 15);
        let expected: f64 = p.iter().zip(values).map(|(p, v)| p * v).sum();
        let got: f64 = r[12].parse().unwrap();
        // Probabilities are rounded to 6 decimals: allow for it.
        assert!((got - expected).abs() < 5e-4, "{r:?}");
        let top = ["g1-fine", "g2-medium-fine", "g3-medium"]
            .iter()
            .position(|c| *c == r[4])
            .unwrap();
        assert_eq!(r[13].parse::<f64>().unwrap(), values[top]);
        assert_eq!(r[14], "% of max dry density");
        assert!(r[15].contains("well graded"), "{}", r[15]);
        let agreement: f64 = r[5].parse().unwrap();
        assert!((agreement - votes[top] as f64 / 15.0).abs() < 1e-6);
        // 15 passing columns (a curve, rising), 7 gradation values, ood_score, flag, digest,
        // error; this run has no calibration file, so ood_score and flag are empty.
        let curve: Vec<f64> = r[16..31].iter().map(|v| v.parse().unwrap()).collect();
        assert!(curve.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{curve:?}");
        let d: Vec<f64> = r[31..36].iter().map(|v| v.parse().unwrap()).collect();
        assert!(
            d.windows(2).all(|w| w[0] < w[1]),
            "D10 < D30 < … < D90: {d:?}"
        );
        assert!((3.0..80.0).contains(&d[2]), "D50 {}", d[2]);
        let cu: f64 = r[36].parse().unwrap();
        assert!((cu - d[3] / d[0]).abs() < 1e-4 * cu);
        assert_eq!(
            (r[38].as_str(), r[39].as_str()),
            ("", ""),
            "no novelty check"
        );
        assert_eq!(r[41], "", "no error");
    }

    // JSON and JSONL by extension; the same verdicts.
    let d = scratch("formats");
    let one = f.photos.join("g3-medium/g3-medium-0002.jpg");
    let two = f.photos.join("g1-fine/g1-fine-0001.jpg");
    for ext in ["json", "jsonl"] {
        let out = d.join(format!("scores.{ext}"));
        ok(&[
            "photos",
            "--run",
            &s(&f.run),
            "--class-map",
            &s(&map),
            "--out",
            &s(&out),
            &s(&one),
            &s(&two),
        ]);
        let objects: Vec<serde_json::Value> = if ext == "json" {
            let doc = json(&out);
            assert_eq!(doc["format"], "ballast-scores/1");
            assert_eq!(doc["class_map"]["unit"], "% of max dry density");
            assert_eq!(doc["errors"].as_array().unwrap().len(), 0);
            doc["photos"].as_array().unwrap().clone()
        } else {
            std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        // Argument order.
        assert_eq!(objects[0]["photo"].as_str(), Some(s(&one).as_str()));
        assert_eq!(objects[1]["photo"].as_str(), Some(s(&two).as_str()));
        let csv_row = rows
            .iter()
            .find(|r| r[0] == "g3-medium/g3-medium-0002.jpg")
            .unwrap();
        assert_eq!(objects[0]["predicted"].as_str(), Some(csv_row[4].as_str()));
        let e = objects[0]["compaction"]["expected"].as_f64().unwrap();
        assert!((e - csv_row[12].parse::<f64>().unwrap()).abs() < 1e-5);
    }
    // --format overrides the extension.
    let o = ok(&["photos", "--run", &s(&f.run), "--format", "jsonl", &s(&one)]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["n_tiles"].as_u64(), Some(15));
    assert!(v.get("compaction").is_none());
}

#[test]
fn class_map_errors_are_clear() {
    let f = fixture();
    let d = scratch("maps");
    let photo = s(&f.photos.join("g1-fine/g1-fine-0000.jpg"));
    let run = s(&f.run);
    let csv = d.join("map.csv");
    std::fs::write(
        &csv,
        "class,compaction,unit\ng1-fine,97,%\ng2-medium-fine,96,%\ngravel,90,%\n",
    )
    .unwrap();
    fails(
        &["photos", "--run", &run, "--class-map", &s(&csv), &photo],
        &[
            "class map",
            "map.csv",
            "missing the run's class(es) g3-medium",
            "gravel that the run does not know",
        ],
    );
    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        "unit = \"%\"\n[classes.g1-fine]\ncompaction = \"high\"\n",
    )
    .unwrap();
    fails(
        &["photos", "--run", &run, "--class-map", &s(&bad), &photo],
        &["bad.toml", "compaction must be a number"],
    );
    fails(
        &[
            "photos",
            "--run",
            &run,
            "--class-map",
            &s(&d.join("none.toml")),
            &photo,
        ],
        &["none.toml"],
    );
}

#[test]
fn tile_size_and_stride() {
    let f = fixture();
    let photo = s(&f.photos.join("g2-medium-fine/g2-medium-fine-0001.jpg"));
    let n_tiles = |extra: &[&str]| {
        let mut args = vec![
            "photos",
            "--run",
            f.run.to_str().unwrap(),
            "--format",
            "jsonl",
        ];
        args.extend_from_slice(extra);
        args.push(&photo);
        let o = ok(&args);
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        v["n_tiles"].as_u64().unwrap()
    };
    assert_eq!(n_tiles(&[]), 15, "the run's 96 px grid");
    assert_eq!(n_tiles(&["--tile-size", "160"]), 6);
    // (480-96)/48+1 = 9 by (320-96)/48+1 = 5.
    assert_eq!(n_tiles(&["--stride", "48"]), 45);

    // A run that does not record its tile size needs --tile-size.
    let d = scratch("run-no-tile-size");
    for name in ["config.json", "model.safetensors", "checkpoints.json"] {
        std::fs::copy(f.run.join(name), d.join(name)).unwrap();
    }
    let mut cfg = json(&d.join("config.json"));
    cfg["data"]["tile_sizes"] = serde_json::json!([]);
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    fails_with(&["photos", "--run", &s(&d), &photo], 2, &["--tile-size"]);
    let o = ok(&[
        "photos",
        "--run",
        &s(&d),
        "--tile-size",
        "96",
        "--format",
        "jsonl",
        &photo,
    ]);
    assert!(stdout(&o).contains("\"n_tiles\":15"));
}

#[test]
fn exif_orientation_is_applied() {
    let f = fixture();
    let d = scratch("exif");
    let jpeg = std::fs::read(f.photos.join("g1-fine/g1-fine-0002.jpg")).unwrap();
    let rotated = ballast_testkit::images::with_exif_orientation(&jpeg, 6);
    std::fs::write(d.join("rotated.jpg"), rotated).unwrap();
    let o = ok(&["photos", "--run", &s(&f.run), "--format", "jsonl", &s(&d)]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(480))
    );
    assert_eq!(
        v["n_tiles"].as_u64(),
        Some(15),
        "3 by 5 windows once turned upright"
    );
}

fn write_png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save(path)
        .unwrap();
}

/// A folder with two good photos and four bad ones.
fn mixed_folder(name: &str) -> PathBuf {
    let f = fixture();
    let d = scratch(name);
    for p in ["g1-fine/g1-fine-0000.jpg", "g3-medium/g3-medium-0001.jpg"] {
        std::fs::copy(f.photos.join(p), d.join(p.rsplit('/').next().unwrap())).unwrap();
    }
    write_png(&d.join("tiny.png"), 50, 400);
    std::fs::write(d.join("notes.jpg"), b"this is not a photo").unwrap();
    let jpeg = std::fs::read(f.photos.join("g2-medium-fine/g2-medium-fine-0000.jpg")).unwrap();
    std::fs::write(d.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    d
}

#[test]
fn bad_photos_are_reported_and_the_rest_scored() {
    let f = fixture();
    let d = mixed_folder("mixed");
    let out = d.join("out/scores.csv");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let missing = d.join("gone.jpg");
    let o = ok(&[
        "photos",
        "--run",
        &s(&f.run),
        "--out",
        &s(&out),
        &s(&d),
        &s(&missing),
    ]);
    let err = stderr(&o);
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: BTreeMap<String, Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| ballast_scorer::csv_text::parse_line(l).unwrap())
        .map(|r| (r[0].clone(), r))
        .collect();
    assert_eq!(rows.len(), 6, "{text}");
    let row = |name: &str| &rows[&s(&d.join(name))];
    let error = |name: &str| row(name).last().unwrap().clone();
    for good in ["g1-fine-0000.jpg", "g3-medium-0001.jpg"] {
        assert_eq!(error(good), "");
        assert_eq!(row(good)[3], "15");
    }
    assert_eq!(error("tiny.png"), "50×400 is smaller than the 96 px tile");
    assert_eq!(error("notes.jpg"), "not a JPEG, PNG or TIFF file");
    assert_eq!(error("truncated.jpg"), "truncated JPEG data");
    assert!(
        rows[&s(&missing)]
            .last()
            .unwrap()
            .starts_with("cannot read")
    );
    for name in ["tiny.png", "notes.jpg", "truncated.jpg"] {
        assert!(
            err.contains(&format!("skipped {}: ", s(&d.join(name)))),
            "{err}"
        );
        // Bad rows still carry the file's digest.
        assert_eq!(row(name)[row(name).len() - 2].len(), 64);
    }

    // More bad photos than --max-bad: exit 1 and the earlier output is kept.
    let before = std::fs::read(&out).unwrap();
    fails(
        &[
            "photos",
            "--run",
            &s(&f.run),
            "--max-bad",
            "3",
            "--out",
            &s(&out),
            &s(&d),
            &s(&missing),
        ],
        &[
            "4 of 6 photos could not be scored, more than --max-bad 3",
            "was not written",
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);

    // Only bad photos: exit 1.
    let bad = scratch("all-bad");
    write_png(&bad.join("small.png"), 20, 20);
    std::fs::write(bad.join("empty.tif"), b"").unwrap();
    let e = fails(
        &[
            "photos",
            "--run",
            &s(&f.run),
            "--out",
            &s(&bad.join("x.json")),
            &s(&bad),
        ],
        &["none of the 2 photo(s) could be scored"],
    );
    assert!(e.contains("empty file"), "{e}");
    assert!(!bad.join("x.json").exists());

    // A folder without photos is an error, not an empty success.
    let empty = scratch("no-photos");
    fails(&["photos", "--run", &s(&f.run), &s(&empty)], &["no photos"]);
    // JSON keeps bad photos in `errors`.
    let out = d.join("out/scores.json");
    ok(&["photos", "--run", &s(&f.run), "--out", &s(&out), &s(&d)]);
    let doc = json(&out);
    assert_eq!(doc["photos"].as_array().unwrap().len(), 2);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e["error"].as_str().is_some()));
}

#[test]
fn output_is_deterministic_across_threads() {
    let f = fixture();
    let d = scratch("threads");
    let mut outs = Vec::new();
    for t in ["1", "2"] {
        let out = d.join(format!("t{t}.csv"));
        ok(&[
            "photos",
            "--run",
            &s(&f.run),
            "--threads",
            t,
            "--out",
            &s(&out),
            &s(&f.photos),
        ]);
        outs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}
