//! Comparisons that know their denominators: funnel limits around a group's rate, and a test
//! of whether a change could be chance.
//!
//! A rate of 11 out of 12 and one of 1,100 out of 1,200 are the same 91.7%, but one more
//! absence moves the first by 8 points and the second by a twelfth of one. The problem list used
//! to judge both by the same relative fall and the same rank; now a rate is read with its
//! counts. Funnel limits follow Spiegelhalter, "Funnel plots for comparing institutional
//! performance" (Statistics in Medicine, 2005): exact binomial quantiles at the unit's own
//! denominator, interpolated between integers, so the limits are smooth in n; when the units
//! of a group differ more than binomial chance allows (members of one branch attend together,
//! so counts are clustered), the limits are widened by the estimated overdispersion (the same
//! paper, §3.3: the mean of the squared z-scores, winsorised at 10% each side).

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// A rate's counts: `x` out of `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    pub x: f64,
    pub n: f64,
}

/// How a proportion is shown in an indicator's unit (a share, or per hundred); `None` for a
/// unit that is not a proportion (a score, points, a count per member).
pub fn scale_of(unit: &str) -> Option<f64> {
    match unit {
        "percent" => Some(1.0),
        "per100" => Some(100.0),
        _ => None,
    }
}

impl Counts {
    /// The counts of an indicator's value in `unit`, if the value is a proportion of them.
    pub fn of_rate(x: Option<f64>, n: Option<f64>, value: Option<f64>, unit: &str) -> Option<Counts> {
        let scale = scale_of(unit)?;
        Counts::of_proportion(x, n, value.map(|v| v / scale))
    }

    /// Counts of a proportion: whole, `0 <= x <= n`, `n >= 1`, and `value` is `x / n` (a
    /// capped or weighted rate is not a proportion of its counts, and is not tested as one).
    pub fn of_proportion(x: Option<f64>, n: Option<f64>, value: Option<f64>) -> Option<Counts> {
        let (x, n, v) = (x?, n?, value?);
        let whole = |f: f64| f.is_finite() && f.fract() == 0.0;
        (whole(x) && whole(n) && n >= 1.0 && (0.0..=n).contains(&x) && (x / n - v).abs() < 1e-9)
            .then_some(Counts { x, n })
    }

    pub fn rate(&self) -> f64 {
        self.x / self.n
    }

    /// The Wilson score interval of the proportion at two-sided `level` (0.95): unlike the
    /// normal approximation it stays inside [0, 1] and is not empty at 0 of n or n of n, which
    /// is where small branches are.
    pub fn wilson(&self, level: f64) -> (f64, f64) {
        let z = Normal::standard().inverse_cdf(0.5 + level / 2.0);
        let (p, n, z2) = (self.rate(), self.n, z * z);
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        ((centre - half).max(0.0), (centre + half).min(1.0))
    }
}

/// The exact binomial limit at probability `q` for `n` trials around the rate `p`, interpolated
/// (Spiegelhalter 2005, appendix A.1.1): with r the smallest count whose cumulative
/// probability reaches q, the limit is (r − α)/n, α = (F(r) − q)/(F(r) − F(r − 1)).
pub fn binomial_limit(p: f64, n: u64, q: f64) -> f64 {
    if n == 0 || p <= 0.0 || p >= 1.0 {
        return p.clamp(0.0, 1.0);
    }
    let b = Binomial::new(p, n).expect("0 < p < 1");
    let r = b.inverse_cdf(q);
    let f_r = b.cdf(r);
    let f_below = if r == 0 { 0.0 } else { b.cdf(r - 1) };
    let alpha = if f_r > f_below { (f_r - q) / (f_r - f_below) } else { 0.0 };
    ((r as f64 - alpha) / n as f64).clamp(0.0, 1.0)
}

/// The two-sided limits of a funnel at coverage `level` (0.95, 0.998) for `n` trials.
pub fn limits(centre: f64, n: f64, level: f64, phi: f64) -> (f64, f64) {
    let tail = (1.0 - level) / 2.0;
    if phi > 1.0 {
        // Overdispersed: a normal approximation with the variance scaled by phi (§3.3).
        let z = Normal::standard().inverse_cdf(1.0 - tail);
        let sd = (phi * centre * (1.0 - centre) / n).sqrt();
        return ((centre - z * sd).max(0.0), (centre + z * sd).min(1.0));
    }
    let n = n.round() as u64;
    (binomial_limit(centre, n, tail), binomial_limit(centre, n, 1.0 - tail))
}

/// A group of rates for a funnel: its centre (all counts pooled) and its overdispersion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Funnel {
    pub centre: f64,
    /// 1 when the rates spread no more than binomial chance; above 1, how much more.
    pub phi: f64,
}

