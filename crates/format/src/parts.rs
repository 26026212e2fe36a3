//! Finishing a stage that ran as N independent jobs, with no merge command to forget.
//!
//! Each job writes the files it owns plus a small *part* record under `OUT/.parts/`. After
//! writing its part, every job tries to collect all N parts of the same *generation* (a digest
//! of the stage's inputs and parameters). The job that finds the set complete — whichever
//! finishes last — writes the stage's summary files from them and removes the parts. Two jobs
//! finishing at the same moment both write identical bytes, atomically, so the race is benign.
//! A single run is job 0 of 1 and finishes itself.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{FormatError, Result};
use crate::job::JobShard;

pub const PARTS_DIR: &str = ".parts";

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    stage: String,
    job_index: usize,
    job_count: usize,
    generation: String,
    body: T,
}

pub struct Parts {
    dir: PathBuf,
    stage: String,
}

/// The outcome of [`Parts::collect`].
pub enum Collected<T> {
    /// Every job's part, in job order.
    Complete(Vec<T>),
    /// Jobs whose part (of this generation) is not there yet.
    Waiting { missing: Vec<usize> },
}

impl Parts {
    pub fn new(out_dir: &Path, stage: &str) -> Self {
        Parts {
            dir: out_dir.join(PARTS_DIR),
            stage: stage.to_string(),
        }
    }

    fn path(&self, index: usize, count: usize) -> PathBuf {
        self.dir
            .join(format!("{}-{:05}-of-{:05}.json", self.stage, index, count))
    }

    /// Records this job's part.
    pub fn write<T: Serialize>(&self, job: JobShard, generation: &str, body: &T) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| FormatError::io(&self.dir, e))?;
        let env = Envelope {
            stage: self.stage.clone(),
            job_index: job.index,
            job_count: job.count,
            generation: generation.to_string(),
            body,
        };
        let bytes = serde_json::to_vec(&env)
            .map_err(|e| FormatError::invalid(&self.dir, format!("cannot serialise part: {e}")))?;
        atomic::write_bytes(
            &self.path(job.index, job.count),
            &bytes,
            atomic::Durability::Fsync,
        )
    }

    /// Gathers the parts of all `count` jobs of `generation`.
    pub fn collect<T: DeserializeOwned>(
        &self,
        count: usize,
        generation: &str,
    ) -> Result<Collected<T>> {
        let mut bodies = Vec::with_capacity(count);
        let mut missing = Vec::new();
        for i in 0..count {
            let p = self.path(i, count);
            let bytes = match crate::regular::read(&p) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing.push(i);
                    continue;
                }
                Err(e) => return Err(FormatError::io(&p, e)),
            };
            let env: Envelope<T> = serde_json::from_slice(&bytes)
                .map_err(|e| FormatError::invalid(&p, format!("corrupt part record: {e}")))?;
            if env.generation != generation || env.stage != self.stage {
                missing.push(i);
                continue;
            }
            bodies.push(env.body);
        }
        Ok(if missing.is_empty() {
            Collected::Complete(bodies)
        } else {
            Collected::Waiting { missing }
        })
    }

    /// Removes every part of this stage (any job count), and the folder once empty.
    pub fn clear(&self) -> Result<()> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FormatError::io(&self.dir, e)),
        };
        let prefix = format!("{}-", self.stage);
        for entry in entries {
            let entry = entry.map_err(|e| FormatError::io(&self.dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".json") {
                match fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(FormatError::io(entry.path(), e)),
                }
            }
        }
        let _ = atomic::remove_stale_temps(&self.dir, None);
        // Only succeeds when empty; another stage's parts keep the folder.
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }

    /// The unfinished sharded build(s) recorded in `out_dir/.parts` by any stage, as one
    /// sentence naming the jobs still to run, e.g. `packer job(s) 1, 3 of 4 have not reported`.
    /// None when no part is there.
    pub fn pending_summary(out_dir: &Path) -> Option<String> {
        let dir = out_dir.join(PARTS_DIR);
        let mut builds: std::collections::BTreeMap<(String, usize), Vec<usize>> =
            Default::default();
        for entry in fs::read_dir(&dir).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // `STAGE-IIIII-of-NNNNN.json`
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let mut it = stem.rsplitn(4, '-');
            let (Some(n), Some("of"), Some(i), Some(stage)) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            if let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<usize>()) {
                builds.entry((stage.to_string(), n)).or_default().push(i);
            }
        }
        let lines: Vec<String> = builds
            .into_iter()
            .map(|((stage, n), done)| {
                let missing: Vec<String> = (0..n)
                    .filter(|i| !done.contains(i))
                    .take(20)
                    .map(|i| i.to_string())
                    .collect();
                format!(
                    "{stage} job(s) {} of {n} have not reported (run `{stage} --shard I/{n}` for each)",
                    missing.join(", ")
                )
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }

    /// Job indexes of any parts present (of any generation), for "waiting on" messages.
    pub fn present(&self, count: usize) -> Vec<usize> {
        (0..count)
            .filter(|&i| self.path(i, count).exists())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_only_with_all_parts_of_one_generation() {
        let dir = tempfile::tempdir().unwrap();
        let parts = Parts::new(dir.path(), "tiler");
        let j0 = JobShard::new(0, 2).unwrap();
        let j1 = JobShard::new(1, 2).unwrap();
        parts.write(j1, "g1", &vec![1u32]).unwrap();
        match parts.collect::<Vec<u32>>(2, "g1").unwrap() {
            Collected::Waiting { missing } => assert_eq!(missing, vec![0]),
            Collected::Complete(_) => panic!("incomplete set reported complete"),
        }
        parts.write(j0, "stale", &vec![9u32]).unwrap();
        assert!(matches!(
            parts.collect::<Vec<u32>>(2, "g1").unwrap(),
            Collected::Waiting { .. }
        ));
        parts.write(j0, "g1", &vec![0u32]).unwrap();
        match parts.collect::<Vec<u32>>(2, "g1").unwrap() {
            Collected::Complete(v) => assert_eq!(v, vec![vec![0], vec![1]]),
            Collected::Waiting { .. } => panic!("complete set reported waiting"),
        }
        parts.clear().unwrap();
        assert!(!dir.path().join(PARTS_DIR).exists());
    }
}
