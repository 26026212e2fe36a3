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
/// brightness/contrast factors, each uploaded once for the whole epoch.
pub struct EpochPlan {
    order: Tensor,
    jitter: Option<Tensor>,
    len: usize,
}

impl EpochPlan {
    /// Keyed by (seed, epoch) only: the same epoch always sees the same order and factors.
    pub fn new(
        n: usize,
        seed: u64,
        epoch: usize,
        augment: Option<f64>,
        device: &Device,
        transfers: &Transfers,
    ) -> Result<EpochPlan> {
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
        Ok(EpochPlan {
            order,
            jitter,
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

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let t = Transfers::default();
        let a = EpochPlan::new(50, 1, 2, None, &Device::Cpu, &t).unwrap();
        let b = EpochPlan::new(50, 1, 2, None, &Device::Cpu, &t).unwrap();
        let c = EpochPlan::new(50, 1, 3, None, &Device::Cpu, &t).unwrap();
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
