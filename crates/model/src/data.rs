//! The tensor cache on the device.
//!
//! Every shard of a split is verified against index.json (BLAKE3 of the file), read once, and
//! the split is uploaded as ONE u8 tensor `[N,1,S,S]` plus a u32 label tensor. After that a
//! batch is an index gather on the device followed by a cast and normalisation there: image
//! bytes cross from host to device only at load time. [`Transfers`] counts what crosses, and
//! the trainer writes the per-epoch image count to metrics.jsonl (it must stay 0).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ballast_format::cache_files::{CacheIndex, ShardEntry};
use ballast_format::rng::SeededRng;
use ballast_format::{Split, digest, shard_file};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::model::Normalizer;

/// Bytes copied from host to device, by kind.
#[derive(Debug, Default)]
pub struct Transfers {
    image_bytes: AtomicU64,
    other_bytes: AtomicU64,
}

impl Transfers {
    /// Image bytes uploaded so far (the cache load, and nothing per batch).
    pub fn image_bytes(&self) -> u64 {
        self.image_bytes.load(Ordering::Relaxed)
    }

    /// Everything else uploaded: labels, epoch permutations, jitter factors, dropout masks.
    pub fn other_bytes(&self) -> u64 {
        self.other_bytes.load(Ordering::Relaxed)
    }

    /// Uploads image bytes. The only way image data reaches a device in this crate.
    fn upload_images(&self, data: Vec<u8>, shape: &[usize], device: &Device) -> Result<Tensor> {
        self.image_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(Tensor::from_vec(data, shape, device)?)
    }

    pub fn upload_u32(&self, data: Vec<u32>, device: &Device) -> Result<Tensor> {
        self.other_bytes
            .fetch_add(4 * data.len() as u64, Ordering::Relaxed);
        let n = data.len();
        Ok(Tensor::from_vec(data, n, device)?)
    }

    pub fn upload_f32(&self, data: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor> {
        self.other_bytes
            .fetch_add(4 * data.len() as u64, Ordering::Relaxed);
        Ok(Tensor::from_vec(data, shape, device)?)
    }

    pub fn count_other(&self, bytes: u64) {
        self.other_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Where one sample came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleSource {
    /// Shard file name and the sample's position in it.
    pub shard: String,
    pub position: usize,
    /// Tile path (relative to the tiles folder), its photo, the jitter copy index.
    pub tile: String,
    pub photo: String,
    pub copy: u32,
}

/// One split of the cache, resident on the device.
pub struct DeviceSplit {
    pub split: Split,
    pub size: usize,
    images: Tensor,
    labels: Tensor,
    /// Labels on the host too (for counts; tiny).
    pub labels_host: Vec<u32>,
    /// Per sample, in the split's order (shards in index order).
    pub sources: Vec<SampleSource>,
}

impl DeviceSplit {
    pub fn len(&self) -> usize {
        self.labels_host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels_host.is_empty()
    }

    /// All images, u8 [N,1,S,S], on the device.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// All labels, u32 [N], on the device.
    pub fn labels(&self) -> &Tensor {
        &self.labels
    }

    /// Samples `start..start+len` in split order (u8 images, u32 labels), without copying
    /// anything from the host.
    pub fn range(&self, start: usize, len: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.images.narrow(0, start, len)?,
            self.labels.narrow(0, start, len)?,
        ))
    }

    /// The samples at `ids` (u32 [B] on the device): a gather on the device.
    pub fn gather(&self, ids: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.images.index_select(ids, 0)?,
            self.labels.index_select(ids, 0)?,
        ))
    }
}

/// The cache's index and its digest.
pub struct CacheInfo {
    pub dir: PathBuf,
    pub index: CacheIndex,
    /// BLAKE3 of index.json's bytes: names the data a run was trained on.
    pub index_digest: String,
}

impl CacheInfo {
    /// Reads and checks `DIR/index.json` (cheap: no shard is opened).
    pub fn open(dir: &Path) -> Result<CacheInfo> {
        let index = CacheIndex::read(dir)?;
        let index_digest = CacheIndex::file_digest(dir)?;
        let path = dir.join(ballast_format::cache_files::INDEX_FILE);
        let bad = |m: String| Err(ModelError::file(&path, m));
        if index.channels != 1 {
            return bad(format!(
                "{} channels; the trainer expects grayscale (1)",
                index.channels
            ));
        }
        if index.size == 0 {
            return bad("sample size 0".into());
        }
        if index.classes.len() < 2 {
            return bad(format!(
                "{} class(es); training needs at least 2",
                index.classes.len()
            ));
        }
        Ok(CacheInfo {
            dir: dir.to_path_buf(),
            index,
            index_digest,
        })
    }

