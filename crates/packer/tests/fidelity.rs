//! Preprocessing agrees with Pillow / torchvision on the committed fixture tiles
//! (fixtures/packer/reference.safetensors, made by scripts/make_packer_reference.py).

mod common;

use ballast_packer::preprocess::{JitterOrder, Preprocessor, jitter, luma_into};
use ballast_packer::tile_png::TileDecoder;
use safetensors::SafeTensors;

fn fixtures() -> std::path::PathBuf {
    common::repo_root().join("fixtures/packer")
}

fn reference_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("reference.safetensors"))
        .expect("fixtures/packer/reference.safetensors")
}

/// (max abs difference, mean abs difference).
fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += d as u64;
    }
    (max, sum as f64 / a.len() as f64)
}

fn tile_names(st: &SafeTensors) -> Vec<String> {
    let mut v: Vec<String> = st
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("gray/").map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn luma_and_resize_match_pillow() {
    let bytes = reference_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let names = tile_names(&st);
    assert!(names.len() >= 5, "{names:?}");
    let mut dec = TileDecoder::default();
    let mut worst = (0u8, 0f64);
    let mut compared = 0;
    for name in &names {
        let png = std::fs::read(fixtures().join("tiles").join(format!("{name}.png"))).unwrap();
        let pixels = dec.decode(&png).unwrap();
        let mut gray = Vec::new();
        luma_into(&pixels, &mut gray);
        let want = st.tensor(&format!("gray/{name}")).unwrap();
        assert_eq!(
            want.shape(),
            &[pixels.height() as usize, pixels.width() as usize]
        );
        let (m, _) = diff(&gray, want.data());
        assert_eq!(m, 0, "luma of {name} differs from Pillow's convert(\"L\")");
        for size in [64u32, 32, 17, 8] {
            let want = st.tensor(&format!("s{size}/{name}")).unwrap();
            let got = Preprocessor::new(size).unwrap().sample(&pixels);
            let (m, mean) = diff(&got, want.data());
            assert!(
                m <= 1 && mean <= 0.5,
                "{name} at {size}: max {m}, mean {mean}"
            );
            worst = (worst.0.max(m), worst.1.max(mean));
            compared += 1;
        }
    }
    eprintln!(
        "{compared} resizes compared with Pillow: worst max |diff| {}, worst mean {:.4}",
        worst.0, worst.1
    );
}

#[test]
fn jitter_matches_torchvision_functional() {
    let bytes = reference_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let cases = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("jitter_cases").cloned())
        .expect("reference made with torchvision has jitter cases");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&cases).unwrap();
    assert!(cases.len() >= 10);
    let mut worst = 0u8;
    for c in &cases {
        let base = st.tensor(c["base"].as_str().unwrap()).unwrap();
        let want = st.tensor(c["name"].as_str().unwrap()).unwrap();
        let mut got = base.data().to_vec();
        let order = match c["order"].as_str().unwrap() {
            "bc" => JitterOrder::BrightnessFirst,
            _ => JitterOrder::ContrastFirst,
        };
        jitter(
            &mut got,
            c["brightness"].as_f64().unwrap() as f32,
            c["contrast"].as_f64().unwrap() as f32,
            order,
        );
        let (m, mean) = diff(&got, want.data());
        assert!(m <= 1 && mean <= 0.5, "{c}: max {m} mean {mean}");
        worst = worst.max(m);
        // The jitter changed something (factors are not 1).
        assert_ne!(got, base.data());
    }
    eprintln!(
        "{} jitter cases vs torchvision: worst max |diff| {worst}",
        cases.len()
    );
}
