//! Means and percentiles.

/// The arithmetic mean (0 for none).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The `p`-th percentile (0–100) of sorted values, by nearest rank.
fn rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let n = sorted.len();
    let i = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(i.clamp(1, n.max(1)) - 1).copied()
}

/// p50 and p99 of `values`.
pub fn percentiles(values: &[f64]) -> Option<(f64, f64)> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some((rank(&v, 50.0)?, rank(&v, 99.0)?))
}

/// p50 and p99 of microseconds, in milliseconds.
pub fn percentiles_us(values: &[u32]) -> Option<(f64, f64)> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1e3;
    Some((ms(rank(&v, 50.0)?), ms(rank(&v, 99.0)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&v), Some((50.0, 99.0)));
        assert_eq!(percentiles(&[7.0]), Some((7.0, 7.0)));
        assert_eq!(percentiles(&[]), None);
        assert_eq!(percentiles_us(&[2000, 1000, 3000]), Some((2.0, 3.0)));
        assert_eq!(mean(&[1.0, 2.0]), 1.5);
    }
}
