//! Where tiles are cut: pure functions of the photo's size and, for random windows, of the seed
//! and the photo's relative path (never of thread or order). Every window lies fully inside
//! the (EXIF-oriented) photo; positions are top-left corners `(x, y)`.

use std::collections::HashSet;

use ballast_format::rng::SeededRng;

/// The randomness domain of window placement (see [`SeededRng::for_key`]).
pub const WINDOWS_DOMAIN: &str = "tiler.windows";

/// A regular grid of `size`×`size` windows, `stride` pixels apart, starting at (0, 0), in
/// row-major order. Empty when the photo is smaller than one window.
pub fn grid(width: u32, height: u32, size: u32, stride: u32) -> Vec<(u32, u32)> {
    if size == 0 || stride == 0 || size > width || size > height {
        return Vec::new();
    }
    let xs: Vec<u32> = (0..=width - size).step_by(stride as usize).collect();
    let ys = (0..=height - size).step_by(stride as usize);
    ys.flat_map(|y| xs.iter().map(move |&x| (x, y))).collect()
}

/// `n` distinct `size`×`size` windows at positions uniform over all fully-inside placements,
/// drawn from `SeededRng::for_key("tiler.windows", seed, &[photo_rel_path])`, in draw order.
/// When the photo has no more than `n` placements, all of them are returned (row-major).
pub fn random(
    width: u32,
    height: u32,
    size: u32,
    n: u32,
    seed: u64,
    photo_rel_path: &str,
) -> Vec<(u32, u32)> {
    if size == 0 || n == 0 || size > width || size > height {
        return Vec::new();
    }
    let nx = (width - size + 1) as u64;
    let ny = (height - size + 1) as u64;
    let placements = nx * ny;
    let at = |i: u64| ((i % nx) as u32, (i / nx) as u32);
    if placements <= n as u64 {
        return (0..placements).map(at).collect();
    }
    let mut rng = SeededRng::for_key(WINDOWS_DOMAIN, seed, &[photo_rel_path.as_bytes()]);
    if placements <= 2 * n as u64 {
        // Dense: a partial Fisher–Yates over every placement avoids long rejection runs.
        let mut all: Vec<u64> = (0..placements).collect();
        for i in 0..n as usize {
            let j = i + rng.below((all.len() - i) as u64) as usize;
            all.swap(i, j);
        }
        return all[..n as usize].iter().map(|&i| at(i)).collect();
    }
    // Sparse (the usual case): draw x and y, redraw the rare repeat.
    let mut seen = HashSet::with_capacity(n as usize);
    let mut out = Vec::with_capacity(n as usize);
    while out.len() < n as usize {
        let x = rng.below(nx) as u32;
        let y = rng.below(ny) as u32;
        if seen.insert((x, y)) {
            out.push((x, y));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_counts_and_stride() {
        assert_eq!(grid(1000, 600, 500, 500), vec![(0, 0), (500, 0)]);
        assert_eq!(grid(1000, 1000, 500, 500).len(), 4);
        assert_eq!(grid(1000, 1000, 500, 250).len(), 9);
        assert_eq!(grid(499, 1000, 500, 500), vec![]);
        assert_eq!(grid(500, 500, 500, 7), vec![(0, 0)]);
        // Row-major, fully inside.
        let g = grid(4896, 3264, 500, 300);
        assert_eq!(g.len(), 15 * 10);
        assert_eq!(g[1], (300, 0));
        assert!(g.iter().all(|&(x, y)| x + 500 <= 4896 && y + 500 <= 3264));
        let mut sorted = g.clone();
        sorted.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(g, sorted);
    }

    #[test]
    fn random_windows_inside_reproducible_and_keyed() {
        for &(w, h) in &[(4896u32, 3264u32), (501, 700), (500, 500), (620, 510)] {
            let a = random(w, h, 500, 40, 7, "fine/IMG_1.jpg");
            let b = random(w, h, 500, 40, 7, "fine/IMG_1.jpg");
            assert_eq!(a, b, "not reproducible for {w}x{h}");
            let placements = ((w - 499) * (h - 499)) as usize;
            assert_eq!(a.len(), placements.min(40));
            assert!(a.iter().all(|&(x, y)| x + 500 <= w && y + 500 <= h));
            let distinct: HashSet<_> = a.iter().collect();
            assert_eq!(distinct.len(), a.len(), "repeated window");
        }
        let base = random(4896, 3264, 500, 40, 7, "fine/IMG_1.jpg");
        assert_ne!(base, random(4896, 3264, 500, 40, 8, "fine/IMG_1.jpg"));
        assert_ne!(base, random(4896, 3264, 500, 40, 7, "fine/IMG_2.jpg"));
        // A longer draw starts with the shorter one: asking for more keeps the first windows.
        assert_eq!(
            base[..10],
            random(4896, 3264, 500, 10, 7, "fine/IMG_1.jpg")[..]
        );
        assert!(random(400, 3264, 500, 40, 7, "x").is_empty());
    }

    #[test]
    fn random_positions_cover_the_photo() {
        // Uniform over placements: over many photos the mean corner sits mid-range.
        let (w, h, s) = (1500u32, 900u32, 100u32);
        let mut sx = 0u64;
        let mut sy = 0u64;
        let mut count = 0u64;
        for i in 0..200 {
            for (x, y) in random(w, h, s, 20, 0, &format!("c/{i}.jpg")) {
                sx += x as u64;
                sy += y as u64;
                count += 1;
            }
        }
        let (mx, my) = (sx as f64 / count as f64, sy as f64 / count as f64);
        assert!((mx - 700.0).abs() < 30.0, "mean x {mx}");
        assert!((my - 400.0).abs() < 20.0, "mean y {my}");
    }
}
