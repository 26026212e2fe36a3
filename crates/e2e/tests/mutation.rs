//! Seeded mutation of every contract file a stage reads (issue #11): real shards, index.json,
//! manifests, config.json and class maps, rewritten thousands of times in-process (bytes
//! flipped, cut, inserted; JSON fields replaced by extreme, negative, fractional, huge or
//! mistyped values, or dropped). Every reader must answer with its value or a typed error that
//! names the file — never a panic, an abort or a hang.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use ballast_format::rng::SeededRng;
use serde_json::{Value, json};

/// Mutations per file kind (each a fresh rewrite of the original).
const ROUNDS: usize = 600;

fn mutate_bytes(rng: &mut SeededRng, good: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => b.truncate(rng.below(b.len() as u64) as usize),
        2 => {
            let i = rng.below(b.len() as u64 + 1) as usize;
            let junk: Vec<u8> = (0..rng.below(16) + 1)
                .map(|_| rng.below(256) as u8)
                .collect();
            b.splice(i..i, junk);
        }
        3 => {
            // Overwrite a run of bytes with one value (0x00, 0xFF, a digit, a quote).
            let v = [0u8, 0xFF, b'9', b'"', b'-'][rng.below(5) as usize];
            let i = rng.below(b.len() as u64) as usize;
            let n = (rng.below(12) as usize + 1).min(b.len() - i);
            b[i..i + n].fill(v);
        }
        _ => {
            let i = rng.below(b.len() as u64) as usize;
            b.remove(i);
        }
    }
    b
}

/// Values that break naive readers: huge, negative, fractional, non-ASCII, mistyped.
fn nasty(rng: &mut SeededRng) -> Value {
    let pick = [
        json!(u64::MAX),
        json!(1u64 << 62),
        json!(4294967296u64),
        json!(-1),
        json!(0),
        json!(1e308),
        json!(-1e308),
        json!(0.5),
        json!(""),
        json!("é€😀".repeat(20)),
        json!("../../etc/passwd"),
        json!("/abs/path"),
        json!(null),
        json!([]),
        json!({}),
        json!(true),
        json!([u64::MAX, u64::MAX, u64::MAX, u64::MAX]),
    ];
    pick[rng.below(pick.len() as u64) as usize].clone()
}

/// Every path to a scalar or container inside `v`.
fn leaves(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(k.clone());
                leaves(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate().take(6) {
                at.push(i.to_string());
                leaves(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn slot<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k).unwrap(),
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => unreachable!(),
    })
}

fn mutate_json(rng: &mut SeededRng, good: &Value) -> Value {
    let mut v = good.clone();
    let mut paths = Vec::new();
    leaves(&v, &mut Vec::new(), &mut paths);
    for _ in 0..=rng.below(3) {
        let p = &paths[rng.below(paths.len() as u64) as usize];
        if p.is_empty() {
            continue;
        }
        if rng.below(6) == 0 {
            // Drop the field (or array element).
            let (last, parent) = p.split_last().unwrap();
            match slot(&mut v, parent) {
                Value::Object(m) => {
                    m.remove(last);
                }
                Value::Array(a) => {
                    let i: usize = last.parse().unwrap();
                    if i < a.len() {
                        a.remove(i);
                    }
                }
                _ => {}
            }
            // Paths below may be gone now.
            break;
        }
        *slot(&mut v, p) = nasty(rng);
        break;
    }
    v
}

