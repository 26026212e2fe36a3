//! `packer verify DIR` names every missing, truncated or altered shard.

mod common;

use ballast_format::cache_files::CacheIndex;
use common::*;

#[test]
fn verify_ok_then_names_each_damaged_shard() {
    let root = tempfile::tempdir().unwrap();
    let (tiles, _) = standard(root.path());
    let out = root.path().join("cache");
    pack_ok(&tiles, &out, &["--size", "16", "--shards", "3", "-q"]);
    let dir = out.to_str().unwrap();

    let o = packer(&["verify", dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "ok: 6 shards, 36 samples");

    let index = CacheIndex::read(&out).unwrap();
    let [a, b, c] = [&index.shards[0], &index.shards[2], &index.shards[4]];
    std::fs::remove_file(out.join(&a.file)).unwrap();
    let bytes = std::fs::read(out.join(&b.file)).unwrap();
    std::fs::write(out.join(&b.file), &bytes[..bytes.len() - 100]).unwrap();
    let mut bytes = std::fs::read(out.join(&c.file)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(out.join(&c.file), &bytes).unwrap();

    let o = packer(&["verify", dir]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        vec![
            format!("{}: missing", a.file),
            format!(
                "{}: truncated: {} bytes, expected {}",
                b.file,
                b.bytes - 100,
                b.bytes
            ),
            format!("{}: altered: digest differs from index.json", c.file),
        ]
    );
    assert!(stderr(&o).contains("3 of 6 shards"), "{}", stderr(&o));

    // The packer repairs exactly those shards; verify is happy again.
    pack_ok(&tiles, &out, &["--size", "16", "--shards", "3", "-q"]);
    let o = packer(&["verify", dir]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn verify_without_an_index_says_why() {
    let root = tempfile::tempdir().unwrap();
    let o = packer(&["verify", root.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a ballast cache"), "{}", stderr(&o));
}
