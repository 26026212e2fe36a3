//! Relative paths as they appear in contract files: `/`-separated, never absolute, never `..`.

use std::path::{Component, Path, PathBuf};

use crate::error::FormatError;

/// `path` relative to `root`, `/`-separated. Fails for paths outside `root` or not UTF-8.
pub fn relative_to(root: &Path, path: &Path) -> Result<String, FormatError> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| FormatError::invalid(path, format!("is not inside {}", root.display())))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| FormatError::invalid(path, "path is not valid UTF-8"))?,
            ),
            Component::CurDir => {}
            _ => return Err(FormatError::invalid(path, "unexpected path component")),
        }
    }
    Ok(parts.join("/"))
}

/// Joins a contract-file relative path onto `root`, refusing anything that would leave `root`
/// (absolute paths, `..`, empty paths).
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    if rel.is_empty() {
        return Err("empty path".into());
    }
    let p = Path::new(rel);
    let mut out = root.to_path_buf();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("path {rel:?} climbs out with '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("path {rel:?} is absolute"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_inside() {
        let root = Path::new("/data/photos");
        assert_eq!(
            relative_to(root, Path::new("/data/photos/fine/a.jpg")).unwrap(),
            "fine/a.jpg"
        );
        assert!(relative_to(root, Path::new("/data/other/a.jpg")).is_err());
        assert_eq!(
            resolve_inside(Path::new("/t"), "train/a/x.png").unwrap(),
            PathBuf::from("/t/train/a/x.png")
        );
        assert!(resolve_inside(Path::new("/t"), "../x.png").is_err());
        assert!(resolve_inside(Path::new("/t"), "/etc/passwd").is_err());
        assert!(resolve_inside(Path::new("/t"), "").is_err());
    }
}