impl Funnel {
    /// The funnel of the members' counts; `None` if the pooled rate is 0 or 1 (no spread to
    /// judge against). `overdispersion` off keeps the pure binomial limits.
    pub fn of(members: &[Counts], overdispersion: bool) -> Option<Funnel> {
        let (x, n) = members.iter().fold((0.0, 0.0), |(x, n), c| (x + c.x, n + c.n));
        let centre = x / n;
        if !(centre > 0.0 && centre < 1.0) {
            return None;
        }
        let phi = if overdispersion { phi(members, centre) } else { 1.0 };
        Some(Funnel { centre, phi })
    }

    /// The unit's place against the limits at `level`: below, within or above.
    pub fn place(&self, c: Counts, level: f64) -> Place {
        let (lo, hi) = limits(self.centre, c.n, level, self.phi);
        if c.rate() < lo {
            Place::Below(lo)
        } else if c.rate() > hi {
            Place::Above(hi)
        } else {
            Place::Within
        }
    }
}

/// Where a unit falls against a pair of limits (the limit it crossed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Place {
    Below(f64),
    Within,
    Above(f64),
}

/// Spiegelhalter's multiplicative overdispersion: the mean squared z-score, z winsorised at
/// its 10th and 90th percentiles; at least 1.
fn phi(members: &[Counts], centre: f64) -> f64 {
    if members.len() < 10 {
        // Too few to estimate a spread of the spread; the binomial limits stand.
        return 1.0;
    }
    let mut z: Vec<f64> =
        members.iter().map(|c| (c.rate() - centre) / (centre * (1.0 - centre) / c.n).sqrt()).collect();
    let mut sorted = z.clone();
    sorted.sort_by(f64::total_cmp);
    let k = z.len();
    let (lo, hi) = (sorted[k / 10], sorted[k - 1 - k / 10]);
    for v in &mut z {
        *v = v.clamp(lo, hi);
    }
    (z.iter().map(|v| v * v).sum::<f64>() / k as f64).max(1.0)
}

