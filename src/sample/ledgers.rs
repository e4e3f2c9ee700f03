//! The two ledgers of the review loop, as offices keep them: the year's target tasks
//! (目标任务台账) and the problems found by supervision and the expert panel (问题整改台账).
//! Each is re-exported whole as it progresses (at every quarter's end and at the last month),
//! so a later export carries the same rows with their status moved on; an ingest keeps the
//! latest.
//!
//! What happens to each task and finding is drawn once, from its unit's strength: most are
//! done on time, some late, some not at all; serious findings of weak units are the ones left
//! open. An export shows the state of things on its day.

use chrono::{Datelike, Duration, NaiveDate};

use super::Unit;
use crate::model::period::Period;
use crate::rng::Rng;

/// Tasks per community a year, across the six projects.
const TASKS_PER_COMMUNITY: usize = 10;

/// One task of a year's ledger, and what becomes of it.
pub struct Task {
    pub id: String,
    pub unit: usize,
    pub project: &'static str,
    pub title: String,
    pub due: NaiveDate,
    /// The day it is done, if ever.
    pub done: Option<NaiveDate>,
}

impl Task {
    /// Its status on `day`: done, in progress once its last quarter has begun, else pending.
    pub fn status_on(&self, day: NaiveDate) -> (&'static str, Option<NaiveDate>) {
        match self.done {
            Some(d) if d <= day => ("done", Some(d)),
            _ if day >= self.due - Duration::days(90) => ("in_progress", None),
            _ => ("pending", None),
        }
    }
}

/// One finding, and what becomes of it.
pub struct Finding {
    pub id: String,
    pub unit: usize,
    pub found: NaiveDate,
    pub source: &'static str,
    pub severity: &'static str,
    pub description: &'static str,
    pub deadline: NaiveDate,
    pub rectified: Option<NaiveDate>,
    /// The problem of the list it answers (an expert's diagnosis of a weak unit).
    pub problem_id: Option<String>,
}

impl Finding {
    /// Its status on `day`: rectified, being rectified after a third of its time, else open.
    pub fn status_on(&self, day: NaiveDate) -> (&'static str, Option<NaiveDate>) {
        match self.rectified {
            Some(d) if d <= day => ("rectified", Some(d)),
            _ if day >= self.found + (self.deadline - self.found) / 3 => ("rectifying", None),
            _ => ("open", None),
        }
    }
}

/// The project a community's category works under, and the two every unit shares.
fn projects_of(category: Option<&str>) -> [&'static str; 3] {
    let own = match category {
        Some("rural") => "magnet",
        Some("organ") => "vanguard",
        Some("nonpublic") => "red_collar",
        _ => "integration",
    };
    [own, "foundation", "spark"]
}

fn task_title(project: &str, n: usize) -> String {
    let what = match project {
        "integration" => ["共建共治共享议事会", "网格党建服务站", "区域化党建联席会议"],
        "magnet" => ["村集体经济增收项目", "返乡人才回引计划", "农村党员积分管理"],
        "vanguard" => ["机关支部结对共建", "党员先锋岗创建", "为民服务承诺事项"],
        "red_collar" => ["非公企业党组织组建", "党建指导员驻点", "红领阵地标准化"],
        "foundation" => ["支部标准化规范化建设", "三会一课台账规范", "发展党员工作规范"],
        _ => ["党建品牌培育", "书记领办项目", "星级支部创建"],
    };
    format!("{}（第{}项）", what[n % what.len()], n + 1)
}

/// The year's tasks of every community, for each year of `months`.
pub fn tasks(units: &[Unit], months: &[Period], rng: &mut Rng) -> Vec<Task> {
    let mut years: Vec<i32> = months.iter().map(|m| m.year()).collect();
    years.dedup();
    let mut out = Vec::new();
    for year in years {
        for (ui, u) in units.iter().enumerate().filter(|(_, u)| u.level == "community") {
            let projects = projects_of(u.category);
            for n in 0..TASKS_PER_COMMUNITY {
                let project = projects[n % projects.len()];
                // Due at the end of a month spread over the year.
                let month = 1 + (n as u32 * 12 / TASKS_PER_COMMUNITY as u32 + rng.below(2) as u32).min(11);
                let due = Period::Month { year, month }.end_exclusive() - Duration::days(1);
                let roll = rng.f64();
                let late_share = 0.08 + 0.3 * (1.0 - u.strength);
                let done = if roll < 1.0 - 2.0 * late_share {
                    Some(due - Duration::days(rng.below(40) as i64))
                } else if roll < 1.0 - late_share {
                    Some(due + Duration::days(5 + rng.below(50) as i64))
                } else {
                    None
                };
                out.push(Task {
                    id: format!("RW{year}-{}-{:02}", u.id, n + 1),
                    unit: ui,
                    project,
                    title: task_title(project, n),
                    due,
                    done,
                });
            }
        }
    }
    out
}