    pub fn normalizer(&self) -> Normalizer {
        Normalizer {
            mean: self.index.mean,
            std: self.index.std,
        }
    }

    pub fn samples(&self, split: Split) -> u64 {
        self.index.shards_of(split).map(|s| s.samples).sum()
    }

    /// Verifies, reads and uploads every shard of `split` to `device` as one tensor.
    pub fn load_split(
        &self,
        split: Split,
        device: &Device,
        transfers: &Transfers,
    ) -> Result<DeviceSplit> {
        let entries: Vec<&ShardEntry> = self.index.shards_of(split).collect();
        let total: u64 = entries
            .iter()
            .fold(0u64, |a, e| a.saturating_add(e.samples));
        let index_path = self.dir.join(ballast_format::cache_files::INDEX_FILE);
        if total == 0 {
            return Err(ModelError::file(
                index_path,
                format!(
                    "the {split} split is empty ({} shard(s), 0 samples): training needs both \
                     a train and a val split (val chooses the best epoch and drives early stopping)",
                    entries.len()
                ),
            ));
        }
        // Capacity from the files as they are on disk, never from counts alone: a crafted
        // index cannot make us reserve more than the shards really hold.
        for e in &entries {
            let path = CacheIndex::shard_path(&self.dir, e);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if path.is_file() && len != e.bytes {
                return Err(ModelError::file(
                    &path,
                    format!(
                        "{len} bytes, index.json says {}: the shard changed after packing \
                         (rerun packer)",
                        e.bytes
                    ),
                ));
            }
        }
        let s = self.index.size as usize;
        let mut images = Vec::with_capacity(total as usize * s * s);
        let mut labels = Vec::with_capacity(total as usize);
        let mut sources = Vec::with_capacity(total as usize);
        for e in entries {
            let shard = self.read_shard(e, split)?;
            images.extend_from_slice(&shard.images);
            labels.extend(shard.labels.iter().map(|&l| l as u32));
            for i in 0..shard.len() {
                sources.push(SampleSource {
                    shard: e.file.clone(),
                    position: i,
                    tile: shard.meta.tiles[i].clone(),
                    photo: shard.meta.photos[i].clone(),
                    copy: shard.meta.copies[i],
                });
            }
        }
        let n = labels.len();
        let images = transfers.upload_images(images, &[n, 1, s, s], device)?;
        let labels_t = transfers.upload_u32(labels.clone(), device)?;
        Ok(DeviceSplit {
            split,
            size: s,
            images,
            labels: labels_t,
            labels_host: labels,
            sources,
        })
    }

    /// One shard, checked against its index entry: digest first, then shapes, dtypes, labels.
    fn read_shard(&self, e: &ShardEntry, split: Split) -> Result<shard_file::ShardData> {
        let path = CacheIndex::shard_path(&self.dir, e);
        if !path.exists() {
            return Err(ModelError::file(
                &path,
                "missing: index.json lists this shard but the file is not there (rerun packer)",
            ));
        }
        let got = digest::of_file(&path)?;
        if got != e.digest {
            return Err(ModelError::file(
                &path,
                format!(
                    "content digest {} differs from index.json's {}: the shard changed after \
                     packing (rerun packer)",
                    &got[..12],
                    e.digest.get(..12).unwrap_or(&e.digest)
                ),
            ));
        }
        let shard = shard_file::read(&path, self.index.classes.len())?;
        let bad = |m: String| Err(ModelError::file(&path, m));
        if shard.size != self.index.size {
            return bad(format!(
                "holds {0}x{0} samples, index.json says {1}x{1}",
                shard.size, self.index.size
            ));
        }
        if shard.meta.split != split {
            return bad(format!(
                "is a {} shard, index.json lists it as {split}",
                shard.meta.split
            ));
        }
        if shard.len() as u64 != e.samples {
            return bad(format!(
                "holds {} samples, index.json says {}",
                shard.len(),
                e.samples
            ));
        }
        if shard.meta.classes != self.index.classes {
            return bad("its class list differs from index.json's".into());
        }
        Ok(shard)
    }
}