/// A two-proportion test (pooled, one-sided) that `now` is worse than `before`: z and the
/// chance of a fall at least this large if both came from one rate. `higher_is_better` says
/// which way is worse. `None` when the pooled rate is 0 or 1 (nothing varies).
pub fn worse_than_chance(before: Counts, now: Counts, higher_is_better: bool) -> Option<(f64, f64)> {
    let pooled = (before.x + now.x) / (before.n + now.n);
    if !(pooled > 0.0 && pooled < 1.0) {
        return None;
    }
    let se = (pooled * (1.0 - pooled) * (1.0 / before.n + 1.0 / now.n)).sqrt();
    let fall = if higher_is_better { before.rate() - now.rate() } else { now.rate() - before.rate() };
    let z = fall / se;
    Some((z, Normal::standard().sf(z)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_intervals_match_the_published_values() {
        // Newcombe (1998), table I: 81/263 → 0.2553–0.3662; and 8/10 → 0.4902–0.9433, 0/10 →
        // 0–0.2775 (Wilson's own formula, by hand).
        for (x, n, lo, hi) in [(81.0, 263.0, 0.2553, 0.3662), (8.0, 10.0, 0.4902, 0.9433), (0.0, 10.0, 0.0, 0.2775)] {
            let (l, h) = Counts { x, n }.wilson(0.95);
            assert!((l - lo).abs() < 5e-5 && (h - hi).abs() < 5e-5, "{x}/{n}: {l} {h}");
        }
    }

    /// P(X <= k) for X ~ Binomial(n, p), summed term by term (each term's logarithm carried,
    /// as (1 − p)^n underflows at n = 400): an independent check of statrs.
    fn cdf_by_hand(n: u64, p: f64, k: u64) -> f64 {
        let mut ln_term = n as f64 * (1.0 - p).ln(); // ln P(X = 0)
        let mut sum = ln_term.exp();
        for i in 0..k {
            ln_term += ((n - i) as f64 / (i + 1) as f64 * p / (1.0 - p)).ln();
            sum += ln_term.exp();
        }
        sum
    }

    /// The interpolated limit from the hand-summed cdf.
    fn limit_by_hand(p: f64, n: u64, q: f64) -> f64 {
        let r = (0..=n).find(|&r| cdf_by_hand(n, p, r) >= q).unwrap();
        let f_r = cdf_by_hand(n, p, r);
        let f_below = if r == 0 { 0.0 } else { cdf_by_hand(n, p, r - 1) };
        (r as f64 - (f_r - q) / (f_r - f_below)) / n as f64
    }

    #[test]
    fn funnel_limits_are_the_exact_binomial_quantiles() {
        for &(p, n) in &[(0.85, 20u64), (0.85, 36), (0.85, 100), (0.9, 400), (0.6, 1000), (0.05, 250)] {
            for q in [0.001, 0.025, 0.975, 0.999] {
                let got = binomial_limit(p, n, q);
                let want = limit_by_hand(p, n, q);
                assert!((got - want).abs() < 1e-9, "p {p} n {n} q {q}: {got} vs {want}");
            }
        }
        // Worked by hand: Binomial(20, 0.85). P(X <= 13) = 0.0219, P(X <= 14) = 0.0673: the
        // 2.5% quantile is r = 14, alpha = (0.0673 − 0.025)/(0.0673 − 0.0219) = 0.93, so the
        // lower 95% limit is (14 − 0.93)/20 = 0.653.
        assert!((binomial_limit(0.85, 20, 0.025) - 0.653).abs() < 0.001, "{}", binomial_limit(0.85, 20, 0.025));
        // Limits narrow as the denominator grows and stay about the centre.
        let (l20, h20) = limits(0.85, 20.0, 0.998, 1.0);
        let (l400, h400) = limits(0.85, 400.0, 0.998, 1.0);
        assert!(l20 < l400 && l400 < 0.85 && 0.85 < h400 && h400 < h20);
    }

    #[test]
    fn one_absence_in_a_small_branch_is_chance_and_eight_points_in_a_big_community_is_not() {
        // A 4-member branch, 3 meetings a month for a quarter: 36 attendances. All 36 last
        // quarter, 35 now. Pooled 71/72 = 0.9861; se = sqrt(0.9861 × 0.0139 × (1/36 + 1/36))
        // = 0.0276; fall 0.0278; z = 1.01; one-sided p = 0.16.
        let (z, p) = worse_than_chance(Counts { x: 36.0, n: 36.0 }, Counts { x: 35.0, n: 36.0 }, true).unwrap();
        assert!((z - 1.01).abs() < 0.01 && (p - 0.156).abs() < 0.002, "z {z} p {p}");
        // A 400-member community, 3 meetings a month: 3,600 attendances; 90% then 82%.
        // Pooled 0.86; se = sqrt(0.86 × 0.14 × 2/3600) = 0.00818; z = 0.08/0.00818 = 9.78.
        let (z, p) = worse_than_chance(Counts { x: 3240.0, n: 3600.0 }, Counts { x: 2952.0, n: 3600.0 }, true).unwrap();
        assert!((z - 9.78).abs() < 0.01 && p < 1e-20, "z {z} p {p}");
        // For a rate where lower is better the same counts are an improvement.
        let (z, _) =
            worse_than_chance(Counts { x: 3240.0, n: 3600.0 }, Counts { x: 2952.0, n: 3600.0 }, false).unwrap();
        assert!(z < 0.0);
        assert_eq!(worse_than_chance(Counts { x: 5.0, n: 5.0 }, Counts { x: 9.0, n: 9.0 }, true), None);
    }

    #[test]
    fn counts_are_a_proportion_only_when_the_value_is_their_ratio() {
        assert_eq!(Counts::of_proportion(Some(3.0), Some(4.0), Some(0.75)), Some(Counts { x: 3.0, n: 4.0 }));
        assert_eq!(Counts::of_proportion(Some(5.0), Some(4.0), Some(1.0)), None, "capped");
        assert_eq!(Counts::of_proportion(Some(2.5), Some(4.0), Some(0.625)), None, "not counts");
        assert_eq!(Counts::of_proportion(Some(0.0), Some(0.0), None), None);
        assert_eq!(
            Counts::of_rate(Some(2.0), Some(12.0), Some(200.0 / 12.0), "per100"),
            Some(Counts { x: 2.0, n: 12.0 })
        );
        assert_eq!(Counts::of_rate(Some(30.0), Some(4.0), Some(7.5), "points"), None);
    }

    #[test]
    fn overdispersion_widens_the_limits_only_when_the_rates_spread_more_than_chance() {
        // Twenty units of 1,000 trials around 0.8: binomial spread (sd 0.0126) gives phi 1.
        let tight: Vec<Counts> = (0..20).map(|i| Counts { x: 800.0 + f64::from(i % 5 - 2) * 6.0, n: 1000.0 }).collect();
        assert_eq!(Funnel::of(&tight, true).unwrap().phi, 1.0);
        // Spread of ±0.06: far more than chance, phi well above 1, and a unit at 0.74 is
        // outside the binomial limits but within the widened ones.
        let wide: Vec<Counts> = (0..20).map(|i| Counts { x: 800.0 + f64::from(i % 5 - 2) * 30.0, n: 1000.0 }).collect();
        let f = Funnel::of(&wide, true).unwrap();
        assert!(f.phi > 4.0, "{}", f.phi);
        let unit = Counts { x: 740.0, n: 1000.0 };
        assert!(matches!(Funnel { phi: 1.0, ..f }.place(unit, 0.998), Place::Below(_)));
        assert_eq!(f.place(unit, 0.998), Place::Within);
    }
}
