//! The packer's errors. Each message names the file, manifest line or tile concerned.

use std::path::PathBuf;

use ballast_format::FormatError;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Arguments that cannot work together (the binary's clap layer catches most first).
    #[error("{0}")]
    Usage(String),
    /// Bad input data: the message names the manifest row, tile or class.
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PackError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PackError::Io {
            path: path.into(),
            source,
        }
    }
}

impl ballast_format::Classify for PackError {
    fn kind(&self) -> ballast_format::ErrorKind {
        use ballast_format::ErrorKind;
        match self {
            PackError::Format(e) => e.kind(),
            PackError::Usage(_) => ErrorKind::Usage,
            PackError::Input(_) => ErrorKind::Data,
            PackError::Io { .. } => ErrorKind::Io,
        }
    }
}
