//! Where the packer's time goes per tile, one stage at a time, on one thread, with the tile
//! files already in memory: the floor `scripts/bench-packer.sh` sets against Pillow's decode.
//!
//!     cargo run --release -p ballast-packer --example stage_times -- TILES [N] [SIZE]
//!
//! TILES is a tiler output folder (its `manifest.jsonl`); the first N tiles (default 500) are
//! timed, each stage over all of them, best of 3 rounds. Prints one JSON object of ms/tile:
//! `blake3` (the packer's check of every tile against the manifest), `inflate` (fdeflate over
//! the IDAT stream alone, the part every PNG reader pays), `decode_luma` (the packer's whole
//! PNG decode: inflate + unfilter + BT.601 luma), `resize` (Pillow-exact downsample to SIZE),
//! `jitter`, and `total` (all of it, as the packer runs it per tile).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ballast_format::digest;
use ballast_format::manifest;
use ballast_packer::preprocess::{Jitter, Preprocessor};
use ballast_packer::tile_png::TileDecoder;

/// The concatenated IDAT payload (a zlib stream) and the size of its inflated data.
fn idat_stream(png: &[u8]) -> Result<(Vec<u8>, usize)> {
    let mut pos = 8;
    let (mut out, mut raw_len) = (Vec::new(), 0usize);
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into()?) as usize;
        let kind = &png[pos + 4..pos + 8];
        let data = png
            .get(pos + 8..pos + 8 + len)
            .context("chunk past the end")?;
        match kind {
            b"IHDR" => {
                let w = u32::from_be_bytes(data[0..4].try_into()?) as usize;
                let h = u32::from_be_bytes(data[4..8].try_into()?) as usize;
                let channels = match data[9] {
                    0 => 1,
                    2 => 3,
                    4 => 2,
                    6 => 4,
                    c => bail!("colour type {c} not timed"),
                };
                if data[8] != 8 || data[12] != 0 {
                    bail!("only 8-bit non-interlaced tiles are timed");
                }
                raw_len = h * (1 + w * channels);
            }
            b"IDAT" => out.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    Ok((out, raw_len))
}

/// Best of 3 rounds of `f` over all tiles, in ms per tile.
fn time(n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for i in 0..n {
            f(i)?;
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e3 / n as f64);
    }
    Ok(best)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().context("usage: stage_times TILES [N] [SIZE]")?);
    let n: usize = args.next().map_or(Ok(500), |s| s.parse())?;
    let size: u32 = args.next().map_or(Ok(64), |s| s.parse())?;
    let rows = manifest::read(&dir.join(manifest::MANIFEST_FILE))?;
    let rows = &rows[..n.min(rows.len())];
    let n = rows.len();
    if n == 0 {
        bail!("{}: no tiles", dir.display());
    }
    let files: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            std::fs::read(dir.join(r.tile.as_deref().unwrap_or_default())).with_context(|| r.name())
        })
        .collect::<Result<_>>()?;
    let streams: Vec<(Vec<u8>, usize)> = files
        .iter()
        .map(|f| idat_stream(f))
        .collect::<Result<_>>()?;

    let blake3 = time(n, |i| {
        std::hint::black_box(digest::of_bytes(&files[i]));
        Ok(())
    })?;
    let mut raw = Vec::new();
    let inflate = time(n, |i| {
        let (z, len) = &streams[i];
        raw.resize(*len, 0);
        let mut d = fdeflate::Decompressor::new();
        d.ignore_adler32();
        let (_, produced) = d
            .read(z, &mut raw, 0, true)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", rows[i].name()))?;
        if produced != *len {
            bail!(
                "{}: inflated {produced} bytes, expected {len}",
                rows[i].name()
            );
        }
        Ok(())
    })?;
    let mut decoder = TileDecoder::for_verified_bytes();
    let mut gray = Vec::new();
    let decode_luma = time(n, |i| {
        decoder
            .decode_luma(&files[i], &mut gray)
            .map_err(anyhow::Error::msg)?;
        Ok(())
    })?;
    let grays: Vec<(Vec<u8>, u32, u32)> = files
        .iter()
        .map(|f| {
            let mut g = Vec::new();
            let (w, h) = decoder.decode_luma(f, &mut g).map_err(anyhow::Error::msg)?;
            Ok((g, w, h))
        })
        .collect::<Result<_>>()?;
    let mut pre = Preprocessor::new(size)?;
    let mut sample = vec![0u8; (size * size) as usize];
    let resize = time(n, |i| {
        let (g, w, h) = &grays[i];
        pre.gray_sample_into(g, *w, *h, &mut sample);
        Ok(())
    })?;
    let jitter = time(n, |i| {
        Jitter::draw(0.25, 0, rows[i].window_key(), 0).apply(&mut sample);
        Ok(())
    })?;
    let total = time(n, |i| {
        // The packer's check; a mismatch is not an error here, so re-encoded tiles can be timed.
        std::hint::black_box(Some(digest::of_bytes(&files[i])) == rows[i].tile_digest);
        let (w, h) = decoder
            .decode_luma(&files[i], &mut gray)
            .map_err(anyhow::Error::msg)?;
        pre.gray_sample_into(&gray, w, h, &mut sample);
        Jitter::draw(0.25, 0, rows[i].window_key(), 0).apply(&mut sample);
        Ok(())
    })?;
    let bytes = files.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    println!(
        "{{\"tiles\": {n}, \"file_kb\": {:.1}, \"blake3\": {blake3:.4}, \"inflate\": {inflate:.4}, \
         \"decode_luma\": {decode_luma:.4}, \"resize\": {resize:.4}, \"jitter\": {jitter:.4}, \
         \"total\": {total:.4}}}",
        bytes / 1024.0
    );
    Ok(())
}
