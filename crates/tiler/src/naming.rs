//! Tile file names: `{split}/{class}/{stem}-{h8}_x{x:05}_y{y:05}_s{size}-{c8}.png`.
//!
//! `stem` is the photo's file stem reduced to safe characters (for people reading folders);
//! `h8` is the first 8 hex digits of a digest of the photo's whole relative path, so photos that
//! share a stem (`a/x.jpg` and `b/x.jpg`, or `x.jpg` and `x.png`) never share tile names.
//! `c8` is the first 8 hex digits of the tile file's own BLAKE3: a name always means the same
//! bytes, so the tiler never rewrites a file in place. A run that re-tiles a changed photo (or
//! changes the PNG preset) writes new files beside the committed ones, and a run that then fails
//! leaves the committed manifest and every tile it lists untouched; the next commit removes what
//! its manifest no longer lists.

use ballast_format::Split;
use ballast_format::digest::KeyHasher;

/// Longest stem kept in tile names (file names stay far below the usual 255-byte limit).
const MAX_STEM: usize = 80;

/// The 8-hex-digit tag of a photo's relative path.
pub fn photo_tag(photo_rel: &str) -> String {
    let hex = KeyHasher::new("ballast.tiler.tile-name.v1")
        .str(photo_rel)
        .finish_hex();
    hex[..8].to_string()
}

/// The file stem of `photo_rel` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub fn safe_stem(photo_rel: &str) -> String {
    let name = photo_rel.rsplit('/').next().unwrap_or(photo_rel);
    let stem = match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    };
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM)
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    s
}

/// `{stem}-{h8}`: the part of a tile name that identifies its photo.
pub fn tile_prefix(photo_rel: &str) -> String {
    format!("{}-{}", safe_stem(photo_rel), photo_tag(photo_rel))
}

/// Hex digits of the tile's digest kept in its name.
const CONTENT_TAG: usize = 8;

/// A tile's file name; `tile_digest` is the hex BLAKE3 of the file's bytes.
pub fn tile_name(photo_rel: &str, x: u32, y: u32, size: u32, tile_digest: &str) -> String {
    let tag = tile_digest.get(..CONTENT_TAG).unwrap_or(tile_digest);
    format!(
        "{}_x{x:05}_y{y:05}_s{size}-{tag}.png",
        tile_prefix(photo_rel)
    )
}

/// Where a tile sits in the output folder: its split, class and photo.
pub struct TilePlace<'a> {
    pub split: Split,
    pub class: &'a str,
    pub photo_rel: &'a str,
}

/// A tile's path relative to the output folder, `/`-separated.
pub fn tile_rel_path(
    place: &TilePlace<'_>,
    x: u32,
    y: u32,
    size: u32,
    tile_digest: &str,
) -> String {
    format!(
        "{}/{}/{}",
        place.split.as_str(),
        place.class,
        tile_name(place.photo_rel, x, y, size, tile_digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_format::digest;
    use std::collections::HashSet;

    #[test]
    fn names_are_readable() {
        assert_eq!(safe_stem("fine/IMG 0001.JPG"), "IMG_0001");
        assert_eq!(safe_stem("fine/sub/.hidden"), ".hidden");
        assert_eq!(safe_stem("c/ä.jpg"), "_");
        let n = tile_name("fine/IMG_0001.jpg", 5, 1500, 500, "0123abcd4567");
        assert!(n.starts_with("IMG_0001-"), "{n}");
        assert!(n.ends_with("_x00005_y01500_s500-0123abcd.png"), "{n}");
        let place = TilePlace {
            split: Split::Val,
            class: "fine",
            photo_rel: "fine/a.jpg",
        };
        assert_eq!(
            tile_rel_path(&place, 0, 0, 8, "ffffffff00"),
            format!(
                "val/fine/a-{}_x00000_y00000_s8-ffffffff.png",
                photo_tag("fine/a.jpg")
            )
        );
    }

    #[test]
    fn other_bytes_get_another_name() {
        let a = digest::of_bytes(b"tile bytes");
        let b = digest::of_bytes(b"other tile bytes");
        assert_ne!(
            tile_name("c/p.jpg", 0, 0, 64, &a),
            tile_name("c/p.jpg", 0, 0, 64, &b)
        );
        assert_eq!(
            tile_name("c/p.jpg", 0, 0, 64, &a),
            tile_name("c/p.jpg", 0, 0, 64, &a)
        );
    }

    #[test]
    fn tile_names_never_collide() {
        // Same stems in other folders, other extensions, characters that sanitise alike.
        let mut photos = Vec::new();
        for i in 0..2000 {
            photos.push(format!("c/{i}/x.jpg"));
            photos.push(format!("c/x{i}.jpg"));
            photos.push(format!("c/x{i}.png"));
            photos.push(format!("c/x {i}.jpg"));
            photos.push(format!("c/x_{i}.jpg"));
        }
        let prefixes: HashSet<String> = photos.iter().map(|p| tile_prefix(p)).collect();
        assert_eq!(prefixes.len(), photos.len());
        let names: HashSet<String> = photos
            .iter()
            .flat_map(|p| {
                [(0, 0), (0, 1), (1, 0)].map(|(x, y)| tile_name(p, x, y, 500, "00000000"))
            })
            .collect();
        assert_eq!(names.len(), photos.len() * 3);
    }
}
