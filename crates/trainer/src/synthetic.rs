//! A synthetic tensor cache (oriented noisy stripes, one orientation per class), written in the
//! packer's exact format. For tests, benchmarks and the GPU check, where running the real
//! synth → tiler → packer chain is not possible or not the point.

use std::path::Path;

use ballast_format::cache_files::{
    CACHE_FORMAT, CacheIndex, INDEX_FILE, PackerParams, ShardEntry, SplitStats, SplitsStats,
};
use ballast_format::rng::SeededRng;
use ballast_format::shard_file::{self, SHARD_FORMAT, ShardMeta};
use ballast_format::{Split, atomic};

use crate::error::{Result, TrainError};

#[derive(Clone, Debug)]
pub struct SynthCache {
    pub size: u32,
    pub classes: usize,
    pub train_per_class: usize,
    pub val_per_class: usize,
    /// Shards per split.
    pub shards: u32,
    /// Gaussian pixel noise (u8 scale); larger is harder.
    pub noise: f64,
    pub seed: u64,
}

impl Default for SynthCache {
    fn default() -> Self {
        SynthCache {
            size: 32,
            classes: 4,
            train_per_class: 64,
            val_per_class: 16,
            shards: 2,
            noise: 20.0,
            seed: 0,
        }
    }
}

/// One sample of class `class`: stripes at angle class·π/classes (± a little), random
/// frequency, phase, contrast and brightness, plus noise.
pub fn sample(spec: &SynthCache, split: Split, index: usize, class: usize) -> Vec<u8> {
    let mut rng = SeededRng::for_key(
        "trainer.synthetic",
        spec.seed,
        &[split.as_str().as_bytes(), &(index as u64).to_le_bytes()],
    );
    let s = spec.size as usize;
    let step = std::f64::consts::PI / spec.classes as f64;
    let angle = class as f64 * step + rng.uniform(-0.2, 0.2) * step;
    let cycles = rng.uniform(2.5, 4.5);
    let phase = rng.uniform(0.0, std::f64::consts::TAU);
    let amp = rng.uniform(35.0, 60.0);
    let base = rng.uniform(100.0, 150.0);
    let (c, sn) = (angle.cos(), angle.sin());
    let k = std::f64::consts::TAU * cycles / s as f64;
    let mut out = Vec::with_capacity(s * s);
    for y in 0..s {
        for x in 0..s {
            let t = (x as f64 * c + y as f64 * sn) * k + phase;
            let v = base + amp * t.sin() + spec.noise * rng.normal();
            out.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// Writes shards and index.json to `dir`; returns the index.
pub fn write(dir: &Path, spec: &SynthCache) -> Result<CacheIndex> {
    if spec.classes < 1 || spec.size == 0 || spec.shards == 0 {
        return Err(TrainError::config(
            "synthetic cache needs classes, size and shards ≥ 1",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let classes: Vec<String> = (0..spec.classes).map(|c| format!("class{c}")).collect();
    let mut shards = Vec::new();
    let mut splits = SplitsStats::default();
    for (split, per_class) in [
        (Split::Train, spec.train_per_class),
        (Split::Val, spec.val_per_class),
    ] {
        let total = per_class * spec.classes;
        let mut per_split_class = vec![0u64; spec.classes];
        for i in 0..spec.shards {
            let lo = total * i as usize / spec.shards as usize;
            let hi = total * (i as usize + 1) / spec.shards as usize;
            let (mut images, mut labels) = (Vec::new(), Vec::new());
            let mut meta = ShardMeta {
                format: SHARD_FORMAT.into(),
                split,
                index: i,
                count: spec.shards,
                size: spec.size,
                classes: classes.clone(),
                tiles: Vec::new(),
                photos: Vec::new(),
                copies: Vec::new(),
            };
            let mut per_class_counts = vec![0u64; spec.classes];
            let (mut s_sum, mut s_sq) = (0u64, 0u64);
            for j in lo..hi {
                let class = j % spec.classes;
                let img = sample(spec, split, j, class);
                for &v in &img {
                    s_sum += v as u64;
                    s_sq += (v as u64) * (v as u64);
                }
                images.extend_from_slice(&img);
                labels.push(class as i64);
                per_class_counts[class] += 1;
                meta.tiles
                    .push(format!("{split}/{}/synth-{j:06}.png", classes[class]));
                meta.photos
                    .push(format!("{}/photo-{:04}.png", classes[class], j / 8));
                meta.copies.push(0);
            }
            let file = shard_file::file_name(split, i, spec.shards);
            let (digest, bytes) =
                shard_file::write(&dir.join(&file), &images, &labels, spec.size, &meta)?;
            for (a, b) in per_split_class.iter_mut().zip(&per_class_counts) {
                *a += b;
            }
            let inputs = ballast_format::digest::of_bytes(
                format!("synthetic-{}-{file}", spec.seed).as_bytes(),
            );
            shards.push(ShardEntry {
                file,
                split,
                index: i,
                count: spec.shards,
                samples: labels.len() as u64,
                bytes,
                digest,
                inputs,
                per_class: per_class_counts,
                pixel_sum: s_sum,
                pixel_sq_sum: s_sq,
            });
        }
        let stats = SplitStats {
            samples: total as u64,
            tiles: total as u64,
            photos: total.div_ceil(8) as u64,
            per_class: per_split_class,
        };
        match split {
            Split::Train => splits.train = stats,
            Split::Val => splits.val = stats,
        }
    }
    let (mean, std) =
        ballast_format::cache_files::train_moments(&shards, spec.size).unwrap_or((0.5, 0.25));
    let index = CacheIndex {
        format: CACHE_FORMAT.into(),
        classes,
        size: spec.size,
        channels: 1,
        jitter: 0.0,
        copies: 1,
        seed: spec.seed,
        manifest_digest: "synthetic".into(),
        tile_sizes: Vec::new(),
        params: PackerParams {
            size: spec.size,
            jitter: 0.0,
            copies: 1,
            seed: spec.seed,
            train_shards: spec.shards,
            val_shards: spec.shards,
            luma: "synthetic".into(),
            resize: "synthetic".into(),
        },
        mean,
        std,
        splits,
        shards,
    };
    atomic::write_json(&dir.join(INDEX_FILE), &index)?;
    Ok(index)
}
