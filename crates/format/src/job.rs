//! `--shard I/N`: which deterministic part of a stage's work this job does.
//!
//! Work items are numbered in a stable order; job I of N owns items `k` with `k % N == I`.
//! When `--shard` is absent the partition comes from a Slurm array job's environment
//! (`SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`), else the job
//! owns everything.

use std::fmt;
use std::str::FromStr;

use crate::error::FormatError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobShard {
    pub index: usize,
    pub count: usize,
}

impl JobShard {
    pub const WHOLE: JobShard = JobShard { index: 0, count: 1 };

    pub fn new(index: usize, count: usize) -> Result<Self, FormatError> {
        if count == 0 {
            return Err(FormatError::Usage("--shard I/N needs N >= 1".into()));
        }
        if index >= count {
            return Err(FormatError::Usage(format!(
                "--shard {index}/{count}: I is 0-based and must be below N"
            )));
        }
        Ok(JobShard { index, count })
    }

    /// Does this job own work item `k`?
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// `00001-of-00004`, used in part-file and temp-file names.
    pub fn tag(&self) -> String {
        format!("{:05}-of-{:05}", self.index, self.count)
    }

    /// The partition given by a Slurm array job's environment, if any.
    pub fn from_env() -> Result<Option<JobShard>, FormatError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`JobShard::from_env`], reading variables through `get` (for tests).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<JobShard>, FormatError> {
        let (Some(id), Some(count)) = (get("SLURM_ARRAY_TASK_ID"), get("SLURM_ARRAY_TASK_COUNT"))
        else {
            return Ok(None);
        };
        let parse = |name: &str, v: &str| {
            v.trim().parse::<usize>().map_err(|_| {
                FormatError::Usage(format!("{name}={v:?} is not a non-negative integer"))
            })
        };
        let id = parse("SLURM_ARRAY_TASK_ID", &id)?;
        let count = parse("SLURM_ARRAY_TASK_COUNT", &count)?;
        let min = match get("SLURM_ARRAY_TASK_MIN") {
            Some(m) => parse("SLURM_ARRAY_TASK_MIN", &m)?,
            None => 0,
        };
        let index = id.checked_sub(min).ok_or_else(|| {
            FormatError::Usage(format!(
                "SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"
            ))
        })?;
        if index >= count {
            return Err(FormatError::Usage(format!(
                "Slurm array task {id} (min {min}) does not map into {count} tasks; \
                 use a contiguous array such as --array=0-{} or pass --shard I/N",
                count.saturating_sub(1)
            )));
        }
        JobShard::new(index, count).map(Some)
    }

    /// The explicit `--shard`, else the Slurm environment, else the whole job.
    pub fn resolve(cli: Option<JobShard>) -> Result<JobShard, FormatError> {
        match cli {
            Some(s) => Ok(s),
            None => Ok(Self::from_env()?.unwrap_or(JobShard::WHOLE)),
        }
    }
}

impl fmt::Display for JobShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for JobShard {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| FormatError::Usage(format!("--shard {s:?}: expected I/N, e.g. 0/4")))?;
        let i = i
            .trim()
            .parse()
            .map_err(|_| FormatError::Usage(format!("--shard {s:?}: I is not an integer")))?;
        let n = n
            .trim()
            .parse()
            .map_err(|_| FormatError::Usage(format!("--shard {s:?}: N is not an integer")))?;
        JobShard::new(i, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "1/4".parse::<JobShard>().unwrap(),
            JobShard { index: 1, count: 4 }
        );
        assert!("4/4".parse::<JobShard>().is_err());
        assert!("0/0".parse::<JobShard>().is_err());
        assert!("x".parse::<JobShard>().is_err());
    }

    #[test]
    fn partition_is_disjoint_and_complete() {
        for n in 1..6 {
            let jobs: Vec<_> = (0..n).map(|i| JobShard::new(i, n).unwrap()).collect();
            for k in 0..50 {
                assert_eq!(jobs.iter().filter(|j| j.owns(k)).count(), 1);
            }
        }
    }

    #[test]
    fn slurm_environment() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| m.get(k).cloned()
        };
        assert_eq!(JobShard::from_vars(env(&[])).unwrap(), None);
        let s = JobShard::from_vars(env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]))
        .unwrap();
        assert_eq!(s, Some(JobShard { index: 2, count: 4 }));
        assert!(
            JobShard::from_vars(env(&[
                ("SLURM_ARRAY_TASK_ID", "9"),
                ("SLURM_ARRAY_TASK_COUNT", "4")
            ]))
            .is_err()
        );
    }
}
