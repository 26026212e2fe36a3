//! The classes differ by texture, never by overall brightness: what a CNN on downsampled tiles
//! should learn from, and nothing it could cheat with.

use std::path::Path;
use std::process::Command;

const CLASSES: [&str; 5] = [
    "g1-fine",
    "g2-medium-fine",
    "g3-medium",
    "g4-medium-coarse",
    "g5-coarse",
];
const PER_CLASS: usize = 4;

/// (mean luma, texture) of a photo. Texture: mean absolute difference between neighbouring
/// pixels of the luma after a 2× box downsample (a 4×-smaller photo's 125 px tile shrunk to
/// 64 px, as the packer would), divided by the mean luma so exposure cannot move it.
fn stats(path: &Path) -> (f64, f64) {
    let img = image::open(path).unwrap().to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let luma: Vec<f64> = img
        .pixels()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let (w2, h2) = (w / 2, h / 2);
    let small: Vec<f64> = (0..h2 * w2)
        .map(|i| {
            let (x, y) = (2 * (i % w2), 2 * (i / w2));
            0.25 * (luma[y * w + x]
                + luma[y * w + x + 1]
                + luma[(y + 1) * w + x]
                + luma[(y + 1) * w + x + 1])
        })
        .collect();
    let mut sum = 0.0;
    let mut n = 0usize;
    for y in 0..h2 - 1 {
        for x in 0..w2 - 1 {
            let v = small[y * w2 + x];
            sum += (small[y * w2 + x + 1] - v).abs() + (small[(y + 1) * w2 + x] - v).abs();
            n += 2;
        }
    }
    (mean, sum / n as f64 / mean)
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

/// Between-class over within-class variance (one-way ANOVA F).
fn f_ratio(groups: &[Vec<f64>]) -> f64 {
    let all: Vec<f64> = groups.iter().flatten().copied().collect();
    let grand = all.iter().sum::<f64>() / all.len() as f64;
    let k = groups.len() as f64;
    let n = all.len() as f64;
    let between: f64 = groups
        .iter()
        .map(|g| g.len() as f64 * (mean_sd(g).0 - grand).powi(2))
        .sum::<f64>()
        / (k - 1.0);
    let within: f64 = groups
        .iter()
        .map(|g| {
            let m = mean_sd(g).0;
            g.iter().map(|x| (x - m).powi(2)).sum::<f64>()
        })
        .sum::<f64>()
        / (n - k);
    between / within
}

#[test]
fn classes_differ_by_texture_not_by_brightness() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let status = Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(["--out", out.to_str().unwrap(), "--quiet"])
        .args(["--per-class", &PER_CLASS.to_string()])
        .args(["--width", "1224", "--height", "816", "--seed", "3"])
        .status()
        .unwrap();
    assert!(status.success());

    let mut luma: Vec<Vec<f64>> = Vec::new();
    let mut texture: Vec<Vec<f64>> = Vec::new();
    for c in CLASSES {
        let (l, t): (Vec<f64>, Vec<f64>) = (0..PER_CLASS)
            .map(|i| stats(&out.join(c).join(format!("{c}-{i:04}.jpg"))))
            .unzip();
        luma.push(l);
        texture.push(t);
    }
    let report = format!(
        "texture {texture:.3?} (F {:.1})\nluma {luma:.1?} (F {:.2})",
        f_ratio(&texture),
        f_ratio(&luma)
    );
    eprintln!("{report}");

    // Texture: finer gradations have more grain edges per pixel. Class means are ordered, and
    // neighbours' means lie further apart than either class's own spread.
    for k in 0..CLASSES.len() - 1 {
        let (m0, s0) = mean_sd(&texture[k]);
        let (m1, s1) = mean_sd(&texture[k + 1]);
        assert!(
            m0 > m1,
            "{} not busier than {}\n{report}",
            CLASSES[k],
            CLASSES[k + 1]
        );
        assert!(
            m0 - m1 > s0.max(s1),
            "{} and {} not separated\n{report}",
            CLASSES[k],
            CLASSES[k + 1]
        );
    }
    assert!(f_ratio(&texture) > 30.0, "{report}");

    // Brightness: every class's photos span overlapping ranges of mean luma, and the class
    // explains little of the variation (an F ratio near 1 is no signal at all).
    for a in 0..CLASSES.len() {
        for b in a + 1..CLASSES.len() {
            let (amin, amax) = min_max(&luma[a]);
            let (bmin, bmax) = min_max(&luma[b]);
            assert!(
                amin < bmax && bmin < amax,
                "mean luma of {} and {} do not overlap\n{report}",
                CLASSES[a],
                CLASSES[b]
            );
        }
    }
    assert!(f_ratio(&luma) < 4.0, "brightness tells the class\n{report}");
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}
