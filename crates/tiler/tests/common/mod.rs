//! Helpers for the tiler's end-to-end tests: photos made here with the `image` crate (noisy
//! textures, so PNG tiles are realistic), running the real binary, and snapshots of trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use image::{ImageEncoder, RgbImage};

pub const BIN: &str = env!("CARGO_BIN_EXE_tiler");

/// A colour texture: smooth gradients plus per-pixel noise keyed by `seed`.
pub fn texture(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let n = s & 0x3f;
        image::Rgb([
            ((x * 3 + seed * 17) % 192 + n) as u8,
            ((y * 2 + x / 3) % 192 + n / 2) as u8,
            ((x + y + seed * 5) % 160 + n) as u8,
        ])
    })
}

pub fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

pub fn tiff_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut out, image::ImageFormat::Tiff)
        .unwrap();
    out.into_inner()
}

pub fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Writes a photo, its format chosen by the extension.
pub fn photo(path: &Path, w: u32, h: u32, seed: u32) {
    let img = texture(w, h, seed);
    let ext = path.extension().unwrap().to_string_lossy().to_lowercase();
    let bytes = match ext.as_str() {
        "png" => png_bytes(&img),
        "tif" | "tiff" => tiff_bytes(&img),
        _ => jpeg_bytes(&img),
    };
    write(path, &bytes);
}

/// A small ImageFolder tree: `classes` classes × `per_class` JPEG photos of `w`×`h`.
pub fn photo_tree(root: &Path, classes: usize, per_class: usize, w: u32, h: u32) {
    for c in 0..classes {
        for i in 0..per_class {
            let seed = (c * 1000 + i) as u32;
            photo(&root.join(format!("class{c}/IMG_{i:04}.jpg")), w, h, seed);
        }
    }
}

/// The tiler command with a clean environment (no Slurm variables, no RUST_LOG).
pub fn tiler() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "RUST_LOG",
        "RAYON_NUM_THREADS",
    ] {
        c.env_remove(v);
    }
    c
}

pub fn run(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c = tiler();
    c.arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra);
    c.output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts exit status 0, returning stderr.
pub fn run_ok(input: &Path, out: &Path, extra: &[&str]) -> String {
    let o = run(input, out, extra);
    let err = stderr(&o);
    assert!(o.status.success(), "tiler failed ({:?}):\n{err}", o.status);
    err
}

/// Every file under `root` (hidden ones included) with its bytes.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    walk(root, root, &mut |rel, p| {
        m.insert(rel, fs::read(p).unwrap());
    });
    m
}

/// Every file under `root` with its modification time.
pub fn mtimes(root: &Path) -> BTreeMap<String, SystemTime> {
    let mut m = BTreeMap::new();
    walk(root, root, &mut |rel, p| {
        m.insert(rel, fs::metadata(p).unwrap().modified().unwrap());
    });
    m
}

/// Every folder under `root`.
pub fn folders(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                v.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
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

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(String, &Path)) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(root, &p, f);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            f(rel, &p);
        }
    }
}

/// Asserts two output trees are byte-identical, naming the first difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let ta = tree(a);
    let tb = tree(b);
    let ka: Vec<&String> = ta.keys().collect();
    let kb: Vec<&String> = tb.keys().collect();
    if ka != kb {
        let only_a: Vec<_> = ka.iter().filter(|k| !tb.contains_key(**k)).collect();
        let only_b: Vec<_> = kb.iter().filter(|k| !ta.contains_key(**k)).collect();
        panic!("trees differ: only in first {only_a:?}, only in second {only_b:?}");
    }
    for (k, v) in &ta {
        assert!(v == &tb[k], "file {k} differs");
    }
    assert_eq!(folders(a), folders(b), "folder sets differ");
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

pub fn manifest_rows(out: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(out.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Moves a file's mtime by `secs` (without changing its content).
pub fn shift_mtime(path: &Path, secs: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    let t = fs::metadata(path).unwrap().modified().unwrap() + std::time::Duration::from_secs(secs);
    f.set_modified(t).unwrap();
}

/// CRC-32 (PNG chunks).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A small, well-formed PNG that declares `w`×`h` pixels (a decompression bomb).
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit gray
    chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream of a few zero bytes: a real bomb compresses rows of zeros this well.
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}
