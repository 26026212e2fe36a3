//! Which side of the train/val split each photo lies on, by rule (`--split`).
//!
//! * `hash` ([`SplitRule::ContentHash`]): a photo goes to val when the hash of its content
//!   digest ([`Split::unit`]) is below the val fraction. Adding photos never moves old ones,
//!   but on a small data set a class can get no val photo, or a single train photo.
//! * `stratified` (the default): within each class, the photos are ranked by that same hash
//!   (ascending, digest as tie-break) and the first k go to val, with
//!   k = round(n · val_fraction) clamped to [1, n − 1] for n ≥ 2 when 0 < val_fraction < 1;
//!   n = 1 goes to train; a fraction of exactly 0 (or 1) sends every photo to train (val).
//!   Every class stays near the fraction. A photo's rank key never changes, so adding a photo
//!   to a class moves at most one of its old photos (k grows by at most one, and the new
//!   photo pushes at most one old photo past the boundary).
//!
//! Under both rules the unit is the content, not the file: byte-identical photos (one digest)
//! count once and share a side, so nothing leaks between train and val. A digest found in
//! several classes is decided by the class whose name sorts first; later classes count it
//! toward their own k and fill the rest of their val share from their other photos.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ballast_format::Split;
use ballast_format::tiler_files::SplitRule;

/// How many of a class's `n` distinct photos go to val under the stratified rule.
pub fn val_count(n: usize, val_fraction: f64) -> usize {
    if n == 0 || val_fraction <= 0.0 {
        return 0;
    }
    if val_fraction >= 1.0 {
        return n;
    }
    if n == 1 {
        return 0;
    }
    ((n as f64 * val_fraction).round() as usize).clamp(1, n - 1)
}

/// The side of every photo content, decided before any photo is tiled.
#[derive(Clone, Debug, PartialEq)]
pub enum SplitPlan {
    /// Each digest on its own: [`Split::of_content`].
    ContentHash { val_fraction: f64, split_seed: u64 },
    /// Digest → side, for every digest the plan was made from.
    Stratified(HashMap<String, Split>),
}

impl SplitPlan {
    /// The plan of `rule` for `members`, (class, content digest) pairs in any order (ignored
    /// by the hash rule, which needs no look at the other photos).
    pub fn new<'a>(
        rule: SplitRule,
        members: impl IntoIterator<Item = (&'a str, &'a str)>,
        val_fraction: f64,
        split_seed: u64,
    ) -> SplitPlan {
        match rule {
            SplitRule::Stratified => {
                SplitPlan::Stratified(stratified(members, val_fraction, split_seed))
            }
            SplitRule::ContentHash | SplitRule::PathHash => SplitPlan::ContentHash {
                val_fraction,
                split_seed,
            },
        }
    }

    /// The side of the photo with this content digest; `None` when the plan was made without
    /// it (the photo changed after it was hashed).
    pub fn split_of(&self, digest: &str) -> Option<Split> {
        match self {
            SplitPlan::ContentHash {
                val_fraction,
                split_seed,
            } => Some(Split::of_content(digest, *val_fraction, *split_seed)),
            SplitPlan::Stratified(sides) => sides.get(digest).copied(),
        }
    }
}

