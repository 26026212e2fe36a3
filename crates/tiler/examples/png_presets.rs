//! Times PNG encoding presets on real tiles: `cargo run --release -p ballast-tiler --example
//! png_presets -- PHOTO [SIZE] [N]`. Prints ms per tile and bytes per tile for each preset.

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or_else(|| anyhow::anyhow!("usage: png_presets PHOTO [SIZE] [N]"))?;
    let size: u32 = args.get(2).map_or(Ok(500), |s| s.parse())?;
    let n: u32 = args.get(3).map_or(Ok(40), |s| s.parse())?;
    let photo = ballast_tiler::photo::open(std::path::Path::new(path), 250_000_000)?;
    let (w, h) = (photo.pixels.width(), photo.pixels.height());
    let wins = ballast_tiler::windows::random(w, h, size, n, 0, path);
    let tiles: Vec<Vec<u8>> = wins
        .iter()
        .map(|&(x, y)| {
            let mut v = Vec::new();
            photo.pixels.crop_into(x, y, size, size, &mut v);
            v
        })
        .collect();
    let c = photo.pixels.channels();
    let color = if c == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    };
    let presets: Vec<(&str, png::DeflateCompression, png::Filter)> = vec![
        (
            "fdeflate+adaptive (fast)",
            png::DeflateCompression::FdeflateUltraFast,
            png::Filter::Adaptive,
        ),
        (
            "fdeflate+up",
            png::DeflateCompression::FdeflateUltraFast,
            png::Filter::Up,
        ),
        (
            "fdeflate+paeth",
            png::DeflateCompression::FdeflateUltraFast,
            png::Filter::Paeth,
        ),
        (
            "fdeflate+sub",
            png::DeflateCompression::FdeflateUltraFast,
            png::Filter::Sub,
        ),
        (
            "zlib1+adaptive",
            png::DeflateCompression::Level(1),
            png::Filter::Adaptive,
        ),
        (
            "zlib6+adaptive (default)",
            png::DeflateCompression::Level(6),
            png::Filter::Adaptive,
        ),
        (
            "stored",
            png::DeflateCompression::NoCompression,
            png::Filter::NoFilter,
        ),
    ];
    for (name, deflate, filter) in presets {
        let t = Instant::now();
        let mut bytes = 0usize;
        for raw in &tiles {
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, size, size);
            enc.set_color(color);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_deflate_compression(deflate);
            enc.set_filter(filter);
            let mut wr = enc.write_header()?;
            wr.write_image_data(raw)?;
            wr.finish()?;
            bytes += out.len();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / tiles.len() as f64;
        println!(
            "{name:28} {ms:7.2} ms/tile {:9.0} bytes/tile",
            bytes as f64 / tiles.len() as f64
        );
    }
    Ok(())
}
