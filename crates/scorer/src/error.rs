use std::path::PathBuf;

/// Everything that stops an evaluation or a scoring run. Each variant names what it concerns
/// (a bad photo in a batch is not an error: it is reported as a row, see [`crate::photos`]).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A run folder or cache problem found by the trainer's loaders (they name the file).
    #[error(transparent)]
    Train(#[from] ballast_trainer::TrainError),
    #[error(transparent)]
    Format(#[from] ballast_format::FormatError),
    /// A file that exists but cannot be used.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A choice that cannot work (flags, or a run and cache that do not belong together).
    #[error("{0}")]
    Usage(String),
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

pub type Result<T, E = ScoreError> = std::result::Result<T, E>;
