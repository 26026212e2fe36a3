//! Listing an ImageFolder tree: `INPUT/<class>/**/<photo>.{jpg,jpeg,png,tif,tiff}`.
//!
//! The class is the first folder level under the input. Photos may sit any depth below their
//! class folder. Names starting with `.` are ignored, as are files with other extensions.
//! Symbolic links are followed (loops are reported). Photos are sorted by their `/`-separated
//! path relative to the input, which numbers them for `--shard`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::photo::has_photo_extension;

/// Size and modification time of a photo file, as seen when listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStat {
    pub bytes: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

impl FileStat {
    pub fn of(meta: &fs::Metadata) -> FileStat {
        #[cfg(unix)]
        let mtime_ns = {
            use std::os::unix::fs::MetadataExt;
            meta.mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec())
        };
        #[cfg(not(unix))]
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        FileStat {
            bytes: meta.len(),
            mtime_ns,
        }
    }
}

/// One photo file found under a class folder.
#[derive(Clone, Debug)]
pub struct PhotoEntry {
    /// Path relative to the input folder, `/`-separated (e.g. `fine/2024/IMG_1.jpg`).
    pub rel: String,
    pub class: String,
    pub path: PathBuf,
    /// The file's size and mtime, or why it could not be examined.
    pub stat: Result<FileStat, String>,
}

/// An input that is not a usable photo, found while listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanSkip {
    /// Path relative to the input folder.
    pub path: String,
    pub reason: String,
    /// Counts against `--max-bad` (unreadable folders); warnings (empty class folders, photos
    /// outside class folders) do not.
    pub bad: bool,
}

/// What [`scan`] found.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Class folder names, sorted (including folders with no photos).
    pub classes: Vec<String>,
    /// Photos, sorted by relative path.
    pub photos: Vec<PhotoEntry>,
    /// Inputs skipped while listing, sorted by path.
    pub skipped: Vec<ScanSkip>,
}

