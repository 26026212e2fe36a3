//! End-to-end: the real binary builds a cache whose contents, order, statistics and bytes are
//! what the contract says, whatever the thread count or job split.

mod common;

use std::collections::HashMap;

use ballast_format::Split;
use ballast_format::cache_files::{CacheIndex, PackerSummary};
use ballast_format::parts::PARTS_DIR;
use ballast_format::shard_file;
use ballast_packer::preprocess::{Jitter, sample_from_pixels};
use common::*;
use sha2::{Digest, Sha256};

fn rgb_of(tiles: &std::path::Path, rel: &str) -> (u32, Vec<u8>) {
    let bytes = std::fs::read(tiles.join(rel)).unwrap();
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, buf)
}

#[test]
fn contents_order_labels_provenance_and_stats() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, rows) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(
        &tiles,
        &out,
        &["--size", "16", "--copies", "2", "--shards", "2", "-q"],
    );

    let index = CacheIndex::read(&out).unwrap();
    assert_eq!(index.classes, vec!["coarse", "fine", "medium"]);
    assert_eq!(index.size, 16);
    assert_eq!(index.params.luma, "bt601-pil");
    assert_eq!(index.params.resize, "pil-bilinear-antialias");
    assert_eq!(
        index.manifest_digest,
        ballast_format::digest::of_file(&tiles.join("manifest.jsonl")).unwrap()
    );
    let files: Vec<_> = index.shards.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "train-00000-of-00002.safetensors",
            "train-00001-of-00002.safetensors",
            "val-00000-of-00002.safetensors",
            "val-00001-of-00002.safetensors"
        ]
    );
    assert_eq!(shard_files(&out), files);
    assert!(!out.join(PARTS_DIR).exists());
    assert_eq!(index.splits.train.samples, 27 * 2);
    assert_eq!(index.splits.train.tiles, 27);
    assert_eq!(index.splits.train.photos, 9);
    assert_eq!(index.splits.train.per_class, vec![18, 18, 18]);
    assert_eq!(index.splits.val.samples, 9);
    assert_eq!(index.splits.val.per_class, vec![3, 3, 3]);

    let by_tile: HashMap<&str, &ballast_format::manifest::TileRecord> = rows
        .iter()
        .map(|r| (r.tile.as_deref().unwrap(), r))
        .collect();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    let mut seen = 0;
    for e in &index.shards {
        let data = shard_file::read(&out.join(&e.file), 3).unwrap();
        assert_eq!(data.len() as u64, e.samples);
        // One metadata key (a HashMap-ordered multi-key header would not be reproducible).
        let bytes = std::fs::read(out.join(&e.file)).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta.keys().collect::<Vec<_>>(), ["ballast"]);
        assert_eq!(
            ballast_format::digest::of_file(&out.join(&e.file)).unwrap(),
            e.digest
        );
        // Order: (photo, manifest row, copy).
        let keys: Vec<(String, usize, u32)> = (0..data.len())
            .map(|i| {
                let row = rows
                    .iter()
                    .position(|r| r.name() == data.meta.tiles[i])
                    .unwrap();
                (data.meta.photos[i].clone(), row, data.meta.copies[i])
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(
            keys, sorted,
            "{} is not in (photo, row, copy) order",
            e.file
        );
        for i in 0..data.len() {
            let rec = by_tile[data.meta.tiles[i].as_str()];
            assert_eq!(rec.split, e.split);
            assert_eq!(data.meta.photos[i], rec.photo);
            assert_eq!(index.classes[data.labels[i] as usize], rec.class);
            let sample = &data.images[i * 256..(i + 1) * 256];
            let (px, rgb) = rgb_of(&tiles, rec.tile.as_deref().unwrap());
            let mut want = sample_from_pixels(px, px, 3, &rgb, 16).unwrap();
            if e.split == Split::Train {
                Jitter::draw(0.25, 0, rec.window_key(), data.meta.copies[i]).apply(&mut want);
                for &p in sample {
                    sum += p as f64;
                    sq += (p as f64).powi(2);
                    n += 1.0;
                }
            } else {
                assert_eq!(data.meta.copies[i], 0);
            }
            assert_eq!(sample, &want[..], "sample {i} of {}", e.file);
            seen += 1;
        }
        // Copies of one train tile differ.
        if e.split == Split::Train && data.len() >= 2 {
            assert_eq!(data.meta.tiles[0], data.meta.tiles[1]);
            assert_ne!(data.images[..256], data.images[256..512]);
        }
    }
    assert_eq!(seen, 27 * 2 + 9);
    let mean = sum / n / 255.0;
    let std = ((sq / n) - (sum / n).powi(2)).sqrt() / 255.0;
    assert!((index.mean - mean).abs() < 1e-9, "{} vs {mean}", index.mean);
    assert!((index.std - std).abs() < 1e-6, "{} vs {std}", index.std);

    let summary = PackerSummary::read(&out).unwrap();
    assert_eq!(summary.counts.manifest_tiles, 36);
    assert_eq!(summary.counts.tiles_packed, 36);
    assert_eq!(summary.counts.train_samples, 54);
    assert_eq!(summary.classes[1].class, "fine");
    assert_eq!(summary.classes[1].train_tiles, 9);
    assert_eq!(summary.classes[1].val_samples, 3);
    assert!(summary.bad_tiles.is_empty());
}

