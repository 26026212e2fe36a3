//! Content digests: BLAKE3, written as 64 lowercase hex digits.

use std::path::Path;

use crate::error::{FormatError, Result};

/// Digest of a byte string.
pub fn of_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Digest of a file's contents (memory-mapped; large files are hashed in parallel).
pub fn of_file(path: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    let meta = std::fs::metadata(path).map_err(|e| FormatError::io(path, e))?;
    if !meta.is_file() {
        // Mapping (or reading) a FIFO would block forever.
        return Err(FormatError::invalid(path, "not a regular file"));
    }
    let len = meta.len();
    if len >= 16 << 20 {
        h.update_mmap_rayon(path)
    } else {
        h.update_mmap(path)
    }
    .map_err(|e| FormatError::io(path, e))?;
    Ok(h.finalize().to_hex().to_string())
}

/// Incremental digest over structured input. Every field is length-prefixed, so
/// `("ab","c")` and `("a","bc")` differ.
#[derive(Clone, Default)]
pub struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    pub fn new(domain: &str) -> Self {
        let mut h = KeyHasher(blake3::Hasher::new());
        h.str(domain);
        h
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(&v.to_le_bytes());
        self
    }

    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }

    pub fn finish_hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }

    pub fn finish_bytes(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }

    pub fn finish_u64(&self) -> u64 {
        let b = self.finish_bytes();
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_bytes_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello ballast").unwrap();
        assert_eq!(of_file(&p).unwrap(), of_bytes(b"hello ballast"));
        assert_eq!(of_bytes(b"").len(), 64);
    }

    #[test]
    fn key_fields_are_delimited() {
        let a = KeyHasher::new("t").str("ab").str("c").finish_hex();
        let b = KeyHasher::new("t").str("a").str("bc").finish_hex();
        assert_ne!(a, b);
    }
}
