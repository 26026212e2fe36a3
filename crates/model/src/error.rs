use std::path::PathBuf;

/// Everything that can stop loading, running or training a model. Each variant names what it
/// concerns.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
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

impl ModelError {
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        ModelError::Config(message.into())
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ballast_format::Classify for ModelError {
    fn kind(&self) -> ballast_format::ErrorKind {
        use ballast_format::ErrorKind;
        match self {
            ModelError::Config(_) => ErrorKind::Usage,
            ModelError::File { .. } => ErrorKind::Data,
            ModelError::Io { .. } => ErrorKind::Io,
            ModelError::Format(e) => e.kind(),
            ModelError::NonFinite { .. } | ModelError::Candle(_) => ErrorKind::Compute,
        }
    }
}
