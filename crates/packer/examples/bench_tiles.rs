//! Writes a synthetic tiles folder for benchmarking the packer: N RGB PNG tiles of grain-like
//! texture laid out as the tiler lays them out, plus `manifest.jsonl`.
//!
//!     cargo run --release -p ballast-packer --example bench_tiles -- OUT N [PX] [PER_PHOTO]
//!
//! PX defaults to 500, PER_PHOTO (tiles per photo) to 40; 5 classes; about 20 % of photos val.

use std::path::Path;

use ballast_format::Split;
use ballast_format::digest;
use ballast_format::manifest::{self, TileRecord};
use ballast_format::rng::SeededRng;
use rayon::prelude::*;

fn texture(px: u32, key: &str) -> Vec<u8> {
    let mut rng = SeededRng::for_key("bench.texture", 0, &[key.as_bytes()]);
    let n = px as usize;
    // Grains: random disks of a stone colour on a dark matrix, then sensor-like noise.
    let mut img = vec![0u8; n * n * 3];
    let matrix = [
        rng.uniform(30.0, 60.0),
        rng.uniform(30.0, 60.0),
        rng.uniform(25.0, 50.0),
    ];
    for p in img.chunks_exact_mut(3) {
        for c in 0..3 {
            p[c] = matrix[c] as u8;
        }
    }
    let grains = (n * n / 900).max(4);
    for _ in 0..grains {
        let (cx, cy) = (rng.uniform(0.0, n as f64), rng.uniform(0.0, n as f64));
        let r = rng.uniform(n as f64 / 40.0, n as f64 / 8.0);
        let tone = rng.uniform(80.0, 220.0);
        let tint = [
            rng.uniform(0.85, 1.1),
            rng.uniform(0.85, 1.05),
            rng.uniform(0.8, 1.0),
        ];
        let (y0, y1) = ((cy - r).max(0.0) as usize, ((cy + r) as usize).min(n));
        let (x0, x1) = ((cx - r).max(0.0) as usize, ((cx + r) as usize).min(n));
        for y in y0..y1 {
            for x in x0..x1 {
                let d2 = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)) / (r * r);
                if d2 < 1.0 {
                    let shade = tone * (1.1 - 0.35 * d2);
                    let p = &mut img[(y * n + x) * 3..(y * n + x) * 3 + 3];
                    for c in 0..3 {
                        p[c] = (shade * tint[c]).clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
    for v in img.iter_mut() {
        let noise = (rng.next_u64() % 17) as i32 - 8;
        *v = (*v as i32 + noise).clamp(0, 255) as u8;
    }
    img
}

fn encode(px: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, px, px);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header().expect("png header");
    w.write_image_data(rgb).expect("png data");
    w.finish().expect("png end");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_tiles OUT N [PX] [PER_PHOTO]");
        std::process::exit(2);
    }
    let out = Path::new(&args[1]);
    let n: u32 = args[2].parse().expect("N");
    let px: u32 = args.get(3).map_or(500, |s| s.parse().expect("PX"));
    let per_photo: u32 = args.get(4).map_or(40, |s| s.parse().expect("PER_PHOTO"));
    let classes = ["c0-coarse", "c1-medium", "c2-fine", "c3-mixed", "c4-fouled"];
    let rows: Vec<TileRecord> = (0..n)
        .into_par_iter()
        .map(|i| {
            let photo_no = i / per_photo;
            let class = classes[photo_no as usize % classes.len()];
            let photo = format!("{class}/IMG_{photo_no:05}.jpg");
            let photo_digest = digest::of_bytes(photo.as_bytes());
            let split = Split::of_content(&photo_digest, 0.2, 0);
            let k = i % per_photo;
            let (x, y) = ((k % 8) * px, (k / 8) * px);
            let tile = format!(
                "{}/{class}/IMG_{photo_no:05}-{}_x{x:05}_y{y:05}_s{px}.png",
                split.as_str(),
                &photo_digest[..8]
            );
            let bytes = encode(px, &texture(px, &tile));
            let path = out.join(&tile);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write tile");
            TileRecord {
                tile: Some(tile),
                photo,
                class: class.into(),
                split,
                x,
                y,
                size: px,
                photo_digest,
                tile_digest: Some(digest::of_bytes(&bytes)),
                photo_width: 8 * px,
                photo_height: per_photo.div_ceil(8) * px,
            }
        })
        .collect();
    manifest::write(&out.join(manifest::MANIFEST_FILE), &rows).expect("manifest");
    eprintln!("wrote {n} tiles of {px}x{px} to {}", out.display());
}
