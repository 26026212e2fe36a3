//! Atomic file replacement: write to a temporary name in the destination's folder, optionally
//! fsync, then rename over the destination. A process killed at any moment leaves either the old
//! complete file or the new complete file, never a half-written one under the real name.
//!
//! Temporary names look like `.NAME.tmp-TAG-PID-N`, where TAG identifies the writing job (see
//! [`set_temp_tag`]), so a rerun of job I can remove the leftovers of an earlier, killed job I
//! without touching files that a concurrently running job J is still writing.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{FormatError, Result};

const TEMP_MARKER: &str = ".tmp-";

static TEMP_TAG: OnceLock<String> = OnceLock::new();
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the data must reach stable storage before the rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the folder after it. For files later stages trust
    /// on sight: manifests, summaries, indexes, tensor shards, checkpoints.
    Fsync,
    /// Rename only: atomic against a killed process, not against power loss. For many small
    /// files whose durability is established in bulk (see [`sync_filesystem`]) before the file
    /// that lists them is committed.
    RenameOnly,
    /// As `RenameOnly`, but the kernel is asked to start writing the data back now, without
    /// waiting for it (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`): the bulk
    /// [`sync_filesystem`] at the end then finds little left to flush instead of stalling the
    /// whole job while everything is written at once.
    WriteBack,
}

/// Sets the tag embedded in temporary names (once per process; later calls are ignored).
pub fn set_temp_tag(tag: &str) {
    let clean: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let _ = TEMP_TAG.set(clean);
}

fn temp_tag() -> &'static str {
    TEMP_TAG.get().map(String::as_str).unwrap_or("x")
}

/// The temporary path used while writing `dest`.
fn temp_path_for(dest: &Path) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| FormatError::invalid(dest, "destination has no file name"))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(
        ".{}{}{}-{}-{}",
        name.to_string_lossy(),
        TEMP_MARKER,
        temp_tag(),
        std::process::id(),
        n
    );
    Ok(dest.with_file_name(tmp))
}

/// True for names produced by this module's temporary files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER)
}

/// True for temporary names written under `tag`.
pub fn is_temp_name_with_tag(name: &str, tag: &str) -> bool {
    is_temp_name(name)
        && name
            .rsplit_once(TEMP_MARKER)
            .is_some_and(|(_, rest)| rest.starts_with(&format!("{tag}-")))
}

/// Writes `dest` atomically with the bytes produced by `fill`.
pub fn write_with<F>(dest: &Path, durability: Durability, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
{
    let tmp = temp_path_for(dest)?;
    let result = (|| -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(256 << 10, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        match durability {
            Durability::Fsync => file.sync_all()?,
            Durability::WriteBack => start_writeback(&file),
            Durability::RenameOnly => {}
        }
        drop(file);
        fs::rename(&tmp, dest)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(FormatError::io(dest, e));
    }
    if durability == Durability::Fsync {
        sync_parent(dest)?;
    }
    Ok(())
}

/// Starts writeback of a file's dirty pages without waiting (a hint: errors are ignored, the
/// later `syncfs` reports real ones).
fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a valid, open descriptor; it touches no memory of ours.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Writes `bytes` to `dest` atomically.
pub fn write_bytes(dest: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    write_with(dest, durability, |w| w.write_all(bytes))
}

/// Writes `value` as pretty JSON (with a trailing newline) to `dest`, atomically and durably.
pub fn write_json<T: serde::Serialize>(dest: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| FormatError::invalid(dest, format!("cannot serialise: {e}")))?;
    bytes.push(b'\n');
    write_bytes(dest, &bytes, Durability::Fsync)
}

/// fsyncs the folder holding `path`, making a completed rename durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = File::open(parent).map_err(|e| FormatError::io(parent, e))?;
    dir.sync_all().map_err(|e| FormatError::io(parent, e))
}

/// Flushes every dirty page of the filesystem holding `path` (Linux `syncfs`). One call makes
/// thousands of [`Durability::RenameOnly`] files durable far cheaper than an fsync each.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    let dir = File::open(path).map_err(|e| FormatError::io(path, e))?;
    #[cfg(target_os = "linux")]
    {
        rustix::fs::syncfs(&dir).map_err(|e| FormatError::io(path, e.into()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        dir.sync_all().map_err(|e| FormatError::io(path, e))
    }
}

/// Removes leftover temporary files under `root` (recursively). With `tag`, only those written
/// under that tag. Returns how many were removed.
pub fn remove_stale_temps(root: &Path, tag: Option<&str>) -> Result<usize> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FormatError::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| FormatError::io(&dir, e))?;
            let ft = entry
                .file_type()
                .map_err(|e| FormatError::io(entry.path(), e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if ft.is_dir() {
                stack.push(entry.path());
            } else if match tag {
                Some(t) => is_temp_name_with_tag(&name, t),
                None => is_temp_name(&name),
            } {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(FormatError::io(entry.path(), e)),
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.json");
        write_bytes(&dest, b"one", Durability::Fsync).unwrap();
        write_bytes(&dest, b"two", Durability::RenameOnly).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        write_bytes(&dest, b"three", Durability::WriteBack).unwrap();
        sync_filesystem(dir.path()).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"three");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_fill_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.bin");
        write_bytes(&dest, b"good", Durability::Fsync).unwrap();
        let err = write_with(&dest, Durability::Fsync, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_found_by_tag() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/.x.png.tmp-j1-77-0"), b"").unwrap();
        fs::write(dir.path().join(".y.png.tmp-j2-77-0"), b"").unwrap();
        fs::write(dir.path().join("keep.png"), b"").unwrap();
        assert_eq!(remove_stale_temps(dir.path(), Some("j1")).unwrap(), 1);
        assert!(dir.path().join(".y.png.tmp-j2-77-0").exists());
        assert_eq!(remove_stale_temps(dir.path(), None).unwrap(), 1);
        assert!(dir.path().join("keep.png").exists());
    }
}
