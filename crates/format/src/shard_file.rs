//! Tensor shards: safetensors files holding `images` U8 `[n,1,S,S]` and `labels` I64 `[n]`,
//! with the provenance of every sample in the header's metadata under one key, `ballast`.
//!
//! The header is written here rather than by the `safetensors` crate: its metadata map is a
//! HashMap whose iteration order differs from write to write (safetensors#584), and writing it
//! ourselves lets shards stream to disk. The result is plain safetensors: Python's
//! `safetensors.numpy.load_file` and `safetensors.torch.load_file` read it unchanged.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::{self, Durability};
use crate::error::{FormatError, Result};
use crate::split::Split;

pub const SHARD_FORMAT: &str = "ballast-shard/1";
/// safetensors refuses headers above this size.
const MAX_HEADER: u64 = 100_000_000;

/// Provenance and shape facts stored in the shard's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub format: String,
    pub split: Split,
    pub index: u32,
    pub count: u32,
    pub size: u32,
    pub classes: Vec<String>,
    /// Per sample: the tile path (relative to the tiles folder), its photo, the copy index.
    pub tiles: Vec<String>,
    pub photos: Vec<String>,
    pub copies: Vec<u32>,
}

/// `train-00000-of-00004.safetensors`.
pub fn file_name(split: Split, index: u32, count: u32) -> String {
    format!(
        "{}-{:05}-of-{:05}.safetensors",
        split.as_str(),
        index,
        count
    )
}

fn header_bytes(n: usize, size: u32, meta: &ShardMeta) -> Vec<u8> {
    let s = size as usize;
    let labels_end = 8 * n;
    let images_end = labels_end + n * s * s;
    let meta_json = serde_json::to_string(meta).expect("ShardMeta always serialises");
    let header = serde_json::json!({
        "__metadata__": { "ballast": meta_json },
        "labels": { "dtype": "I64", "shape": [n], "data_offsets": [0, labels_end] },
        "images": { "dtype": "U8", "shape": [n, 1, s, s], "data_offsets": [labels_end, images_end] },
    });
    // serde_json's map keeps keys sorted (no preserve_order feature), so this is deterministic.
    let mut bytes = serde_json::to_vec(&header).expect("header always serialises");
    while !bytes.len().is_multiple_of(8) {
        bytes.push(b' ');
    }
    bytes
}

/// Checks the arguments of a shard before it is written.
fn check(
    images: &[u8],
    labels: &[i64],
    size: u32,
    meta: &ShardMeta,
) -> std::result::Result<(), String> {
    let n = labels.len();
    let ss = (size as usize) * (size as usize);
    if images.len() != n * ss {
        return Err(format!(
            "{} image bytes for {n} samples of {size}x{size}",
            images.len()
        ));
    }
    if meta.tiles.len() != n || meta.photos.len() != n || meta.copies.len() != n {
        return Err("provenance lists do not match the sample count".into());
    }
    if meta.size != size {
        return Err("metadata size differs from image size".into());
    }
    Ok(())
}

