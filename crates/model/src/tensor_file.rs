//! safetensors files of f32 tensors with deterministic bytes.
//!
//! The header is written here (names sorted, metadata keys sorted) rather than by the
//! `safetensors` crate, whose metadata map is a HashMap with a per-process iteration order:
//! equal tensors and metadata always give equal files. Reading goes through the `safetensors`
//! crate's validation. PyTorch reads these files with `safetensors.torch.load_file`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use ballast_format::atomic::{self, Durability};
use candle_core::{Device, Tensor};

use crate::error::{ModelError, Result};

/// A tensor's shape and values in row-major order, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn from_tensor(t: &Tensor) -> Result<HostTensor> {
        let data = t
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        Ok(HostTensor {
            shape: t.dims().to_vec(),
            data,
        })
    }

    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.data,
            self.shape.as_slice(),
            device,
        )?)
    }
}

/// The complete bytes of a safetensors file holding `tensors` (F32) and `metadata`.
pub fn encode(
    tensors: &BTreeMap<String, HostTensor>,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    use serde_json::{Map, Value, json};
    let mut header = Map::new();
    if !metadata.is_empty() {
        let m: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        let len = 4 * t.data.len();
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for t in tensors.values() {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Writes the file atomically and durably (temp + fsync + rename).
pub fn write(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let bytes = encode(tensors, metadata);
    atomic::write_with(path, Durability::Fsync, |w| w.write_all(&bytes))?;
    Ok(())
}

/// A safetensors file read back: every tensor as f32 plus the metadata.
#[derive(Clone, Debug, Default)]
pub struct TensorFile {
    pub tensors: BTreeMap<String, HostTensor>,
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// The tensor `name`, or an error naming the file and the tensor.
    pub fn get(&self, path: &Path, name: &str) -> Result<&HostTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::file(path, format!("missing tensor `{name}`")))
    }
}

/// Reads and validates a safetensors file of F32 tensors.
pub fn read(path: &Path) -> Result<TensorFile> {
    let bytes = ballast_format::regular::read(path).map_err(|e| ModelError::io(path, e))?;
    decode(path, &bytes)
}

pub fn decode(path: &Path, bytes: &[u8]) -> Result<TensorFile> {
    let corrupt = |e: String| ModelError::file(path, format!("not a valid safetensors file: {e}"));
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.iter() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(ModelError::file(
                path,
                format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(
            name.to_string(),
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    let metadata = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(TensorFile { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (BTreeMap<String, HostTensor>, BTreeMap<String, String>) {
        let mut t = BTreeMap::new();
        t.insert(
            "b".to_string(),
            HostTensor {
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, 1e-8, f32::MAX],
            },
        );
        t.insert(
            "a".to_string(),
            HostTensor {
                shape: vec![1],
                data: vec![7.0],
            },
        );
        let mut m = BTreeMap::new();
        m.insert("z".to_string(), "last".to_string());
        m.insert("k".to_string(), "{\"x\":1}".to_string());
        (t, m)
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let (t, m) = sample();
        let a = encode(&t, &m);
        assert_eq!(a, encode(&t, &m));
        let back = decode(Path::new("x"), &a).unwrap();
        assert_eq!(back.tensors, t);
        assert_eq!(back.metadata, m);
        // The safetensors crate agrees on every tensor.
        let st = safetensors::SafeTensors::deserialize(&a).unwrap();
        assert_eq!(st.tensor("b").unwrap().shape(), &[2, 3]);
    }

    #[test]
    fn corrupt_and_missing_are_named() {
        let (t, m) = sample();
        let a = encode(&t, &m);
        let e = decode(Path::new("dir/last.safetensors"), &a[..a.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dir/last.safetensors") && e.contains("not a valid"),
            "{e}"
        );
        let f = decode(Path::new("m"), &a).unwrap();
        let e = f
            .get(Path::new("m"), "conv9.weight")
            .unwrap_err()
            .to_string();
        assert!(e.contains("conv9.weight"), "{e}");
        let e = read(Path::new("/nonexistent/model.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/model.safetensors"), "{e}");
    }
}
