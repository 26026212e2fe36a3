use std::path::PathBuf;

/// Everything that can stop training or loading a run. Each variant names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A command-line or config choice that cannot work, found before any training.
    #[error("{0}")]
    Config(String),
    /// A file of the cache or run folder is missing, corrupt or inconsistent.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Format(#[from] ballast_format::FormatError),
    /// The loss or the weights stopped being finite.
    #[error(
        "loss became {value} at epoch {epoch} batch {batch} (lr {lr}); last good checkpoint: {checkpoint}"
    )]
    NonFinite {
        value: String,
        epoch: usize,
        batch: String,
        lr: f64,
        checkpoint: String,
    },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TrainError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        TrainError::Config(message.into())
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl ballast_format::Classify for TrainError {
    fn kind(&self) -> ballast_format::ErrorKind {
        use ballast_format::ErrorKind;
        match self {
            TrainError::Config(_) => ErrorKind::Usage,
            TrainError::File { .. } => ErrorKind::Data,
            TrainError::Io { .. } => ErrorKind::Io,
            TrainError::Format(e) => e.kind(),
            TrainError::NonFinite { .. } | TrainError::Candle(_) => ErrorKind::Compute,
        }
    }
}
