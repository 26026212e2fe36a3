//! Deterministic randomness keyed by content.
//!
//! Every random choice in ballast (tile windows, the train/val split, jitter factors, weight
//! initialisation, shuffling) draws from a generator whose seed is derived from the user's seed
//! and the identity of the thing being randomised (a photo path, a tile id and copy index, an
//! epoch), never from thread ids or processing order. That is what makes outputs identical
//! whatever the thread count or job split.
//!
//! The generator is xoshiro256++ written here, so its stream is fixed by this crate and not by a
//! dependency's version.

use crate::digest::KeyHasher;

#[derive(Clone, Debug)]
pub struct SeededRng {
    s: [u64; 4],
}

impl SeededRng {
    /// A generator for `domain` (e.g. "tiler.windows"), the user's `seed` and the item's `key`
    /// parts (e.g. the photo's relative path).
    pub fn for_key(domain: &str, seed: u64, key: &[&[u8]]) -> Self {
        let mut h = KeyHasher::new("ballast.rng.v1");
        h.str(domain).u64(seed);
        for k in key {
            h.bytes(k);
        }
        Self::from_seed_bytes(h.finish_bytes())
    }

    pub fn from_seed_bytes(b: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            *w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        }
        if s == [0; 4] {
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        SeededRng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, 1) as f32 (24 bits).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in [0, n), unbiased (Lemire's method with rejection). `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream_other_key_other_stream() {
        let mut a = SeededRng::for_key("t", 0, &[b"photo.jpg"]);
        let mut b = SeededRng::for_key("t", 0, &[b"photo.jpg"]);
        let mut c = SeededRng::for_key("t", 1, &[b"photo.jpg"]);
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn stream_is_pinned() {
        // The stream is part of the reproducibility contract: a change here changes every
        // cache and run. The expected value was produced by this implementation when frozen.
        let mut r = SeededRng::from_seed_bytes([1; 32]);
        let first = r.next_u64();
        let mut r2 = SeededRng::from_seed_bytes([1; 32]);
        assert_eq!(first, r2.next_u64());
        let s = 0x0101_0101_0101_0101u64;
        assert_eq!(first, s.wrapping_add(s).rotate_left(23).wrapping_add(s));
    }

    #[test]
    fn below_is_in_range_and_covers() {
        let mut r = SeededRng::for_key("t", 3, &[]);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[r.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn floats_in_unit_interval() {
        let mut r = SeededRng::for_key("t", 0, &[]);
        for _ in 0..10000 {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            let y = r.next_f32();
            assert!((0.0..1.0).contains(&y));
        }
    }
}
