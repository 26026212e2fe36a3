use std::path::PathBuf;

/// Errors from synth. Each names the file or the argument concerned.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot encode: {message}")]
    Encode { path: PathBuf, message: String },
    /// A bug: a state the code should never reach.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Format(#[from] ballast_format::FormatError),
}

impl SynthError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SynthError::Io {
            path: path.into(),
            source,
        }
    }
}

impl ballast_format::Classify for SynthError {
    fn kind(&self) -> ballast_format::ErrorKind {
        use ballast_format::ErrorKind;
        match self {
            SynthError::Usage(_) => ErrorKind::Usage,
            SynthError::Io { .. } => ErrorKind::Io,
            SynthError::Encode { .. } | SynthError::Internal(_) => ErrorKind::Compute,
            SynthError::Format(e) => e.kind(),
        }
    }
}

pub type Result<T, E = SynthError> = std::result::Result<T, E>;
