//! Small helpers that keep the wasm small: string joining without the formatting machinery, and a
//! compact stable sort (the standard one is large, and instantiated once per element type).

use std::cmp::Ordering;

/// `a` then `b`.
#[inline(never)]
pub fn join(a: &str, b: &str) -> String {
    concat(&[a, b])
}

/// The parts, one after the other.
#[inline(never)]
pub fn concat(parts: &[&str]) -> String {
    parts.concat()
}

/// Sorts `v` stably by `cmp` with binary insertion: n log n comparisons, and few moves on input already
/// (nearly) in order, the usual case here (quadratic moves only on reversed input; the lists are short).
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    for i in 1..v.len() {
        let (head, tail) = v.split_at(i);
        let item = &tail[0];
        let pos = head.partition_point(|other| cmp(other, item) != Ordering::Greater);
        for j in (pos..i).rev() {
            v.swap(j, j + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably() {
        let mut v = vec![(3, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (3, 'e'), (0, 'f')];
        sort_by(&mut v, |a, b| a.0.cmp(&b.0));
        assert_eq!(v, [(0, 'f'), (1, 'b'), (1, 'd'), (2, 'c'), (3, 'a'), (3, 'e')]);
        let mut empty: Vec<u8> = Vec::new();
        sort_by(&mut empty, Ord::cmp);
        assert!(empty.is_empty());
    }

    #[test]
    fn joins() {
        assert_eq!(join("a", "b"), "ab");
        assert_eq!(concat(&["x", "", "yz"]), "xyz");
    }
}
