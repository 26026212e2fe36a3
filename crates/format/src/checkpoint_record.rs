//! `RUN/checkpoints.json`: the BLAKE3 of every checkpoint file the trainer keeps in a run folder,
//! so the scorer and `--resume` can tell a damaged or replaced weight file from the one the
//! trainer wrote.
//!
//! A checkpoint is replaced in three steps, each atomic, so a kill at any moment leaves a record
//! that accepts the file on disk:
//! 1. the new file is written under a temporary name ([`crate::atomic`] does this);
//! 2. [`CheckpointRecord::begin`]: the record accepts both the current and the new digest;
//! 3. the file is renamed into place, then [`CheckpointRecord::settle`] keeps only the new digest.
//!
//! Like every contract file, it describes the result (file digests), never the run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{FormatError, Result};

pub const CHECKPOINT_RECORD_FILE: &str = "checkpoints.json";
pub const CHECKPOINT_RECORD_FORMAT: &str = "ballast-checkpoints/1";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub format: String,
    /// File name in the run folder → the digests accepted for it (one, or two while a
    /// replacement is being committed).
    pub files: BTreeMap<String, Vec<String>>,
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl CheckpointRecord {
    pub fn new() -> Self {
        CheckpointRecord {
            format: CHECKPOINT_RECORD_FORMAT.into(),
            files: BTreeMap::new(),
        }
    }

    /// Reads `RUN/checkpoints.json`; `Ok(None)` when there is none.
    pub fn read(run_dir: &Path) -> Result<Option<CheckpointRecord>> {
        let path = run_dir.join(CHECKPOINT_RECORD_FILE);
        let bytes = match crate::regular::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FormatError::io(&path, e)),
        };
        let rec: CheckpointRecord = serde_json::from_slice(&bytes).map_err(|e| {
            FormatError::invalid(&path, format!("malformed checkpoint record: {e}"))
        })?;
        if rec.format != CHECKPOINT_RECORD_FORMAT {
            return Err(FormatError::invalid(
                &path,
                format!(
                    "format {:?}, expected {CHECKPOINT_RECORD_FORMAT:?}",
                    rec.format
                ),
            ));
        }
        for (file, digests) in &rec.files {
            if digests.is_empty() || digests.len() > 2 || !digests.iter().all(|d| is_digest(d)) {
                return Err(FormatError::invalid(
                    &path,
                    format!("entry {file:?} does not hold one or two BLAKE3 digests"),
                ));
            }
        }
        Ok(Some(rec))
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        atomic::write_json(&run_dir.join(CHECKPOINT_RECORD_FILE), self)
    }

    /// Step 2 of a replacement: accept `digest` for `file` besides the digest in force.
    pub fn begin(run_dir: &Path, file: &str, digest: &str) -> Result<()> {
        let mut rec = Self::read(run_dir)?.unwrap_or_else(Self::new);
        let entry = rec.files.entry(file.to_string()).or_default();
        entry.retain(|d| d != digest);
        entry.truncate(1);
        entry.push(digest.to_string());
        rec.write(run_dir)
    }

    /// Step 3 of a replacement: `file` now has `digest` only.
    pub fn settle(run_dir: &Path, file: &str, digest: &str) -> Result<()> {
        let mut rec = Self::read(run_dir)?.unwrap_or_else(Self::new);
        rec.files.insert(file.to_string(), vec![digest.to_string()]);
        rec.write(run_dir)
    }

    /// Checks that `bytes` (the content of `RUN/file`, read once by the caller) are what the
    /// trainer wrote. Returns their digest.
    pub fn verify(run_dir: &Path, file: &str, bytes: &[u8]) -> Result<String> {
        let path = run_dir.join(file);
        let digest = crate::digest::of_bytes(bytes);
        let rec = Self::read(run_dir)?.ok_or_else(|| {
            FormatError::invalid(
                &path,
                format!(
                    "no {CHECKPOINT_RECORD_FILE} beside it, so its integrity cannot be checked \
                     (not a run folder of this trainer version)"
                ),
            )
        })?;
        match rec.files.get(file) {
            Some(accepted) if accepted.contains(&digest) => Ok(digest),
            Some(_) => Err(FormatError::invalid(
                &path,
                format!(
                    "damaged or replaced: its BLAKE3 {}… is not the one the trainer recorded in \
                     {CHECKPOINT_RECORD_FILE}",
                    &digest[..12]
                ),
            )),
            None => Err(FormatError::invalid(
                &path,
                format!("not listed in {CHECKPOINT_RECORD_FILE}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_steps_always_accept_the_file_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let (old, new) = (b"old weights".as_slice(), b"new weights".as_slice());
        let d_old = crate::digest::of_bytes(old);
        let d_new = crate::digest::of_bytes(new);
        assert!(CheckpointRecord::verify(run, "last.safetensors", old).is_err());
        CheckpointRecord::begin(run, "last.safetensors", &d_old).unwrap();
        CheckpointRecord::settle(run, "last.safetensors", &d_old).unwrap();
        assert_eq!(
            CheckpointRecord::verify(run, "last.safetensors", old).unwrap(),
            d_old
        );
        // Killed between begin and rename: the old file is still accepted, and the new one.
        CheckpointRecord::begin(run, "last.safetensors", &d_new).unwrap();
        assert!(CheckpointRecord::verify(run, "last.safetensors", old).is_ok());
        assert!(CheckpointRecord::verify(run, "last.safetensors", new).is_ok());
        CheckpointRecord::settle(run, "last.safetensors", &d_new).unwrap();
        let e = CheckpointRecord::verify(run, "last.safetensors", old)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("last.safetensors") && e.contains("damaged"),
            "{e}"
        );
        assert!(CheckpointRecord::verify(run, "model.safetensors", new).is_err());
    }

    #[test]
    fn malformed_records_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CHECKPOINT_RECORD_FILE);
        std::fs::write(&p, b"{").unwrap();
        let e = CheckpointRecord::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains(CHECKPOINT_RECORD_FILE), "{e}");
        std::fs::write(
            &p,
            br#"{"format":"ballast-checkpoints/1","files":{"m":["zz"]}}"#,
        )
        .unwrap();
        assert!(CheckpointRecord::read(dir.path()).is_err());
    }
}