const DESCRIPTIONS: [&str; 6] = [
    "三会一课记录不完整",
    "主题党日活动流于形式",
    "党员积分台账未按月公示",
    "发展党员程序不规范",
    "党建阵地功能未发挥",
    "整改台账未及时更新",
];

/// Findings of every quarter of `months`: supervision visits to communities and branches,
/// more often to weak ones, and the expert panel's diagnosis of the weakest community of each
/// category.
pub fn findings(units: &[Unit], months: &[Period], rng: &mut Rng) -> Vec<Finding> {
    let mut quarters: Vec<Period> = Vec::new();
    for m in months {
        let q = Period::quarter_of(m.start());
        if !quarters.contains(&q) {
            quarters.push(q);
        }
    }
    // The expert panel diagnoses the weakest community of each category every quarter: the
    // unit the data most likely flags as a weak-unit candidate (last of its group).
    let mut weakest: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (ui, u) in units.iter().enumerate().filter(|(_, u)| u.level == "community") {
        let cat = u.category.unwrap_or("");
        if weakest.get(cat).is_none_or(|&w| units[w].strength > u.strength) {
            weakest.insert(cat, ui);
        }
    }
    let mut out = Vec::new();
    for q in quarters {
        let days = (q.end_exclusive() - q.start()).num_days();
        for (ui, u) in units.iter().enumerate().filter(|(_, u)| matches!(u.level, "community" | "branch")) {
            let expert = weakest.values().any(|&w| w == ui);
            let weak = u.strength < 0.55 || expert;
            let visits = usize::from(expert) + if weak { 1 } else { usize::from(rng.chance(0.45)) };
            for v in 0..visits {
                let by_expert = expert && v == 0;
                let source =
                    if by_expert { "expert" } else { *rng.pick(&["regular", "regular", "random", "unannounced"]) };
                let severity = match rng.f64() {
                    x if x < 0.5 => "minor",
                    x if x < 0.85 || !weak => "major",
                    _ => "serious",
                };
                let found = q.start() + Duration::days(rng.below(days as u64 - 20) as i64);
                let deadline = found + Duration::days(*rng.pick(&[30, 45, 60]));
                let roll = rng.f64();
                let open_share = if severity == "serious" { 0.5 } else { 0.12 };
                let rectified = if roll < open_share {
                    None
                } else if roll < open_share + 0.18 {
                    Some(deadline + Duration::days(3 + rng.below(40) as i64))
                } else {
                    Some(found + Duration::days(7 + rng.below((deadline - found).num_days() as u64 - 7) as i64))
                };
                let n = out.len() + 1;
                out.push(Finding {
                    id: format!("WT{}-{n:05}", found.year()),
                    unit: ui,
                    found,
                    source,
                    severity,
                    description: DESCRIPTIONS[rng.below(DESCRIPTIONS.len() as u64) as usize],
                    deadline,
                    rectified,
                    // The panel answers the problem the data raised: the weak-unit flag.
                    problem_id: by_expert.then(|| format!("{}:weak:weak_candidate", u.id)),
                });
            }
        }
    }
    out
}

/// The days the ledgers are exported on: the last day of each quarter's last month in
/// `months`, and of the last month.
pub fn export_days(months: &[Period]) -> Vec<(Period, NaiveDate)> {
    let mut out: Vec<(Period, NaiveDate)> = Vec::new();
    for (i, m) in months.iter().enumerate() {
        let Period::Month { month, .. } = *m else { continue };
        if month % 3 == 0 || i + 1 == months.len() {
            out.push((*m, m.end_exclusive() - Duration::days(1)));
        }
    }
    out
}