/// Runs `read` on every mutation of `file`; a panic fails the test, an error must name the
/// file. Returns (accepted, refused).
fn hammer(
    kind: &str,
    file: &Path,
    good: &[u8],
    json: bool,
    read: &dyn Fn() -> Result<(), String>,
) -> (usize, usize) {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let parsed: Option<Value> = json.then(|| serde_json::from_slice(good).unwrap());
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let mut rng = SeededRng::for_key("ballast.mutation-test", round as u64, &[kind.as_bytes()]);
        let bytes = match (&parsed, rng.below(2)) {
            (Some(v), 0) => serde_json::to_vec_pretty(&mutate_json(&mut rng, v)).unwrap(),
            _ => mutate_bytes(&mut rng, good),
        };
        std::fs::write(file, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(read)) {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(e)) => {
                assert!(
                    e.contains(&name) || e.contains(&file.parent().unwrap().display().to_string()),
                    "{kind} round {round}: error does not name {name}: {e}"
                );
                refused += 1;
            }
            Err(_) => {
                let keep = std::env::temp_dir().join(format!("ballast-mutation-{kind}-{round}"));
                let _ = std::fs::write(&keep, &bytes);
                panic!(
                    "{kind} round {round}: the reader panicked (input kept in {})",
                    keep.display()
                );
            }
        }
    }
    std::fs::write(file, good).unwrap();
    assert!(
        refused > ROUNDS / 4,
        "{kind}: mutations hardly ever refused ({refused})"
    );
    (accepted, refused)
}

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A real cache made by the packer's own code path: synthetic shards via the trainer's
/// writer (index, shards, digests as the packer writes them).
fn cache(dir: &Path) -> std::path::PathBuf {
    let c = dir.join("cache");
    ballast_trainer::synthetic::write(
        &c,
        &ballast_trainer::synthetic::SynthCache {
            size: 8,
            classes: 3,
            train_per_class: 6,
            val_per_class: 2,
            shards: 2,
            noise: 10.0,
            seed: 1,
        },
    )
    .unwrap();
    c
}

#[test]
fn shards_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let c = cache(t.path());
    let file = c.join("train-00000-of-00002.safetensors");
    let good = std::fs::read(&file).unwrap();
    hammer("shard", &file, &good, false, &|| {
        ballast_format::shard_file::read(&file, 3)
            .map(|_| ())
            .map_err(e2s)?;
        ballast_format::shard_file::read_meta(&file)
            .map(|_| ())
            .map_err(e2s)
    });
}

#[test]
fn index_json_never_panics_in_verify_or_the_trainer() {
    let t = tempfile::tempdir().unwrap();
    let c = cache(t.path());
    let file = c.join("index.json");
    let good = std::fs::read(&file).unwrap();
    let (accepted, _) = hammer("index", &file, &good, true, &|| {
        // verify reports problems as lines and fails only on an unparsable index; whatever
        // it says, the trainer then loads the cache or refuses it.
        let _ = ballast_packer::verify::verify(&c).map_err(e2s)?;
        let info = ballast_trainer::data::CacheInfo::open(&c).map_err(e2s)?;
        ballast_trainer::data::DeviceCache::load(info, &candle_core::Device::Cpu).map_err(e2s)?;
        Ok(())
    });
    // Only mutations that leave the meaning intact (whitespace, an unused field) get through.
    assert!(accepted < ROUNDS / 2, "{accepted} mutated indexes accepted");
}