/// The complete file contents of a shard.
pub fn encode(images: &[u8], labels: &[i64], size: u32, meta: &ShardMeta) -> Result<Vec<u8>> {
    check(images, labels, size, meta).map_err(FormatError::Usage)?;
    let header = header_bytes(labels.len(), size, meta);
    let mut out = Vec::with_capacity(8 + header.len() + labels.len() * 8 + images.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for l in labels {
        out.extend_from_slice(&l.to_le_bytes());
    }
    out.extend_from_slice(images);
    Ok(out)
}

/// Writes a shard atomically and durably; returns (BLAKE3 digest, byte length).
pub fn write(
    path: &Path,
    images: &[u8],
    labels: &[i64],
    size: u32,
    meta: &ShardMeta,
) -> Result<(String, u64)> {
    check(images, labels, size, meta).map_err(|m| FormatError::invalid(path, m))?;
    let header = header_bytes(labels.len(), size, meta);
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    atomic::write_with(path, Durability::Fsync, |w| {
        let mut put = |b: &[u8]| -> std::io::Result<()> {
            hasher.update(b);
            total += b.len() as u64;
            w.write_all(b)
        };
        put(&(header.len() as u64).to_le_bytes())?;
        put(&header)?;
        let mut lbytes = Vec::with_capacity(labels.len() * 8);
        for l in labels {
            lbytes.extend_from_slice(&l.to_le_bytes());
        }
        put(&lbytes)?;
        put(images)
    })?;
    Ok((hasher.finalize().to_hex().to_string(), total))
}

/// A shard read back into memory.
#[derive(Clone, Debug)]
pub struct ShardData {
    pub images: Vec<u8>,
    pub labels: Vec<i64>,
    pub size: u32,
    pub meta: ShardMeta,
}

impl ShardData {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

struct Layout {
    n: usize,
    size: u32,
    meta: ShardMeta,
    header_len: u64,
    labels: [u64; 2],
    images: [u64; 2],
}

fn parse_header(path: &Path, header: &[u8], file_len: u64) -> Result<Layout> {
    let bad = |m: String| FormatError::invalid(path, m);
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| bad(format!("not a safetensors header: {e}")))?;
    let meta_str = v
        .remove("__metadata__")
        .and_then(|m| m.get("ballast").and_then(|s| s.as_str().map(str::to_owned)))
        .ok_or_else(|| bad("no `ballast` metadata: not a ballast shard".into()))?;
    let meta: ShardMeta = serde_json::from_str(&meta_str)
        .map_err(|e| bad(format!("malformed `ballast` metadata: {e}")))?;
    if meta.format != SHARD_FORMAT {
        return Err(bad(format!(
            "format {:?}, expected {SHARD_FORMAT:?}",
            meta.format
        )));
    }
    let mut take = |name: &str| -> Result<TensorInfo> {
        let t = v
            .remove(name)
            .ok_or_else(|| bad(format!("no `{name}` tensor")))?;
        serde_json::from_value(t).map_err(|e| bad(format!("malformed `{name}` entry: {e}")))
    };
    let labels = take("labels")?;
    let images = take("images")?;
    if let Some(extra) = v.keys().next() {
        return Err(bad(format!("unexpected tensor `{extra}`")));
    }
    if labels.dtype != "I64" || labels.shape.len() != 1 {
        return Err(bad(format!(
            "`labels` must be I64 [n], found {} {:?}",
            labels.dtype, labels.shape
        )));
    }
    let n = labels.shape[0];
    // The provenance lists bound n by what the header really holds, before any arithmetic.
    if [meta.tiles.len(), meta.photos.len(), meta.copies.len()]
        .iter()
        .any(|&len| len as u64 != n)
    {
        return Err(bad("provenance lists do not match the sample count".into()));
    }
    let s = meta.size as u64;
    if images.dtype != "U8" || images.shape != [n, 1, s, s] {
        return Err(bad(format!(
            "`images` must be U8 [{n},1,{s},{s}], found {} {:?}",
            images.dtype, images.shape
        )));
    }
    let data_len = file_len - 8 - header.len() as u64;
    let [l0, l1] = labels.data_offsets;
    let [i0, i1] = images.data_offsets;
    // Checked: crafted shapes must not wrap to a small size (safetensors: "overflow computing
    // buffer size").
    let (Some(labels_len), Some(images_len)) = (
        n.checked_mul(8),
        n.checked_mul(s).and_then(|v| v.checked_mul(s)),
    ) else {
        return Err(bad(format!(
            "shape [{n},1,{s},{s}] overflows the size of a buffer"
        )));
    };
    if l1.checked_sub(l0) != Some(labels_len) || i1.checked_sub(i0) != Some(images_len) {
        return Err(bad("tensor byte ranges do not match their shapes".into()));
    }
    let (lo, hi) = ((l0.min(i0)), (l1.max(i1)));
    if lo != 0 || hi != data_len || (l1 != i0 && i1 != l0) {
        return Err(bad(format!(
            "file is {file_len} bytes but its header describes {} (truncated or altered)",
            8 + header.len() as u64 + hi
        )));
    }
    let n = n as usize;
    Ok(Layout {
        n,
        size: meta.size,
        meta,
        header_len: header.len() as u64,
        labels: labels.data_offsets,
        images: images.data_offsets,
    })
}

fn read_header(path: &Path, file: &mut File) -> Result<(Vec<u8>, u64)> {
    let file_len = file.metadata().map_err(|e| FormatError::io(path, e))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| FormatError::invalid(path, "truncated: shorter than a safetensors header"))?;
    let hlen = u64::from_le_bytes(len);
    if hlen > MAX_HEADER || 8 + hlen > file_len {
        return Err(FormatError::invalid(
            path,
            format!(
                "header length {hlen} does not fit a {file_len}-byte file (truncated or not safetensors)"
            ),
        ));
    }
    let mut header = vec![0u8; hlen as usize];
    file.read_exact(&mut header)
        .map_err(|e| FormatError::io(path, e))?;
    Ok((header, file_len))
}

/// Reads only a shard's metadata (cheap: no pixel data).
pub fn read_meta(path: &Path) -> Result<ShardMeta> {
    let mut file = crate::regular::open(path).map_err(|e| FormatError::io(path, e))?;
    let (header, file_len) = read_header(path, &mut file)?;
    Ok(parse_header(path, &header, file_len)?.meta)
}