#[test]
fn threads_and_job_splits_give_identical_bytes() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    let args = ["--size", "16", "--copies", "2", "--shards", "3", "-q"];
    let one = root.path().join("t1");
    let two = root.path().join("t2");
    pack_ok(&tiles, &one, &[&args[..], &["--threads", "1"]].concat());
    pack_ok(&tiles, &two, &[&args[..], &["--threads", "2"]].concat());
    let reference = snapshot(&one);
    assert_eq!(reference.len(), 6 + 2);
    assert_eq!(reference, snapshot(&two), "1 vs 2 threads");

    for order in [[0, 1], [1, 0]] {
        let out = root.path().join(format!("split{}{}", order[0], order[1]));
        for (step, i) in order.iter().enumerate() {
            let shard = format!("{i}/2");
            let o = pack_ok(
                &tiles,
                &out,
                &[&args[..2], &args[2..6], &["--shard", &shard]].concat(),
            );
            let log = stderr(&o);
            if step == 0 {
                // First job: shards written, index pending.
                assert!(!out.join("index.json").exists());
                assert!(out.join(PARTS_DIR).is_dir());
                let e = CacheIndex::read(&out).unwrap_err().to_string();
                assert!(e.contains("has not finished"), "{e}");
                assert!(log.contains("waiting for jobs"), "{log}");
            }
        }
        assert_eq!(
            reference,
            snapshot(&out),
            "--shard split {order:?} vs one run"
        );
    }

    // Slurm array variables work like --shard.
    let out = root.path().join("slurm");
    for i in ["5", "6"] {
        let mut a = pack_args(&tiles, &out, &args);
        a.retain(|x| *x != "-q");
        let o = packer_env(
            &a,
            &[
                ("SLURM_ARRAY_TASK_ID", i),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
                ("SLURM_ARRAY_TASK_MIN", "5"),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        if i == "5" {
            assert!(stderr(&o).contains("job 0/2"), "{}", stderr(&o));
        }
    }
    assert_eq!(reference, snapshot(&out), "Slurm jobs vs one run");

    // More jobs than shards: idle jobs still finish the index.
    let out = root.path().join("many");
    for i in 0..8 {
        pack_ok(
            &tiles,
            &out,
            &[&args[..], &["--shard", &format!("{i}/8")]].concat(),
        );
    }
    assert_eq!(reference, snapshot(&out), "8 jobs vs one run");
}

#[test]
fn shards_load_in_python_to_the_same_arrays() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &["--size", "32", "--shards", "2", "-q"]);
    let script = repo_root().join("scripts/check_shards.py");
    let py = python();
    let o = std::process::Command::new(&py)
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {py}: {e}; run scripts/test.sh, which installs numpy and safetensors"
            )
        });
    assert!(
        o.status.success(),
        "{py} scripts/check_shards.py failed (if numpy/safetensors are missing, run scripts/test.sh, \
         which installs numpy and safetensors, or set BALLAST_PYTHON): {}",
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let index = CacheIndex::read(&out).unwrap();
    assert_eq!(
        report["shards"].as_object().unwrap().len(),
        index.shards.len()
    );
    for e in &index.shards {
        let data = shard_file::read(&out.join(&e.file), 3).unwrap();
        let mut lbytes = Vec::new();
        for l in &data.labels {
            lbytes.extend_from_slice(&l.to_le_bytes());
        }
        let r = &report["shards"][&e.file];
        assert_eq!(r["n"], e.samples);
        assert_eq!(
            r["images_sha256"],
            format!("{:x}", Sha256::digest(&data.images))
        );
        assert_eq!(r["labels_sha256"], format!("{:x}", Sha256::digest(&lbytes)));
        let counts: Vec<u64> = serde_json::from_value(r["label_counts"].clone()).unwrap();
        assert_eq!(counts, e.per_class);
    }
}

#[test]
fn sizes_32_and_8_work_and_7_is_a_usage_error() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    for size in ["32", "8"] {
        let out = root.path().join(format!("s{size}"));
        pack_ok(&tiles, &out, &["--size", size, "--jitter", "0", "-q"]);
        let index = CacheIndex::read(&out).unwrap();
        let s: usize = size.parse().unwrap();
        let data = shard_file::read(&out.join(&index.shards[0].file), 3).unwrap();
        assert_eq!(data.images.len(), data.len() * s * s);
        assert_eq!(index.shards.len(), 2, "one shard per split by default");
    }
    let out = root.path().join("s7");
    let o = packer(&pack_args(&tiles, &out, &["--size", "7"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--size"), "{}", stderr(&o));
    assert!(!out.exists());
    for bad in [
        ["--jitter", "1.5"],
        ["--copies", "0"],
        ["--shards", "0"],
        ["--shard", "2/2"],
    ] {
        let o = packer(&pack_args(&tiles, &out, &bad));
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

#[test]
fn jitter_zero_stores_unjittered_train_samples_and_warns_about_copies() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, rows) = standard(root.path());
    let out = root.path().join("cache");
    let o = pack_ok(
        &tiles,
        &out,
        &["--size", "16", "--jitter", "0", "--copies", "2"],
    );
    assert!(stderr(&o).contains("identical copies"), "{}", stderr(&o));
    let index = CacheIndex::read(&out).unwrap();
    let data = shard_file::read(&out.join(&index.shards[0].file), 3).unwrap();
    let rec = rows
        .iter()
        .find(|r| r.name() == data.meta.tiles[0])
        .unwrap();
    let (px, rgb) = rgb_of(&tiles, rec.tile.as_deref().unwrap());
    let want = sample_from_pixels(px, px, 3, &rgb, 16).unwrap();
    assert_eq!(&data.images[..256], &want[..]);
    assert_eq!(&data.images[256..512], &want[..]);
}