/// The stratified rule (see the module comment): digest → side.
pub fn stratified<'a>(
    members: impl IntoIterator<Item = (&'a str, &'a str)>,
    val_fraction: f64,
    split_seed: u64,
) -> HashMap<String, Split> {
    let mut by_class: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (class, digest) in members {
        by_class.entry(class).or_default().insert(digest);
    }
    let mut sides: HashMap<String, Split> = HashMap::new();
    for digests in by_class.values() {
        let k = val_count(digests.len(), val_fraction);
        let mut val = 0;
        let mut free: Vec<(f64, &str)> = Vec::new();
        for &d in digests {
            match sides.get(d) {
                Some(Split::Val) => val += 1,
                Some(Split::Train) => {}
                None => free.push((Split::unit(d, split_seed), d)),
            }
        }
        free.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let to_val = k.saturating_sub(val).min(free.len());
        for (i, (_, d)) in free.into_iter().enumerate() {
            let side = if i < to_val { Split::Val } else { Split::Train };
            sides.insert(d.to_string(), side);
        }
    }
    sides
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> String {
        ballast_format::digest::of_bytes(format!("photo {i}").as_bytes())
    }

    /// `per_class` distinct photos in each of `classes` classes.
    fn tree(classes: usize, per_class: usize) -> Vec<(String, String)> {
        (0..classes)
            .flat_map(|c| (0..per_class).map(move |i| (format!("c{c}"), digest(c * 1000 + i))))
            .collect()
    }

    fn plan(members: &[(String, String)], f: f64, seed: u64) -> HashMap<String, Split> {
        stratified(
            members.iter().map(|(c, d)| (c.as_str(), d.as_str())),
            f,
            seed,
        )
    }

    fn val_in(sides: &HashMap<String, Split>, members: &[(String, String)], class: &str) -> usize {
        members
            .iter()
            .filter(|(c, d)| c == class && sides[d] == Split::Val)
            .count()
    }

    #[test]
    fn k_is_the_rounded_share_clamped_to_leave_both_sides() {
        assert_eq!(val_count(6, 0.34), 2); // round(2.04)
        assert_eq!(val_count(10, 0.2), 2);
        assert_eq!(val_count(10, 0.25), 3); // round(2.5) rounds half away from zero
        assert_eq!(val_count(5, 0.05), 1); // round(0.25) = 0, clamped up
        assert_eq!(val_count(5, 0.95), 4); // round(4.75) = 5, clamped down
        assert_eq!(val_count(2, 0.5), 1);
        assert_eq!(val_count(1, 0.5), 0); // one photo trains
        assert_eq!(val_count(0, 0.5), 0);
        // The extremes are what was asked for: nothing (everything) in val.
        assert_eq!(val_count(6, 0.0), 0);
        assert_eq!(val_count(6, 1.0), 6);
        assert_eq!(val_count(1, 1.0), 1);
    }

    #[test]
    fn every_class_gets_its_share() {
        let members = tree(5, 6);
        let sides = plan(&members, 0.34, 0);
        for c in 0..5 {
            assert_eq!(val_in(&sides, &members, &format!("c{c}")), 2, "class c{c}");
        }
        // The val photos are the lowest-ranked of their class.
        for c in 0..5 {
            let mut ranked: Vec<&String> = members
                .iter()
                .filter(|(cl, _)| *cl == format!("c{c}"))
                .map(|(_, d)| d)
                .collect();
            ranked.sort_by(|a, b| Split::unit(a, 0).total_cmp(&Split::unit(b, 0)));
            let sides_in_rank: Vec<Split> = ranked.iter().map(|d| sides[*d]).collect();
            assert_eq!(sides_in_rank[..2], [Split::Val, Split::Val]);
            assert!(sides_in_rank[2..].iter().all(|s| *s == Split::Train));
        }
        // Another seed ranks differently.
        let other = plan(&members, 0.34, 1);
        assert_ne!(sides, other);
        assert_eq!(val_in(&other, &members, "c3"), 2);
    }

    #[test]
    fn copies_within_a_class_are_one_unit() {
        // Four distinct photos, one of them present three times: n = 4, so k = 1 at 0.25;
        // counting files (6) would give k = 2.
        let mut members = tree(1, 4);
        let copy = members[0].clone();
        members.push(copy.clone());
        members.push(copy);
        let sides = plan(&members, 0.25, 0);
        assert_eq!(sides.len(), 4);
        assert_eq!(sides.values().filter(|s| **s == Split::Val).count(), 1);
    }

    #[test]
    fn copies_across_classes_take_the_side_of_the_first_class() {
        for seed in 0..20 {
            let mut members = tree(2, 6);
            // The same content in c0 and c1.
            let shared = digest(99_999);
            members.push(("c1".into(), shared.clone()));
            members.push(("c0".into(), shared.clone()));
            let sides = plan(&members, 0.34, seed);
            // One side for the digest (a map cannot hold two), decided in c0, whose 7 units
            // still give round(2.38) = 2 val photos; c1 counts the copy toward its own k.
            let side = sides[&shared];
            let c0_alone: Vec<(String, String)> =
                members.iter().filter(|(c, _)| c == "c0").cloned().collect();
            assert_eq!(plan(&c0_alone, 0.34, seed)[&shared], side, "seed {seed}");
            assert_eq!(val_in(&sides, &members, "c0"), 2);
            assert_eq!(val_in(&sides, &members, "c1"), 2);
        }
    }

    #[test]
    fn adding_a_photo_moves_at_most_one_old_photo_per_class() {
        for f in [0.1, 0.2, 0.34, 0.5, 0.8] {
            let mut members = tree(3, 2);
            let mut before = plan(&members, f, 3);
            for i in 0..60 {
                let class = format!("c{}", i % 3);
                members.push((class.clone(), digest(50_000 + i)));
                let after = plan(&members, f, 3);
                for c in 0..3 {
                    let class = format!("c{c}");
                    let moved = members
                        .iter()
                        .filter(|(cl, d)| {
                            *cl == class && before.get(d).is_some_and(|s| after[d] != *s)
                        })
                        .count();
                    assert!(
                        moved <= 1,
                        "f {f}, step {i}: {moved} photos of {class} moved"
                    );
                    let n = members.iter().filter(|(cl, _)| *cl == class).count();
                    assert_eq!(val_in(&after, &members, &class), val_count(n, f));
                }
                before = after;
            }
        }
    }

    #[test]
    fn the_hash_plan_is_the_content_hash() {
        let members = tree(2, 30);
        let p = SplitPlan::new(
            SplitRule::ContentHash,
            members.iter().map(|(c, d)| (c.as_str(), d.as_str())),
            0.3,
            5,
        );
        for (_, d) in &members {
            assert_eq!(p.split_of(d), Some(Split::of_content(d, 0.3, 5)));
        }
        let s = SplitPlan::new(
            SplitRule::Stratified,
            members.iter().map(|(c, d)| (c.as_str(), d.as_str())),
            0.3,
            5,
        );
        assert_eq!(s.split_of(&digest(123_456)), None);
        assert!(members.iter().all(|(_, d)| s.split_of(d).is_some()));
    }
}
