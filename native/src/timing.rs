//! `timing.compare` of `stream_detector/timing.py`, natively: the pairwise comparison of
//! minute masks that a group's evaluation runs (up to 120 pairs), operation for operation so
//! that both give the same floats; differentially tested.

use pyo3::prelude::*;

/// The thresholds of `timing.py`, passed in by it (one place defines them).
#[derive(FromPyObject)]
pub struct Limits {
    mask_minutes: i64,
    min_overlap: i64,
    min_calls: u32,
    max_chance: f64,
    in_step: f64,
    partners: u32,
}

/// (median excess over chance, indices of the members in step) of (mask, mask_minute) pairs.
#[pyfunction]
pub fn compare(timed: Vec<(u64, i64)>, limits: Limits) -> (Option<f64>, Vec<usize>) {
    let n = timed.len();
    let mut total = vec![0.0f64; n];
    let mut count = vec![0u32; n];
    let mut partners = vec![0u32; n];
    let mut add = |i: usize, calls: u64, own: u32, other: u64, both: u64, span: i64| {
        let widened = (other | other << 1 | other >> 1) & both;
        let chance = widened.count_ones() as f64 / span as f64;
        if chance <= limits.max_chance {
            let hits = (calls & widened).count_ones();
            let x = (hits as f64 / own as f64 - chance) / (1.0 - chance);
            total[i] += x;
            count[i] += 1;
            if x >= limits.in_step {
                partners[i] += 1;
            }
        }
    };
    for i in 0..n {
        let (mask_a, end_a) = timed[i];
        for (j, &(mask_b, end_b)) in timed.iter().enumerate().skip(i + 1) {
            let ahead = end_b - end_a;
            let width = limits.mask_minutes - ahead.abs();
            if width < limits.min_overlap {
                continue;
            }
            let window = if width >= 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            let (calls_a, calls_b) = if ahead >= 0 {
                (mask_a & window, (mask_b >> ahead) & window)
            } else {
                ((mask_a >> -ahead) & window, mask_b & window)
            };
            if calls_a == 0 || calls_b == 0 {
                continue;
            }
            // Only the minutes both were active in, a minute either side.
            let low = (calls_a.trailing_zeros().max(calls_b.trailing_zeros()) as i64 - 1).max(0);
            let high = ((64 - calls_a.leading_zeros()).min(64 - calls_b.leading_zeros()) as i64
                + 1)
            .min(width);
            let span = high - low;
            if span < limits.min_overlap {
                continue;
            }
            let below = |bits: i64| {
                if bits >= 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                }
            };
            let both = below(high) ^ below(low);
            let (calls_a, calls_b) = (calls_a & both, calls_b & both);
            let (count_a, count_b) = (calls_a.count_ones(), calls_b.count_ones());
            if count_a < limits.min_calls || count_b < limits.min_calls {
                continue;
            }
            add(i, calls_a, count_a, calls_b, both, span);
            add(j, calls_b, count_b, calls_a, both, span);
        }
    }
    let mut means: Vec<f64> = (0..n)
        .filter(|&i| count[i] > 0)
        .map(|i| total[i] / count[i] as f64)
        .collect();
    if means.len() < 3 {
        return (None, Vec::new());
    }
    means.sort_by(f64::total_cmp);
    let in_step = (0..n)
        .filter(|&i| partners[i] >= limits.partners && partners[i] * 2 >= count[i])
        .collect();
    (Some(means[means.len() / 2]), in_step)
}
