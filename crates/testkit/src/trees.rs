//! Snapshots of output folders, and comparisons that name every difference.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Files that are not outputs: the output folder's lock files (they hold the last holder's pid
/// and start time), which differ between otherwise identical runs.
pub fn is_lock_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with(".ballast.lock")
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(String, &Path)) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(root, &p, f);
        } else {
            let rel = p
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .replace('\\', "/");
            if !is_lock_file(&rel) {
                f(rel, &p);
            }
        }
    }
}

/// Every file under `root` (hidden ones included, lock files excluded) with its bytes.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    walk(root, root, &mut |rel, p| {
        m.insert(
            rel,
            fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())),
        );
    });
    m
}

/// Every file under `root` with the BLAKE3 of its bytes.
pub fn digests(root: &Path) -> BTreeMap<String, String> {
    tree(root)
        .into_iter()
        .map(|(k, v)| (k, blake3::hash(&v).to_hex().to_string()))
        .collect()
}

/// Every file under `root` with its modification time.
pub fn mtimes(root: &Path) -> BTreeMap<String, SystemTime> {
    let mut m = BTreeMap::new();
    walk(root, root, &mut |rel, p| {
        m.insert(
            rel,
            fs::metadata(p).and_then(|m| m.modified()).expect("mtime"),
        );
    });
    m
}

/// Every folder under `root`, relative, sorted.
pub fn folders(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read dir") {
            let e = e.expect("dir entry");
            if e.file_type().expect("file type").is_dir() {
                v.push(
                    e.path()
                        .strip_prefix(root)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned(),
                );
                stack.push(e.path());
            }
        }
    }
    v.sort();
    v
}

/// Asserts two trees hold the same files with the same bytes, listing every difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    let mut diffs = Vec::new();
    for (k, v) in &ta {
        match tb.get(k) {
            None => diffs.push(format!("only in {}: {k}", a.display())),
            Some(w) if w != v => diffs.push(format!("differs: {k}")),
            _ => {}
        }
    }
    for k in tb.keys().filter(|k| !ta.contains_key(*k)) {
        diffs.push(format!("only in {}: {k}", b.display()));
    }
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
    assert!(!ta.is_empty(), "{} is empty", a.display());
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Moves a file's mtime by `secs` (negative: into the past) without changing its content.
pub fn shift_mtime(path: &Path, secs: i64) {
    let f = fs::File::options().write(true).open(path).expect("open");
    let now = fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let d = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 { now + d } else { now - d };
    f.set_modified(t).expect("set mtime");
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create");
    for e in fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).expect("copy");
        }
    }
}