/// The input folder itself could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("input folder {}: {reason}", path.display())]
pub struct ScanError {
    pub path: PathBuf,
    pub reason: String,
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Identity of a folder, to leave out the tiler's own output when it sits inside the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FolderId(u64, u64);

fn folder_id(meta: &fs::Metadata) -> Option<FolderId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(FolderId(meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Lists `input`. `exclude` is a folder to leave out (the output folder, when it lies inside
/// the input).
pub fn scan(input: &Path, exclude: Option<&Path>) -> Result<Listing, ScanError> {
    let fail = |reason: String| ScanError {
        path: input.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(input).map_err(|e| {
        fail(if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else {
            format!("cannot read: {e}")
        })
    })?;
    if !meta.is_dir() {
        return Err(fail("is not a folder".into()));
    }
    let excluded = exclude
        .and_then(|p| fs::metadata(p).ok())
        .and_then(|m| folder_id(&m));
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(input)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    entries.sort_by_key(|e| e.file_name());

    let mut listing = Listing::default();
    for entry in entries {
        let name = entry.file_name();
        if is_hidden(&name) {
            continue;
        }
        let path = entry.path();
        let Some(name) = name.to_str().map(str::to_string) else {
            listing.skipped.push(ScanSkip {
                path: name.to_string_lossy().into_owned(),
                reason: "name is not valid UTF-8".into(),
                bad: true,
            });
            continue;
        };
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                if excluded.is_some() && folder_id(&m) == excluded {
                    tracing::debug!("leaving out {}: it is the output folder", path.display());
                    continue;
                }
                listing.classes.push(name.clone());
                scan_class(&path, &name, excluded, &mut listing);
            }
            _ if has_photo_extension(&name) => listing.skipped.push(ScanSkip {
                path: name,
                reason: "not inside a class folder (photos go in INPUT/<class>/)".into(),
                bad: false,
            }),
            _ => tracing::debug!("ignoring {}: not a photo", path.display()),
        }
    }
    listing.photos.sort_by(|a, b| a.rel.cmp(&b.rel));
    listing.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

fn scan_class(dir: &Path, class: &str, excluded: Option<FolderId>, listing: &mut Listing) {
    let before = listing.photos.len();
    let mut bad_here = 0;
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            if is_hidden(e.file_name()) {
                return false;
            }
            if e.file_type().is_dir()
                && excluded.is_some()
                && e.metadata().ok().and_then(|m| folder_id(&m)) == excluded
            {
                tracing::debug!(
                    "leaving out {}: it is the output folder",
                    e.path().display()
                );
                return false;
            }
            true
        });
    for item in walker {
        match item {
            Ok(e) => {
                if e.file_type().is_dir() {
                    continue;
                }
                let Some(name) = e.file_name().to_str() else {
                    if has_photo_extension(&e.file_name().to_string_lossy()) {
                        listing.skipped.push(ScanSkip {
                            path: rel_lossy(dir, class, e.path()),
                            reason: "name is not valid UTF-8".into(),
                            bad: true,
                        });
                        bad_here += 1;
                    }
                    continue;
                };
                if !has_photo_extension(name) {
                    tracing::debug!("ignoring {}: not a photo extension", e.path().display());
                    continue;
                }
                let Some(rel) = rel_utf8(dir, class, e.path()) else {
                    listing.skipped.push(ScanSkip {
                        path: rel_lossy(dir, class, e.path()),
                        reason: "path is not valid UTF-8".into(),
                        bad: true,
                    });
                    bad_here += 1;
                    continue;
                };
                let stat = match e.metadata() {
                    Ok(m) if m.is_file() => Ok(FileStat::of(&m)),
                    Ok(_) => Err("not a regular file".to_string()),
                    Err(err) => Err(format!("cannot read: {}", walk_reason(&err))),
                };
                listing.photos.push(PhotoEntry {
                    rel,
                    class: class.to_string(),
                    path: e.path().to_path_buf(),
                    stat,
                });
            }
            Err(err) => {
                let Some(path) = err.path().map(Path::to_path_buf) else {
                    continue;
                };
                let is_photo_name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(has_photo_extension);
                let dangling = fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink())
                    && fs::metadata(&path).is_err();
                match rel_utf8(dir, class, &path) {
                    Some(rel) if is_photo_name && (dangling || err.loop_ancestor().is_none()) => {
                        let reason = if dangling {
                            "cannot read: broken symbolic link".to_string()
                        } else {
                            format!("cannot read: {}", walk_reason(&err))
                        };
                        listing.photos.push(PhotoEntry {
                            rel,
                            class: class.to_string(),
                            path,
                            stat: Err(reason),
                        });
                    }
                    _ => {
                        let what = if err.loop_ancestor().is_some() {
                            "folder link loops back to an ancestor".to_string()
                        } else {
                            format!("cannot read folder: {}", walk_reason(&err))
                        };
                        listing.skipped.push(ScanSkip {
                            path: rel_lossy(dir, class, &path),
                            reason: what,
                            bad: true,
                        });
                        bad_here += 1;
                    }
                }
            }
        }
    }
    if listing.photos.len() == before && bad_here == 0 {
        listing.skipped.push(ScanSkip {
            path: class.to_string(),
            reason: "class folder has no photos".into(),
            bad: false,
        });
    }
}

fn walk_reason(err: &walkdir::Error) -> String {
    match err.io_error() {
        Some(io) => io.to_string(),
        None => err.to_string(),
    }
}

/// `class/...` for a path under the class folder `dir`.
fn rel_utf8(dir: &Path, class: &str, path: &Path) -> Option<String> {
    let inner = ballast_format::relpath::relative_to(dir, path).ok()?;
    Some(if inner.is_empty() {
        class.to_string()
    } else {
        format!("{class}/{inner}")
    })
}

fn rel_lossy(dir: &Path, class: &str, path: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(inner) if !inner.as_os_str().is_empty() => {
            format!("{class}/{}", inner.to_string_lossy().replace('\\', "/"))
        }
        _ => class.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn lists_an_image_folder_tree() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        touch(&r.join("fine/b.JPG"));
        touch(&r.join("fine/a.png"));
        touch(&r.join("fine/2024/c.tif"));
        touch(&r.join("fine/notes.txt"));
        touch(&r.join("fine/.hidden.jpg"));
        touch(&r.join("coarse/x.jpeg"));
        touch(&r.join(".cache/y.jpg"));
        touch(&r.join("stray.jpg"));
        touch(&r.join("README.md"));
        fs::create_dir_all(r.join("empty")).unwrap();
        fs::create_dir_all(r.join("out/train/fine")).unwrap();
        touch(&r.join("out/train/fine/t.png"));
        let l = scan(r, Some(&r.join("out"))).unwrap();
        let rels: Vec<&str> = l.photos.iter().map(|p| p.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                "coarse/x.jpeg",
                "fine/2024/c.tif",
                "fine/a.png",
                "fine/b.JPG"
            ]
        );
        assert_eq!(l.classes, ["coarse", "empty", "fine"]);
        assert_eq!(l.photos[1].class, "fine");
        assert_eq!(l.photos[0].stat.as_ref().unwrap().bytes, 1);
        let skipped: Vec<(&str, bool)> =
            l.skipped.iter().map(|s| (s.path.as_str(), s.bad)).collect();
        assert_eq!(skipped, [("empty", false), ("stray.jpg", false)]);
    }

    #[cfg(unix)]
    #[test]
    fn broken_links_are_photos_that_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        touch(&r.join("c/ok.jpg"));
        std::os::unix::fs::symlink(r.join("nowhere.jpg"), r.join("c/gone.jpg")).unwrap();
        let l = scan(r, None).unwrap();
        assert_eq!(l.photos.len(), 2);
        assert_eq!(l.photos[0].rel, "c/gone.jpg");
        assert_eq!(
            l.photos[0].stat.as_ref().unwrap_err(),
            "cannot read: broken symbolic link"
        );
    }

    #[test]
    fn missing_input_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = scan(&dir.path().join("nope"), None).unwrap_err();
        assert!(err.to_string().ends_with("does not exist"), "{err}");
    }
}
