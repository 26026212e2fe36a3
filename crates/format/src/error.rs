use std::path::PathBuf;

/// What kind of failure an error is, for the exit status and for callers that react to some
/// kinds only. Every library error enum of ballast maps each of its variants to one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line (or a setting) cannot work: exit status 2.
    Usage,
    /// An input file is missing, malformed, inconsistent or damaged: exit status 1.
    Data,
    /// The operating system refused a read or write: exit status 1.
    Io,
    /// Another run holds the output: exit status 1.
    Busy,
    /// Computation failed (a tensor op, a non-finite loss): exit status 1.
    Compute,
}

impl ErrorKind {
    /// The exit status the binaries give this kind (README: 0 done, 1 failed, 2 usage).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            _ => 1,
        }
    }
}

/// Errors that know their [`ErrorKind`].
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

/// Errors from reading or writing ballast's contract files. Each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Another run holds the output folder (see [`crate::lock`]).
    #[error("{}: {message}", path.display())]
    Busy { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
}

impl Classify for FormatError {
    fn kind(&self) -> ErrorKind {
        match self {
            FormatError::Io { .. } => ErrorKind::Io,
            FormatError::Invalid { .. } | FormatError::BadLine { .. } => ErrorKind::Data,
            FormatError::Busy { .. } => ErrorKind::Busy,
            FormatError::Usage(_) => ErrorKind::Usage,
        }
    }
}

impl FormatError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        FormatError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// True when the underlying cause is a missing file.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FormatError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