/// Reads and validates a whole shard; `n_classes` bounds the labels.
pub fn read(path: &Path, n_classes: usize) -> Result<ShardData> {
    let mut file = crate::regular::open(path).map_err(|e| FormatError::io(path, e))?;
    let (header, file_len) = read_header(path, &mut file)?;
    let layout = parse_header(path, &header, file_len)?;
    let mut data = Vec::with_capacity((file_len - 8 - layout.header_len) as usize);
    file.read_to_end(&mut data)
        .map_err(|e| FormatError::io(path, e))?;
    let slice = |r: [u64; 2]| &data[r[0] as usize..r[1] as usize];
    let labels: Vec<i64> = slice(layout.labels)
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l < 0 || **l as usize >= n_classes)
    {
        return Err(FormatError::invalid(
            path,
            format!("sample {i} has label {l}, outside 0..{n_classes}"),
        ));
    }
    let images = slice(layout.images).to_vec();
    debug_assert_eq!(labels.len(), layout.n);
    Ok(ShardData {
        images,
        labels,
        size: layout.size,
        meta: layout.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n: usize, size: u32) -> ShardMeta {
        ShardMeta {
            format: SHARD_FORMAT.into(),
            split: Split::Train,
            index: 0,
            count: 1,
            size,
            classes: vec!["a".into(), "b".into()],
            tiles: (0..n).map(|i| format!("train/a/t{i}.png")).collect(),
            photos: (0..n).map(|_| "a/p.jpg".into()).collect(),
            copies: vec![0; n],
        }
    }

    #[test]
    fn round_trip_is_deterministic_and_valid_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let (n, s) = (3usize, 9u32);
        let images: Vec<u8> = (0..n * 81).map(|i| (i * 7 % 256) as u8).collect();
        let labels = vec![0i64, 1, 1];
        let p1 = dir.path().join("a.safetensors");
        let p2 = dir.path().join("b.safetensors");
        let (d1, len) = write(&p1, &images, &labels, s, &meta(n, s)).unwrap();
        let (d2, _) = write(&p2, &images, &labels, s, &meta(n, s)).unwrap();
        assert_eq!(d1, d2);
        let bytes = std::fs::read(&p1).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(crate::digest::of_bytes(&bytes), d1);
        assert_eq!(bytes, encode(&images, &labels, s, &meta(n, s)).unwrap());

        // The safetensors crate reads it.
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let img = st.tensor("images").unwrap();
        assert_eq!(img.shape(), &[3, 1, 9, 9]);
        assert_eq!(img.data(), &images[..]);

        let back = read(&p1, 2).unwrap();
        assert_eq!(back.images, images);
        assert_eq!(back.labels, labels);
        assert_eq!(back.meta, meta(n, s));
        assert_eq!(read_meta(&p1).unwrap(), meta(n, s));
    }

    #[test]
    fn truncated_altered_and_out_of_range_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.safetensors");
        let images = vec![1u8; 2 * 64];
        write(&p, &images, &[0, 1], 8, &meta(2, 8)).unwrap();
        let full = std::fs::read(&p).unwrap();

        std::fs::write(&p, &full[..full.len() - 10]).unwrap();
        let e = read(&p, 2).unwrap_err().to_string();
        assert!(
            e.contains("s.safetensors") && e.contains("truncated"),
            "{e}"
        );

        std::fs::write(&p, &full[..4]).unwrap();
        assert!(read(&p, 2).unwrap_err().to_string().contains("truncated"));

        std::fs::write(&p, &full).unwrap();
        let e = read(&p, 1).unwrap_err().to_string();
        assert!(e.contains("label 1"), "{e}");

        std::fs::write(&p, b"").unwrap();
        assert!(read(&p, 2).is_err());
    }

    #[test]
    fn shapes_that_wrap_are_refused() {
        // n * s * s wraps u64 to 0 and 8 * n does too: a header claiming 2^61 samples in no
        // bytes must not be read as an empty shard.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("wrap.safetensors");
        let n: u64 = 1 << 61;
        let m = meta(0, 4);
        let header = serde_json::json!({
            "__metadata__": { "ballast": serde_json::to_string(&m).unwrap() },
            "labels": { "dtype": "I64", "shape": [n], "data_offsets": [0, 0] },
            "images": { "dtype": "U8", "shape": [n, 1, 4, 4], "data_offsets": [0, 0] },
        });
        let h = serde_json::to_vec(&header).unwrap();
        let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&h);
        std::fs::write(&p, &bytes).unwrap();
        let e = read(&p, 2).unwrap_err().to_string();
        assert!(e.contains("wrap.safetensors"), "{e}");
        // With provenance lists of that length impossible, the overflow check is what stops a
        // header whose lists agree with a wrapped count of 0 too.
        let header = serde_json::json!({
            "__metadata__": { "ballast": serde_json::to_string(&m).unwrap() },
            "labels": { "dtype": "I64", "shape": [0], "data_offsets": [0, 0] },
            "images": { "dtype": "U8", "shape": [0, 1, 4, 4], "data_offsets": [0, 0] },
        });
        let h = serde_json::to_vec(&header).unwrap();
        let mut ok = (h.len() as u64).to_le_bytes().to_vec();
        ok.extend_from_slice(&h);
        std::fs::write(&p, &ok).unwrap();
        assert_eq!(read(&p, 2).unwrap().len(), 0);
    }

    #[test]
    fn empty_shard_is_valid() {
        let bytes = encode(&[], &[], 8, &meta(0, 8)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("labels").unwrap().shape(), &[0]);
    }
}