/// Train and val splits resident on one device.
pub struct DeviceCache {
    pub info: CacheInfo,
    pub train: DeviceSplit,
    pub val: DeviceSplit,
    pub transfers: Transfers,
    /// Wall time of the load (verify + read + upload).
    pub load_seconds: f64,
}

impl DeviceCache {
    pub fn load(info: CacheInfo, device: &Device) -> Result<DeviceCache> {
        let start = Instant::now();
        let transfers = Transfers::default();
        let train = info.load_split(Split::Train, device, &transfers)?;
        let val = info.load_split(Split::Val, device, &transfers)?;
        Ok(DeviceCache {
            info,
            train,
            val,
            transfers,
            load_seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// What one training epoch draws: the sample order and, with augmentation, per-sample
/// brightness/contrast factors and symmetries, each uploaded once for the whole epoch.
pub struct EpochPlan {
    order: Tensor,
    jitter: Option<Tensor>,
    flips: Option<Flips>,
    len: usize,
}

/// Per-sample symmetries of the square for one epoch: a code 0..8 per sample and the source
/// pixel of every output pixel under each code, both on the device.
struct Flips {
    codes: Tensor,
    tables: Tensor,
}

/// The 8 symmetries of an `s`×`s` square (identity, three quarter turns, four reflections) as
/// tables `[8, s·s]`: entry `[c, y·s+x]` is the source pixel of output pixel (y, x) under
/// code `c` (bit 2: transpose, bit 1: flip rows, bit 0: flip columns).
pub fn symmetry_tables(s: usize) -> Vec<u32> {
    let mut t = Vec::with_capacity(8 * s * s);
    for c in 0..8 {
        for y in 0..s {
            for x in 0..s {
                let (a, b) = if c & 4 != 0 { (x, y) } else { (y, x) };
                let sy = if c & 2 != 0 { s - 1 - a } else { a };
                let sx = if c & 1 != 0 { s - 1 - b } else { b };
                t.push((sy * s + sx) as u32);
            }
        }
    }
    t
}

/// `images` `[B,C,S,S]` with sample `i` mapped through symmetry `codes[i]` (u32 `[B]`) of
/// `tables` (u32 `[8, S·S]`, from [`symmetry_tables`]): a gather on the device.
pub fn apply_symmetries(images: &Tensor, codes: &Tensor, tables: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let rows = if c == 1 {
        codes.clone()
    } else {
        codes.unsqueeze(1)?.repeat((1, c))?.flatten_all()?
    };
    let ids = tables.index_select(&rows, 0)?;
    let flat = images.reshape((b * c, h * w))?.contiguous()?;
    Ok(flat.gather(&ids, 1)?.reshape((b, c, h, w))?)
}

impl EpochPlan {
    /// Keyed by (seed, epoch) only: the same epoch always sees the same order, factors and
    /// symmetries. Each draw has its own stream, so turning one on leaves the others as they were.
    pub fn new(
        train: &DeviceSplit,
        seed: u64,
        epoch: usize,
        augment: Option<f64>,
        flips: bool,
        device: &Device,
        transfers: &Transfers,
    ) -> Result<EpochPlan> {
        let n = train.len();
        let key = (epoch as u64).to_le_bytes();
        let mut order: Vec<u32> = (0..n as u32).collect();
        SeededRng::for_key("trainer.shuffle", seed, &[&key]).shuffle(&mut order);
        let order = transfers.upload_u32(order, device)?;
        let jitter = match augment {
            Some(j) => {
                let mut rng = SeededRng::for_key("trainer.augment", seed, &[&key]);
                let f: Vec<f32> = (0..2 * n)
                    .map(|_| rng.uniform(1.0 - j, 1.0 + j) as f32)
                    .collect();
                Some(transfers.upload_f32(f, &[n, 2], device)?)
            }
            None => None,
        };
        let flips = if flips {
            let mut rng = SeededRng::for_key("trainer.flips", seed, &[&key]);
            let codes: Vec<u32> = (0..n).map(|_| rng.below(8) as u32).collect();
            let s = train.size;
            let tables = transfers.upload_u32(symmetry_tables(s), device)?;
            Some(Flips {
                codes: transfers.upload_u32(codes, device)?,
                tables: tables.reshape((8, s * s))?,
            })
        } else {
            None
        };
        Ok(EpochPlan {
            order,
            jitter,
            flips,
            len: n,
        })
    }

    pub fn batches(&self, batch: usize) -> usize {
        self.len.div_ceil(batch)
    }

    /// Batch `b`: gathered, jittered (when on) and normalised on the device. Returns the f32
    /// input [B,1,S,S] and the u32 labels [B].
    pub fn batch(
        &self,
        b: usize,
        batch: usize,
        split: &DeviceSplit,
        norm: &Normalizer,
    ) -> Result<(Tensor, Tensor)> {
        let start = b * batch;
        let len = batch.min(self.len - start);
        let ids = self.order.narrow(0, start, len)?;
        let (images, labels) = split.gather(&ids)?;
        let images = match &self.flips {
            Some(f) => apply_symmetries(&images, &f.codes.index_select(&ids, 0)?, &f.tables)?,
            None => images,
        };
        let x = match &self.jitter {
            Some(f) => jitter(&images, &f.index_select(&ids, 0)?)?,
            None => images,
        };
        Ok((norm.apply(&x)?, labels))
    }
}

/// torchvision ColorJitter semantics on the 0–255 scale: brightness multiplies, contrast blends
/// toward each sample's mean, each clamped to [0, 255]. `factors` is [B,2] (brightness,
/// contrast). Returns f32.
pub fn jitter(images: &Tensor, factors: &Tensor) -> Result<Tensor> {
    let b = images.dim(0)?;
    let x = images.to_dtype(DType::F32)?;
    let bright = factors.narrow(1, 0, 1)?.reshape((b, 1, 1, 1))?;
    let contrast = factors.narrow(1, 1, 1)?.reshape((b, 1, 1, 1))?;
    let x = x.broadcast_mul(&bright)?.clamp(0f32, 255f32)?;
    let mean = x.flatten_from(1)?.mean_keepdim(1)?.reshape((b, 1, 1, 1))?;
    let x = x
        .broadcast_sub(&mean)?
        .broadcast_mul(&contrast)?
        .broadcast_add(&mean)?
        .clamp(0f32, 255f32)?;
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetry_tables_are_the_eight_symmetries_of_the_square() {
        let s = 3;
        let t = symmetry_tables(s);
        let tables: Vec<&[u32]> = t.chunks(s * s).collect();
        assert_eq!(tables.len(), 8);
        // Each is a permutation, code 0 is the identity, and no two are the same.
        for tab in &tables {
            let mut v = tab.to_vec();
            v.sort_unstable();
            assert_eq!(v, (0..9).collect::<Vec<u32>>());
        }
        assert_eq!(tables[0], &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        for i in 0..8 {
            for j in i + 1..8 {
                assert_ne!(tables[i], tables[j], "codes {i} and {j}");
            }
        }
        // Column flip, row flip, transpose, and transpose + column flip (a quarter turn).
        assert_eq!(tables[1], &[2, 1, 0, 5, 4, 3, 8, 7, 6]);
        assert_eq!(tables[2], &[6, 7, 8, 3, 4, 5, 0, 1, 2]);
        assert_eq!(tables[4], &[0, 3, 6, 1, 4, 7, 2, 5, 8]);
        assert_eq!(tables[5], &[2, 5, 8, 1, 4, 7, 0, 3, 6]);
        // The set is closed under composition (a group), so every orientation is drawn alike.
        for a in &tables {
            for b in &tables {
                let ab: Vec<u32> = b.iter().map(|&p| a[p as usize]).collect();
                assert!(tables.contains(&ab.as_slice()));
            }
        }
    }

    #[test]
    fn symmetries_apply_per_sample_and_per_channel() {
        let dev = Device::Cpu;
        let s = 2;
        // Two samples of two channels: sample 0 turned by code 1, sample 1 by code 4.
        let img: Vec<u8> = (0..16).collect();
        let img = Tensor::from_vec(img, (2, 2, s, s), &dev).unwrap();
        let tables = Tensor::from_vec(symmetry_tables(s), (8, s * s), &dev).unwrap();
        let codes = Tensor::new(&[1u32, 4], &dev).unwrap();
        let out = apply_symmetries(&img, &codes, &tables).unwrap();
        assert_eq!(out.dims(), &[2, 2, 2, 2]);
        let v = out.flatten_all().unwrap().to_vec1::<u8>().unwrap();
        assert_eq!(
            v,
            [1, 0, 3, 2, 5, 4, 7, 6, 8, 10, 9, 11, 12, 14, 13, 15],
            "sample 0 flips columns in both channels, sample 1 transposes both"
        );
    }

    #[test]
    fn jitter_matches_colorjitter_by_hand() {
        let img = Tensor::from_vec(vec![0u8, 100, 200, 250], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let f = Tensor::new(&[[1.2f32, 0.5]], &Device::Cpu).unwrap();
        let out = jitter(&img, &f)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // brightness 1.2: 0, 120, 240, 255 (clamped); mean 153.75; contrast 0.5 toward it.
        let b = [0.0f32, 120.0, 240.0, 255.0];
        let m = b.iter().sum::<f32>() / 4.0;
        let want: Vec<f32> = b.iter().map(|v| (v - m) * 0.5 + m).collect();
        for (o, w) in out.iter().zip(&want) {
            assert!((o - w).abs() < 1e-4, "{out:?} vs {want:?}");
        }
    }

    /// A train split of `n` samples of side `s`: sample i is all i (mod 256), label i % 3.
    fn split_of(n: usize, s: usize) -> DeviceSplit {
        let px: Vec<u8> = (0..n).flat_map(|i| vec![i as u8; s * s]).collect();
        let labels_host: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        DeviceSplit {
            split: Split::Train,
            size: s,
            images: Tensor::from_vec(px, (n, 1, s, s), &Device::Cpu).unwrap(),
            labels: Tensor::new(labels_host.as_slice(), &Device::Cpu).unwrap(),
            labels_host,
            sources: Vec::new(),
        }
    }

    #[test]
    fn flips_change_pixels_only_and_leave_order_and_labels() {
        let t = Transfers::default();
        let s = 5;
        let mut split = split_of(40, s);
        // Distinct pixels, so every symmetry but the identity moves some.
        let px: Vec<u8> = (0..40 * s * s).map(|i| (i % 251) as u8).collect();
        split.images = Tensor::from_vec(px, (40, 1, s, s), &Device::Cpu).unwrap();
        let norm = Normalizer {
            mean: 0.5,
            std: 0.25,
        };
        let plain = EpochPlan::new(&split, 4, 1, None, false, &Device::Cpu, &t).unwrap();
        let flipped = EpochPlan::new(&split, 4, 1, None, true, &Device::Cpu, &t).unwrap();
        let again = EpochPlan::new(&split, 4, 1, None, true, &Device::Cpu, &t).unwrap();
        let v = |p: &EpochPlan| p.order.to_vec1::<u32>().unwrap();
        assert_eq!(v(&plain), v(&flipped), "the shuffle has its own stream");
        let (mut moved, mut kept) = (0, 0);
        for b in 0..plain.batches(16) {
            let (xp, yp) = plain.batch(b, 16, &split, &norm).unwrap();
            let (xf, yf) = flipped.batch(b, 16, &split, &norm).unwrap();
            let (xa, _) = again.batch(b, 16, &split, &norm).unwrap();
            assert_eq!(yp.to_vec1::<u32>().unwrap(), yf.to_vec1::<u32>().unwrap());
            let rows = |x: &Tensor| x.flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
            assert_eq!(rows(&xf), rows(&xa), "same seed and epoch, same symmetries");
            for (p, f) in rows(&xp).iter().zip(rows(&xf)) {
                let (mut ps, mut fs) = (p.clone(), f.clone());
                ps.sort_by(f32::total_cmp);
                fs.sort_by(f32::total_cmp);
                assert_eq!(ps, fs, "a symmetry only moves pixels");
                if *p == f { kept += 1 } else { moved += 1 }
            }
        }
        // 40 draws of 8 codes: the identity about 5 times.
        assert!(moved >= 25 && kept >= 1, "moved {moved}, kept {kept}");
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let t = Transfers::default();
        let split = split_of(50, 2);
        let a = EpochPlan::new(&split, 1, 2, None, false, &Device::Cpu, &t).unwrap();
        let b = EpochPlan::new(&split, 1, 2, None, false, &Device::Cpu, &t).unwrap();
        let c = EpochPlan::new(&split, 1, 3, None, false, &Device::Cpu, &t).unwrap();
        let v = |p: &EpochPlan| p.order.to_vec1::<u32>().unwrap();
        assert_eq!(v(&a), v(&b));
        assert_ne!(v(&a), v(&c));
        let mut s = v(&a);
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<u32>>());
        assert_eq!(a.batches(16), 4);
        assert_eq!(t.image_bytes(), 0);
        assert_eq!(t.other_bytes(), 3 * 50 * 4);
    }
}
