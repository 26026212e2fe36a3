use std::path::PathBuf;

use ballast_format::FormatError;

/// Why a tiler run failed (bad photos are not errors: they are skipped and reported).
#[derive(Debug, thiserror::Error)]
pub enum TilerError {
    #[error("input folder {}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the tile of {photo} at ({x}, {y}): {detail}")]
    Encode {
        photo: String,
        x: u32,
        y: u32,
        detail: String,
    },
    #[error(
        "{bad} bad inputs, over the --max-bad limit of {limit}; manifest.jsonl and tiler.json \
         were not written (earlier output is untouched; raise --max-bad or fix the inputs named above)"
    )]
    TooManyBad { bad: u64, limit: u64 },
    #[error("{0}")]
    Inconsistent(String),
}

impl TilerError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TilerError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<crate::scan::ScanError> for TilerError {
    fn from(e: crate::scan::ScanError) -> Self {
        TilerError::Input {
            path: e.path,
            reason: e.reason,
        }
    }
}

impl ballast_format::Classify for TilerError {
    fn kind(&self) -> ballast_format::ErrorKind {
        use ballast_format::ErrorKind;
        match self {
            TilerError::Usage(_) => ErrorKind::Usage,
            TilerError::Format(e) => e.kind(),
            TilerError::Io { .. } => ErrorKind::Io,
            TilerError::Encode { .. } => ErrorKind::Compute,
            TilerError::Input { .. }
            | TilerError::TooManyBad { .. }
            | TilerError::Inconsistent(_) => ErrorKind::Data,
        }
    }
}
