//! Which photos a `scorer photos` command line names, in a deterministic order, and how each
//! is shown in the output.
//!
//! - A file argument is taken as it is (whatever its extension) and shown as given.
//! - A directory argument is searched recursively for `.jpg`, `.jpeg`, `.png`, `.tif`, `.tiff`
//!   files (any case; the tiler's [`has_photo_extension`]), skipping hidden files and folders;
//!   its photos come sorted by relative path. With a single directory argument they are shown
//!   relative to it (`g1/IMG_1.jpg`); with several arguments, as the directory joined with that
//!   relative path (`field/g1/IMG_1.jpg`), so that names never collide.
//! - Arguments keep their order.

use std::path::{Path, PathBuf};

use ballast_tiler::photo::has_photo_extension;
use walkdir::WalkDir;

/// A photo to score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoInput {
    pub path: PathBuf,
    /// How the photo is named in the output.
    pub name: String,
}

/// An input that could not even be listed (an unreadable folder): reported like a bad photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListError {
    pub name: String,
    pub reason: String,
}

/// One item of the expanded command line, in output order.
pub type Item = Result<PhotoInput, ListError>;

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Expands the arguments into photos (see the module docs).
pub fn expand(args: &[PathBuf]) -> Vec<Item> {
    let single_dir = args.len() == 1;
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            out.extend(list_dir(arg, single_dir));
        } else {
            out.push(Ok(PhotoInput {
                path: arg.clone(),
                name: arg.display().to_string(),
            }));
        }
    }
    out
}

/// `/`-separated path of `path` relative to `root` (lossy for non-UTF-8 names).
pub fn relative_name(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => path.display().to_string(),
    }
}

/// The photo files under `dir`, sorted by relative path, hidden entries skipped.
pub fn photo_files(dir: &Path) -> Vec<Result<(String, PathBuf), ListError>> {
    let mut found = Vec::new();
    let walker = WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()));
    for entry in walker {
        match entry {
            Ok(e) => {
                // Not only regular files: a FIFO or device named like a photo gets a row saying
                // what it is (the reader refuses it without opening it), instead of vanishing.
                if !e.file_type().is_dir() && has_photo_extension(&e.file_name().to_string_lossy())
                {
                    found.push(Ok((relative_name(dir, e.path()), e.into_path())));
                }
            }
            Err(err) => {
                let at = err
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| dir.display().to_string());
                let reason = match err.io_error() {
                    Some(io) => format!("cannot list: {io}"),
                    None => format!("cannot list: {err}"),
                };
                found.push(Err(ListError { name: at, reason }));
            }
        }
    }
    found.sort_by(|a, b| match (a, b) {
        (Ok(x), Ok(y)) => x.0.cmp(&y.0),
        (Err(x), Err(y)) => x.name.cmp(&y.name),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
    });
    found
}

fn list_dir(dir: &Path, relative: bool) -> Vec<Item> {
    photo_files(dir)
        .into_iter()
        .map(|r| {
            r.map(|(rel, path)| PhotoInput {
                name: if relative {
                    rel
                } else {
                    dir.join(&rel).display().to_string()
                },
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_sorted_recursive_and_skip_hidden() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in [
            "b/2.JPG",
            "b/1.png",
            "a.tif",
            "notes.txt",
            ".hidden.jpg",
            ".cache/x.jpg",
            "c/d/e.jpeg",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let names: Vec<String> = expand(&[root.to_path_buf()])
            .into_iter()
            .map(|i| i.unwrap().name)
            .collect();
        assert_eq!(names, vec!["a.tif", "b/1.png", "b/2.JPG", "c/d/e.jpeg"]);

        // With several arguments: argument order, directory entries prefixed, files as given.
        let file = root.join("notes.txt");
        let items = expand(&[file.clone(), root.join("b")]);
        let names: Vec<String> = items.into_iter().map(|i| i.unwrap().name).collect();
        assert_eq!(
            names,
            vec![
                file.display().to_string(),
                root.join("b").join("1.png").display().to_string(),
                root.join("b").join("2.JPG").display().to_string(),
            ]
        );
    }
}
