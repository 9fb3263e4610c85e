//! Timing statistics: histogram buckets and the 148-bucket report.

/// The bucket name for a duration in seconds (floored to whole seconds):
/// `s0`–`s59`, `m1`–`m59`, `h1`–`h23`, then `d<days>`. Negative durations
/// (time moved backwards) count as `s0`.
pub fn bucket(secs: f64) -> String {
    let v = secs.floor().max(0.0) as i64;
    if v < 60 {
        format!("s{v}")
    } else if v < 3600 {
        format!("m{}", v / 60)
    } else if v < 86_400 {
        format!("h{}", v / 3600)
    } else {
        format!("d{}", v / 86_400)
    }
}

/// The reported bucket names, in order: s0–s59, m1–m59, h1–h23, d1–d6.
pub fn report_buckets() -> Vec<String> {
    let mut out = Vec::with_capacity(148);
    out.extend((0..60).map(|i| format!("s{i}")));
    out.extend((1..60).map(|i| format!("m{i}")));
    out.extend((1..24).map(|i| format!("h{i}")));
    out.extend((1..7).map(|i| format!("d{i}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_qless_widths() {
        assert_eq!(bucket(0.0), "s0");
        assert_eq!(bucket(59.9), "s59");
        assert_eq!(bucket(60.0), "m1");
        assert_eq!(bucket(3599.0), "m59");
        assert_eq!(bucket(3600.0), "h1");
        assert_eq!(bucket(86_399.0), "h23");
        assert_eq!(bucket(86_400.0 * 3.0), "d3");
        assert_eq!(bucket(-5.0), "s0");
        assert_eq!(report_buckets().len(), 148);
    }
}
