//! Reading input files without ever blocking on a FIFO or a device: every reader of a contract
//! file goes through here, and anything but a regular file (after following symlinks) is an
//! error of kind `InvalidInput`, "not a regular file", before it is opened.

use std::fs::File;
use std::io;
use std::path::Path;

fn check(path: &Path) -> io::Result<()> {
    let m = std::fs::metadata(path)?;
    if m.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// `std::fs::read`, refusing non-regular files.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    check(path)?;
    std::fs::read(path)
}

/// `std::fs::read_to_string`, refusing non-regular files.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    check(path)?;
    std::fs::read_to_string(path)
}

/// `File::open`, refusing non-regular files.
pub fn open(path: &Path) -> io::Result<File> {
    check(path)?;
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_and_folders_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("index.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for p in [fifo.as_path(), dir.path()] {
            let e = read(p).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(open(p).is_err() && read_to_string(p).is_err());
        }
        let f = dir.path().join("ok");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(read(&f).unwrap(), b"x");
        assert_eq!(
            read(&dir.path().join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
