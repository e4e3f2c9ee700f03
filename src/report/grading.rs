//! Annual grading: star bands on the composite score, and the five-star quota.

use serde::{Deserialize, Serialize};

use crate::model::Level;
use crate::review::Pack;

/// Grading rules (defaults: ≥90 five stars, 80–89 four, 70–79 three, 60–69 two, below 60 one;
/// five stars for at most 30% of the graded units).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradingRules {
    /// Lower bounds of five, four, three and two stars.
    pub bands: [f64; 4],
    pub five_star_quota: f64,
    /// The levels graded.
    pub levels: Vec<Level>,
}

impl Default for GradingRules {
    fn default() -> Self {
        GradingRules {
            bands: [90.0, 80.0, 70.0, 60.0],
            five_star_quota: 0.30,
            levels: vec![Level::Community, Level::Branch],
        }
    }
}

/// The outcome of grading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grading {
    /// (label, units) from five stars down to one.
    pub bands: Vec<(String, u32)>,
    pub graded: u32,
    pub quota_share: f64,
    /// The most five-star units the quota allows: ⌊share × graded⌋.
    pub five_star_quota: u32,
    pub within_quota: bool,
    /// (unit id, unit name, composite, stars), best first.
    pub units: Vec<(String, String, f64, u32)>,
}

/// Stars for a composite score.
pub fn stars(score: f64, bands: &[f64; 4]) -> u32 {
    match bands.iter().position(|b| score >= *b) {
        Some(i) => 5 - i as u32,
        None => 1,
    }
}

pub fn grade(pack: &Pack, rules: &GradingRules) -> Grading {
    let mut units: Vec<(String, String, f64, u32)> = pack
        .units
        .iter()
        .filter(|u| rules.levels.iter().any(|l| l.code() == u.level))
        .filter_map(|u| {
            let v = pack.row(&u.id, "composite_score")?.value?;
            Some((u.id.clone(), u.name.clone(), v, stars(v, &rules.bands)))
        })
        .collect();
    units.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let graded = units.len() as u32;
    let count = |s: u32| units.iter().filter(|u| u.3 == s).count() as u32;
    let bands = (1..=5).rev().map(|s| ("★".repeat(s as usize), count(s))).collect();
    let five_star_quota = (rules.five_star_quota * graded as f64 + 1e-9).floor() as u32;
    Grading {
        bands,
        graded,
        quota_share: rules.five_star_quota,
        five_star_quota,
        within_quota: count(5) <= five_star_quota,
        units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_bands() {
        let b = [90.0, 80.0, 70.0, 60.0];
        assert_eq!(
            [95.0, 90.0, 89.9, 80.0, 70.0, 69.99, 60.0, 59.9, 0.0].map(|s| stars(s, &b)),
            [5, 5, 4, 4, 3, 2, 2, 1, 1]
        );
    }
}
