use std::path::PathBuf;

use ballast_format::{Classify, ErrorKind};

use crate::class_map::ClassMapError;

/// Everything that stops an evaluation or a scoring run. Each variant names what it concerns
/// (a bad photo in a batch is not an error: it is reported as a row, see [`crate::photos`]).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A run folder or cache problem found by the trainer's loaders (they name the file).
    #[error(transparent)]
    Train(#[from] ballast_model::ModelError),
    #[error(transparent)]
    Format(#[from] ballast_format::FormatError),
    /// A file that exists but cannot be used.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A choice that cannot work (flags, or a run and cache that do not belong together).
    #[error("{0}")]
    Usage(String),
    /// The photos given cannot be scored (none could, or more than `--max-bad` could not).
    #[error("{0}")]
    Photos(String),
    #[error(transparent)]
    ClassMap(#[from] ClassMapError),
    /// The model produced NaN or infinite logits or probabilities: its weights overflow on
    /// these inputs. Named by the model file, since that is what has to change.
    #[error("{}: {message}", path.display())]
    NonFinite { path: PathBuf, message: String },
    #[error("preprocessing failed: {0}")]
    Preprocess(#[from] ballast_packer::preprocess::PreprocessError),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl ScoreError {
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ScoreError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ScoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        ScoreError::Usage(message.into())
    }
}

impl Classify for ScoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            ScoreError::Train(e) => e.kind(),
            ScoreError::Format(e) => e.kind(),
            ScoreError::Preprocess(e) => e.kind(),
            ScoreError::File { .. } | ScoreError::Photos(_) => ErrorKind::Data,
            ScoreError::ClassMap(ClassMapError::Read { .. }) => ErrorKind::Io,
            ScoreError::ClassMap(_) => ErrorKind::Data,
            ScoreError::Io { .. } => ErrorKind::Io,
            ScoreError::Usage(_) => ErrorKind::Usage,
            ScoreError::NonFinite { .. } | ScoreError::Candle(_) => ErrorKind::Compute,
        }
    }
}

pub type Result<T, E = ScoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(ScoreError::usage("x").kind().exit_code(), 2);
        assert_eq!(ScoreError::file("a", "b").kind(), ErrorKind::Data);
        assert_eq!(ScoreError::Photos("p".into()).kind().exit_code(), 1);
        let t = ballast_model::ModelError::config("bad flag");
        assert_eq!(ScoreError::from(t).kind(), ErrorKind::Usage);
        let f = ballast_format::FormatError::Busy {
            path: "o".into(),
            message: "held".into(),
        };
        assert_eq!(ScoreError::from(f).kind(), ErrorKind::Busy);
    }
}