#[test]
fn manifests_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let tiles = t.path().join("tiles");
    std::fs::create_dir_all(&tiles).unwrap();
    let rows: Vec<ballast_format::manifest::TileRecord> = (0..4u32)
        .map(|i| ballast_format::manifest::TileRecord {
            tile: Some(format!("train/a/p{i}-00000000_x00000_y00000_s8.png")),
            photo: format!("a/p{i}.jpg"),
            class: ["a", "b"][i as usize % 2].into(),
            split: [ballast_format::Split::Train, ballast_format::Split::Val][i as usize / 3],
            x: 0,
            y: 0,
            size: 8,
            photo_digest: ballast_format::digest::of_bytes(&[i as u8]),
            tile_digest: Some(ballast_format::digest::of_bytes(&[i as u8, 1])),
            photo_width: 16,
            photo_height: 16,
        })
        .collect();
    let file = tiles.join("manifest.jsonl");
    ballast_format::manifest::write(&file, &rows).unwrap();
    let good = std::fs::read(&file).unwrap();
    hammer("manifest", &file, &good, false, &|| {
        let settings = ballast_packer::Settings {
            size: 8,
            jitter: 0.1,
            copies: 2,
            seed: 0,
            shards: None,
        };
        ballast_packer::plan::Plan::from_tiles(&tiles, &settings)
            .map(|_| ())
            .map_err(e2s)
    });
    // Field mutations of one row, as JSON.
    let line = serde_json::to_value(&rows[0]).unwrap();
    let rest =
        String::from_utf8(good[good.iter().position(|&b| b == b'\n').unwrap()..].to_vec()).unwrap();
    for round in 0..ROUNDS {
        let mut rng = SeededRng::for_key("ballast.mutation-test.row", round as u64, &[]);
        let row = mutate_json(&mut rng, &line);
        std::fs::write(
            &file,
            format!("{}{rest}", serde_json::to_string(&row).unwrap()),
        )
        .unwrap();
        let r = catch_unwind(|| {
            let s = ballast_packer::Settings {
                size: 8,
                jitter: 0.1,
                copies: 2,
                seed: 0,
                shards: None,
            };
            ballast_packer::plan::Plan::from_tiles(&tiles, &s)
                .map(|_| ())
                .map_err(e2s)
        });
        match r {
            Ok(Err(e)) => assert!(e.contains("manifest.jsonl"), "round {round}: {e}"),
            Ok(Ok(())) => {}
            Err(_) => panic!("manifest row round {round} panicked: {row}"),
        }
    }
}

#[test]
fn run_config_and_class_maps_never_panic() {
    let t = tempfile::tempdir().unwrap();
    // config.json as the trainer writes it.
    #[derive(clap::Parser)]
    struct A {
        #[command(flatten)]
        a: ballast_trainer::args::TrainArgs,
    }
    let args = <A as clap::Parser>::parse_from(["t", "--cache", "c", "--run", "r"]).a;
    let config = ballast_trainer::run_files::RunConfig {
        format: ballast_trainer::run_files::RUN_FORMAT.into(),
        identity: "0".repeat(64),
        spec: args.spec_with(1, 32, 3),
        data: ballast_trainer::run_files::DataRecord {
            cache: "c".into(),
            index_digest: "1".repeat(64),
            classes: vec!["a".into(), "b".into(), "c".into()],
            size: 32,
            mean: 0.5,
            std: 0.2,
            train_samples: 10,
            val_samples: 3,
            load_image_bytes: 13 * 1024,
            luma: "bt601-pil".into(),
            resize: "pil-bilinear-antialias".into(),
            tile_sizes: vec![500],
        },
        threads: 1,
    };
    let file = t.path().join("config.json");
    config.write(&file).unwrap();
    let good = std::fs::read(&file).unwrap();
    hammer("config", &file, &good, true, &|| {
        let c = ballast_trainer::run_files::RunConfig::read(&file).map_err(e2s)?;
        // What a loader does next with it: check the spec and size the model.
        c.spec
            .check()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        c.spec
            .model
            .param_count()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(())
    });

    let classes: Vec<String> = ["coarse", "fine"].map(String::from).to_vec();
    let maps: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "map.toml",
            "[classes.coarse]\ncompaction = 92.5\nunit = \"%\"\n\n[classes.fine]\ncompaction = 97\nunit = \"%\"\n",
        ),
        (
            "map.csv",
            "class,compaction,unit\ncoarse,92.5,%\nfine,97,%\n",
        ),
    ]);
    for (name, text) in maps {
        let file = t.path().join(name);
        std::fs::write(&file, text).unwrap();
        ballast_scorer::class_map::ClassMap::load(&file, &classes).unwrap();
        hammer(name, &file, text.as_bytes(), false, &|| {
            ballast_scorer::class_map::ClassMap::load(&file, &classes)
                .map(|_| ())
                .map_err(e2s)
        });
    }
}
