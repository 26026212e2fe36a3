//! A scored photo's pictures for `--maps DIR` and `--html FILE`: its map (PNG) and its
//! expected sieve curve with the class curves and the envelope (SVG), drawn by [`crate::maps`],
//! and the file names they get in DIR.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ballast_format::atomic::{self, Durability};

use crate::error::{Result, ScoreError};
use crate::maps::{self, CurveChart, MapInput};
use crate::output::{Layout, Scored};
use crate::photo_scorer::PhotoScores;

/// The longer side of a map, px: enough to see every window of a 4896×3264 photo at 500 px
/// (about 100 px each), small enough to embed dozens in one page.
pub const MAP_SIDE: u32 = 1024;

/// JPEG quality of the maps embedded in the HTML page: a page of dozens of photo maps stays a
/// few MB (a map of a gravel photo is ~1.5 MB as PNG, ~0.2 MB as JPEG).
pub const PAGE_JPEG_QUALITY: u8 = 85;

/// Which encodings of the map are wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Lossless, for `--maps`.
    pub png: bool,
    /// Compact, for `--html`.
    pub jpeg: bool,
}

/// One photo's pictures.
#[derive(Clone, Debug)]
pub struct Figures {
    pub map_png: Option<Vec<u8>>,
    pub map_jpeg: Option<Vec<u8>>,
    /// `None` without sieve curves in the class map.
    pub curve_svg: Option<String>,
}

/// The title drawn on a photo's pictures: its name, class, agreement and flag.
fn title(layout: &Layout, name: &str, s: &Scored) -> String {
    let v = &s.verdict;
    let mut t = format!(
        "{name}: {} ({:.0}% of windows)",
        layout.classes[v.predicted],
        100.0 * v.agreement
    );
    if let Some(n) = &s.novelty {
        t.push_str(&format!(", {} (ood {:.2})", n.flag(), n.score));
    }
    t
}

/// Draws a scored photo's pictures; `None` when it was scored without a thumbnail.
/// `tile` is the window side in photo pixels.
pub fn draw(
    layout: &Layout,
    name: &str,
    ps: &PhotoScores,
    tile: u32,
    wanted: Wanted,
) -> Result<Option<Figures>> {
    let Some(thumb) = &ps.thumb else {
        return Ok(None);
    };
    let title = title(layout, name, &ps.scored);
    let map = maps::render_map(&MapInput {
        thumb,
        classes: &layout.classes,
        tile,
        windows: &ps.windows,
        probs: &ps.tiles.probs,
        title: &title,
    })
    .map_err(|e| ScoreError::Photos(format!("{name}: cannot draw its map: {e}")))?;
    let curve_svg = layout.map.as_ref().filter(|m| m.has_curves()).map(|m| {
        let curves: Vec<_> = m.classes.iter().map(|c| c.curve.clone()).collect();
        let g = m.gradation(&ps.scored.verdict.mean);
        let expected = g
            .as_ref()
            .map(|g| (&g.curve.sieve_mm[..], &g.curve.passing[..]));
        maps::curve_svg(&CurveChart {
            title: &title,
            classes: &layout.classes,
            class_curves: &curves,
            expected,
            envelope: m.envelope.as_ref(),
        })
    });
    let map_jpeg = match wanted.jpeg {
        true => Some(jpeg_bytes(&map).map_err(|e| {
            ScoreError::Photos(format!("{name}: cannot encode its map as JPEG: {e}"))
        })?),
        false => None,
    };
    Ok(Some(Figures {
        map_png: wanted.png.then(|| maps::png_bytes(&map)),
        map_jpeg,
        curve_svg,
    }))
}

fn jpeg_bytes(img: &image::RgbImage) -> std::result::Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, PAGE_JPEG_QUALITY).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// File names in the maps folder: the photo's shown path flattened to one safe component,
/// made unique in the order photos come (`-2`, `-3`, …), so equal inputs give equal names.
#[derive(Debug)]
pub struct MapFiles {
    dir: PathBuf,
    used: BTreeSet<String>,
}

impl MapFiles {
    pub fn new(dir: &Path) -> Result<MapFiles> {
        std::fs::create_dir_all(dir).map_err(|e| ScoreError::io(dir, e))?;
        Ok(MapFiles {
            dir: dir.to_path_buf(),
            used: BTreeSet::new(),
        })
    }

    /// Writes `NAME.map.png` and `NAME.curve.svg` (each atomically) and returns the map's path.
    pub fn write(&mut self, photo: &str, f: &Figures) -> Result<PathBuf> {
        let stem = self.unique(&stem_of(photo));
        let png = self.dir.join(format!("{stem}.map.png"));
        if let Some(bytes) = &f.map_png {
            atomic::write_bytes(&png, bytes, Durability::Fsync)?;
        }
        if let Some(svg) = &f.curve_svg {
            let p = self.dir.join(format!("{stem}.curve.svg"));
            atomic::write_bytes(&p, svg.as_bytes(), Durability::Fsync)?;
        }
        Ok(png)
    }

    fn unique(&mut self, stem: &str) -> String {
        let mut name = stem.to_string();
        let mut k = 2;
        while !self.used.insert(name.to_ascii_lowercase()) {
            name = format!("{stem}-{k}");
            k += 1;
        }
        name
    }
}

/// `site a/IMG 1.jpg` → `site_a_IMG_1`: path components joined by `_` (no root, `.` or
/// `..`), the extension dropped, anything but ASCII letters, digits, `-` and `.` made `_`,
/// at most 120 characters.
pub fn stem_of(photo: &str) -> String {
    let path = Path::new(photo);
    let no_ext = path.with_extension("");
    let parts: Vec<String> = no_ext
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let flat: String = parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let flat: String = flat.chars().take(120).collect();
    if flat.is_empty() || flat.starts_with('.') {
        format!("photo{flat}")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_flat_safe_and_unique() {
        assert_eq!(stem_of("site a/IMG 1.jpg"), "site_a_IMG_1");
        assert_eq!(stem_of("/data/../x/ü.JPG"), "data_x__");
        assert_eq!(stem_of(".hidden.png"), "photo.hidden");
        let dir = tempfile::tempdir().unwrap();
        let mut m = MapFiles::new(dir.path()).unwrap();
        let f = Figures {
            map_png: Some(vec![1, 2, 3]),
            map_jpeg: None,
            curve_svg: Some("<svg/>".into()),
        };
        let a = m.write("a/b.jpg", &f).unwrap();
        let b = m.write("a_b.png", &f).unwrap();
        assert_eq!(a.file_name().unwrap(), "a_b.map.png");
        assert_eq!(b.file_name().unwrap(), "a_b-2.map.png");
        assert!(dir.path().join("a_b-2.curve.svg").is_file());
    }
}
