//! `sample`: a deterministic generator of a district's monthly exports, as districts really
//! hand them over: a GB18030 units file with Chinese headers; attendance as GB18030 CSV with
//! Chinese headers, labels and `2026/3/6` dates (street and rural units) and as UTF-8 CSV with a
//! BOM and English headers (organs and non-public); points as XLSX with Excel dates (or CSV
//! when large); assessments as XLSX; and late correction files for some events.
//!
//! The same options give the same bytes (file times included). Rows are written as they are
//! generated, so memory stays flat at any size. With `dirty` > 0, rows are spoiled on purpose,
//! one spoil of each kind in turn, and the summary says how many rows should be quarantined or
//! dropped as duplicates.

mod ledgers;
mod names;

mod write;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use chrono::{Datelike, NaiveDate};

use crate::model::period::Period;
use crate::rng::Rng;
use write::{CsvOut, Enc, XlsxOut};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub units: u32,
    pub members: u32,
    pub months: u32,
    pub seed: u64,
    pub dirty: f64,
    /// The last month of the history.
    pub end: Period,
    /// Every file UTF-8 CSV with English headers and codes.
    pub plain: bool,
}

/// What was generated, and what an ingest of it should report.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SampleSummary {
    pub units: u64,
    pub members: u64,
    pub files: Vec<(PathBuf, u64)>,
    pub rows: BTreeMap<&'static str, u64>,
    /// Spoiled rows by spoil kind.
    pub spoiled: BTreeMap<&'static str, u64>,
    /// Rows an ingest should quarantine (spoils; a key conflict quarantines two rows).
    pub expect_quarantined: u64,
    /// Rows an ingest of the whole sample in one call should drop as duplicates (exact
    /// repeats, and the originals of corrected rows).
    pub expect_duplicates: u64,
}

/// Points rows above which points go to CSV instead of XLSX (XLSX is for small districts).
const XLSX_POINTS_LIMIT: u64 = 150_000;

struct Unit {
    id: String,
    name: String,
    parent: Option<usize>,
    level: &'static str,
    category: Option<&'static str>,
    strength: f64,
}

fn level_zh(level: &str) -> &'static str {
    crate::model::kinds::label_of(crate::model::kinds::LEVELS, level)
}

fn build_tree(n: u32, rng: &mut Rng) -> Vec<Unit> {
    let n = n.max(12);
    // A district has a handful of townships, a province a hundred or so; past 800 units the
    // townships stop growing and their communities multiply.
    let townships = (n / 8).clamp(4, 100);
    let communities = ((n - 1 - townships) * 2 / 5).max(townships);
    let branches = n - 1 - townships - communities;
    let mut units = vec![Unit {
        id: "D01".into(),
        name: names::DISTRICT.into(),
        parent: None,
        level: "district",
        category: None,
        strength: 0.8,
    }];
    let cats = ["community", "rural", "organ", "nonpublic"];
    let w = (townships as f64).log10().ceil().max(2.0) as usize;
    for t in 0..townships {
        let category = if (t as usize) < cats.len() {
            cats[t as usize]
        } else if rng.chance(0.6) {
            "community"
        } else {
            "rural"
        };
        let name = names::township(category, t as usize);
        units.push(Unit {
            id: format!("T{:0w$}", t + 1),
            name,
            parent: Some(0),
            level: "township",
            category: Some(category),
            strength: 0.0,
        });
    }
    let w = (communities as f64).log10().ceil().max(3.0) as usize;
    for c in 0..communities {
        let parent = 1 + (c % townships) as usize;
        let category = units[parent].category.expect("township has a category");
        // About one community in seven is weak: its branches inherit that.
        let strength = if rng.chance(0.15) { 0.30 + 0.2 * rng.f64() } else { 0.62 + 0.36 * rng.f64() };
        let name = names::community(category, c as usize, &units[parent].name);
        units.push(Unit {
            id: format!("C{:0w$}", c + 1),
            name,
            parent: Some(parent),
            level: "community",
            category: Some(category),
            strength,
        });
    }
    let w = (branches as f64).log10().ceil().max(4.0) as usize;
    let first_community = 1 + townships as usize;
    for b in 0..branches {
        let parent = first_community + (b % communities) as usize;
        let (category, base) = (units[parent].category, units[parent].strength);
        let strength = (base + 0.16 * (rng.f64() - 0.5)).clamp(0.2, 0.99);
        let ordinal = b / communities + 1;
        let name = format!("{}{}", units[parent].name, names::branch_suffix(ordinal as usize));
        units.push(Unit {
            id: format!("B{:0w$}", b + 1),
            name,
            parent: Some(parent),
            level: "branch",
            category,
            strength,
        });
    }
    // Strength of a township: the mean of its communities.
    for t in 1..=townships as usize {
        let kids: Vec<f64> = units.iter().filter(|u| u.parent == Some(t)).map(|u| u.strength).collect();
        units[t].strength = if kids.is_empty() { 0.7 } else { kids.iter().sum::<f64>() / kids.len() as f64 };
    }
    units
}

/// One way to spoil a row, and how an ingest should count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    BadDate,
    UnknownUnit,
    BadEnum,
    MissingMember,
    Ragged,
    ExcelError,
    DateOutOfRange,
    KeyConflict,
    ExactDuplicate,
    BadBytes,
}

impl Spoil {
    const ATTENDANCE: [Spoil; 10] = [
        Spoil::BadDate,
        Spoil::UnknownUnit,
        Spoil::BadEnum,
        Spoil::MissingMember,
        Spoil::Ragged,
        Spoil::ExcelError,
        Spoil::DateOutOfRange,
        Spoil::KeyConflict,
        Spoil::ExactDuplicate,
        Spoil::BadBytes,
    ];

    fn name(self) -> &'static str {
        match self {
            Spoil::BadDate => "bad_date",
            Spoil::UnknownUnit => "unknown_unit",
            Spoil::BadEnum => "bad_enum",
            Spoil::MissingMember => "missing_member",
            Spoil::Ragged => "ragged",
            Spoil::ExcelError => "excel_error",
            Spoil::DateOutOfRange => "date_out_of_range",
            Spoil::KeyConflict => "key_conflict",
            Spoil::ExactDuplicate => "exact_duplicate",
            Spoil::BadBytes => "bad_bytes",
        }
    }
}

/// How far a falling community's strength drops in the sample's last quarter.
const FALL: f64 = 0.4;

/// The branches of the community that falls in the sample's last quarter: the strong community
/// (strength at least 0.75) of the street or rural projects with the most members. What the
/// problem list must catch among the noise of small branches: a large unit's real fall,
/// tested on its counts (a new secretary, a merger: it happens).
fn falling_branches(units: &[Unit], members_of: &BTreeMap<usize, Vec<usize>>) -> HashSet<usize> {
    let members = |c: usize| -> usize {
        members_of.iter().filter(|(b, _)| units[**b].parent == Some(c)).map(|(_, m)| m.len()).sum()
    };
    let community = (0..units.len())
        .filter(|&c| {
            let u = &units[c];
            u.level == "community" && matches!(u.category, Some("community" | "rural")) && u.strength >= 0.75
        })
        .max_by_key(|&c| (members(c), std::cmp::Reverse(c)));
    community
        .map_or_else(HashSet::new, |c| members_of.keys().copied().filter(|b| units[*b].parent == Some(c)).collect())
}

/// Generate the sample into `out` (created; must be empty or missing).
pub fn generate(out: &Path, opts: &SampleOptions) -> Result<SampleSummary> {
    let Period::Month { .. } = opts.end else { bail!("--end must be a month, such as 2026-03") };
    if opts.months == 0 || opts.members == 0 {
        bail!("--months and --members must be at least 1");
    }
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!("{} is not empty; the sample goes into a new or empty folder", out.display());
    }
    let root = Rng::new(opts.seed);
    let units = build_tree(opts.units, &mut root.fork("tree"));
    let branches: Vec<usize> = (0..units.len()).filter(|&i| units[i].level == "branch").collect();
    // Members in contiguous blocks per branch, sizes varying a little.
    let member_branch: Vec<usize> =
        (0..opts.members as usize).map(|m| branches[m * branches.len() / opts.members as usize]).collect();
    let mut members_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (m, b) in member_branch.iter().enumerate() {
        members_of.entry(*b).or_default().push(m);
    }
    let mut months = vec![opts.end];
    while months.len() < opts.months as usize {
        let p = months.last().expect("non-empty").previous();
        months.push(p);
    }
    months.reverse();

    let mut g = Gen {
        out: out.to_path_buf(),
        summary: SampleSummary { units: units.len() as u64, members: opts.members as u64, ..Default::default() },
        file_seq: 0,
        base_time: {
            let d = opts.end.end_exclusive();
            chrono::NaiveDateTime::new(d, chrono::NaiveTime::from_hms_opt(8, 0, 0).expect("valid"))
                .and_utc()
                .timestamp()
        },
        dirty: opts.dirty,
        spoil_rng: root.fork("dirt"),
        spoil_turn: 0,
        spoiled_keys: HashSet::new(),
        plain: opts.plain,
    };
    std::fs::create_dir_all(out)?;
    g.write_units(&units)?;
    let mut corrections = Vec::new();
    let mut rng = root.fork("attendance");
    let falling = falling_branches(&units, &members_of);
    for (mi, month) in months.iter().enumerate() {
        // The last quarter's fall (see `falling_branches`), when there is a quarter before it.
        let fall = if months.len() >= 6 && mi + 3 >= months.len() { &falling } else { &HashSet::new() };
        let c = g.write_attendance_month(&units, &members_of, *month, mi, fall, &mut rng)?;
        // Corrections arrive for the latest quarter only, as they do in practice.
        if mi + 3 >= months.len() {
            corrections.push((*month, c));
        }
    }
    // Points: XLSX per quarter for a small district, CSV per month for a large one.
    let points_rows_estimate = opts.members as u64 * months.len() as u64 * 2;
    let mut prng = root.fork("points");
    if points_rows_estimate <= XLSX_POINTS_LIMIT && !opts.plain {
        let mut quarter: Option<(Period, XlsxOut)> = None;
        for month in &months {
            let Period::Month { year, month: m } = *month else { unreachable!() };
            let q = Period::quarter_of(NaiveDate::from_ymd_opt(year, m, 1).expect("valid"));
            if quarter.as_ref().is_none_or(|(p, _)| *p != q) {
                if let Some((p, x)) = quarter.take() {
                    g.finish_xlsx(x, &format!("points/积分台账_{p}.xlsx"), "points")?;
                }
                // As an office keeps a quarter's ledger: instructions, then a sheet a month.
                quarter = Some((q, XlsxOut::office(&names::POINTS_HEADER_ZH)?));
            }
            let (_, x) = quarter.as_mut().expect("set above");
            x.office_sheet(&format!("{m}月"), &format!("{year}年{m}月党员积分台账"))?;
            g.points_month(&units, &member_branch, *month, &mut prng, &mut PointsSink::Xlsx(x))?;
        }
        if let Some((p, x)) = quarter.take() {
            g.finish_xlsx(x, &format!("points/积分台账_{p}.xlsx"), "points")?;
        }
    } else {
        for month in &months {
            let mut csv = CsvOut::create(&out.join(format!("points/points_{month}.csv")), Enc::Utf8)?;
            csv.row(&names::POINTS_HEADER_EN)?;
            g.points_month(&units, &member_branch, *month, &mut prng, &mut PointsSink::Csv(&mut csv))?;
            g.finish_csv(csv, "points")?;
        }
    }
    if !opts.plain {
        g.write_assessment(&units, &months, &mut root.fork("assessment"))?;
    }
    // Late corrections come last, so they are the latest exports.
    for (month, rows) in corrections {
        if !rows.is_empty() {
            g.write_corrections(month, rows)?;
        }
    }
    let ledgers = root.fork("ledgers");
    let tasks = ledgers::tasks(&units, &months, &mut ledgers.fork("tasks"));
    let findings = ledgers::findings(&units, &months, &mut ledgers.fork("findings"));
    g.write_ledgers(&units, &tasks, &findings, &ledgers::export_days(&months))?;
    if !opts.plain
        && let Some(r) = Restructure::of(&units, &months)
    {
        g.write_restructure(&units, &r)?;
    }
    Ok(g.summary)
}

/// A restructure at the start of the last year of the sample, when the sample has months
/// before it: a street community splits, its last branch going to a new community of the same
/// township (组织架构调整, with 生效日期). Attendance keeps the branch's id, so only the roll-up
/// changes: the periods before the split keep their figures.
struct Restructure {
    effective: NaiveDate,
    /// The community that splits, and its branch that moves.
    community: usize,
    branch: usize,
    new_id: String,
    new_name: String,
}

impl Restructure {
    fn of(units: &[Unit], months: &[Period]) -> Option<Restructure> {
        let Period::Month { year, .. } = *months.last()? else { return None };
        let effective = NaiveDate::from_ymd_opt(year, 1, 1)?;
        if months.first()?.start() >= effective {
            return None;
        }
        let branches_of = |c: usize| (0..units.len()).filter(move |&b| units[b].parent == Some(c));
        let community = (0..units.len()).find(|&c| {
            units[c].level == "community" && units[c].category == Some("community") && branches_of(c).count() >= 2
        })?;
        let branch = branches_of(community).next_back()?;
        let communities = units.iter().filter(|u| u.level == "community").count();
        let width = units[community].id.len() - 1;
        let township = &units[units[community].parent?];
        Some(Restructure {
            effective,
            community,
            branch,
            new_id: format!("C{:0width$}", communities + 1),
            new_name: names::community("community", communities, &township.name),
        })
    }
}

enum PointsSink<'a> {
    Xlsx(&'a mut XlsxOut),
    Csv(&'a mut CsvOut),
}

/// A correction: a row re-exported later with another status.
type Correction = [String; 7];

struct Gen {
    out: PathBuf,
    summary: SampleSummary,
    file_seq: i64,
    base_time: i64,
    dirty: f64,
    spoil_rng: Rng,
    spoil_turn: usize,
    spoiled_keys: HashSet<(String, String)>,
    plain: bool,
}

impl Gen {
    /// Stamp the file's time: exports are ordered by it, so it must not depend on when the
    /// generator ran.
    fn stamp(&mut self, path: &Path) -> Result<()> {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs((self.base_time + self.file_seq * 60) as u64);
        self.file_seq += 1;
        std::fs::File::options().write(true).open(path)?.set_modified(t)?;
        Ok(())
    }

    fn finish_csv(&mut self, csv: CsvOut, kind: &'static str) -> Result<()> {
        let (path, rows) = csv.finish()?;
        self.stamp(&path)?;
        *self.summary.rows.entry(kind).or_default() += rows;
        self.summary.files.push((path.strip_prefix(&self.out).unwrap_or(&path).to_path_buf(), rows));
        Ok(())
    }

    fn finish_xlsx(&mut self, x: XlsxOut, rel: &str, kind: &'static str) -> Result<()> {
        let path = self.out.join(rel);
        let rows = x.save(&path)?;
        self.stamp(&path)?;
        *self.summary.rows.entry(kind).or_default() += rows;
        self.summary.files.push((PathBuf::from(rel), rows));
        Ok(())
    }

    fn next_spoil(&mut self, allowed: &[Spoil]) -> Option<Spoil> {
        if self.dirty <= 0.0 || !self.spoil_rng.chance(self.dirty) {
            return None;
        }
        let s = allowed[self.spoil_turn % allowed.len()];
        self.spoil_turn += 1;
        *self.summary.spoiled.entry(s.name()).or_default() += 1;
        match s {
            Spoil::KeyConflict => self.summary.expect_quarantined += 2,
            Spoil::ExactDuplicate => self.summary.expect_duplicates += 1,
            _ => self.summary.expect_quarantined += 1,
        }
        Some(s)
    }

    fn write_units(&mut self, units: &[Unit]) -> Result<()> {
        if self.plain {
            let mut csv = CsvOut::create(&self.out.join("units/units.csv"), Enc::Utf8)?;
            csv.row(&["unit_id", "unit_name", "parent_id", "level", "category"])?;
            for u in units {
                let parent = u.parent.map(|p| units[p].id.as_str()).unwrap_or("");
                csv.row(&[&u.id, &u.name, parent, u.level, u.category.unwrap_or("")])?;
            }
            return self.finish_csv(csv, "units");
        }
        // As the organisation department exports it: a title and a 填报单位 line above the
        // header, a 序号 column, a header cell wrapped in Excel, a 合计 row and a 填表人 line below.
        let mut csv = CsvOut::create(&self.out.join("units/组织架构.csv"), Enc::Gb18030)?;
        csv.note(&[&format!("{}基层党组织设置情况表", names::DISTRICT), "", "", "", "", ""])?;
        csv.note(&["填报单位：区委组织部", "", "", "", "", ""])?;
        csv.row(&["序号", "组织编码", "组织名称", "上级组织\n编码", "层级", "类别"])?;
        for (i, u) in units.iter().enumerate() {
            let parent = u.parent.map(|p| units[p].id.as_str()).unwrap_or("");
            let cat =
                u.category.map(|c| crate::model::kinds::label_of(crate::model::kinds::CATEGORIES, c)).unwrap_or("");
            csv.row(&[&(i + 1).to_string(), &u.id, &u.name, parent, level_zh(u.level), cat])?;
        }
        csv.note(&["合计", &format!("{}个", units.len()), "", "", "", ""])?;
        csv.note(&["填表人：（略）", "", "审核人：（略）", "", "", ""])?;
        self.finish_csv(csv, "units")
    }

    /// The restructure's export: the new community and the moved branch, with 生效日期, and an
    /// empty 撤销日期 column, as an organisation department's adjustment notice is exported.
    fn write_restructure(&mut self, units: &[Unit], r: &Restructure) -> Result<()> {
        let mut csv =
            CsvOut::create(&self.out.join(format!("units/组织架构调整_{}.csv", r.effective.year())), Enc::Gb18030)?;
        csv.row(&["组织编码", "组织名称", "上级组织编码", "层级", "类别", "生效日期", "撤销日期"])?;
        let day = format!("{}/{}/{}", r.effective.year(), r.effective.month(), r.effective.day());
        let community = &units[r.community];
        let township = &units[community.parent.expect("a community has a parent")];
        let cat = crate::model::kinds::label_of(crate::model::kinds::CATEGORIES, "community");
        csv.row(&[&r.new_id, &r.new_name, &township.id, level_zh("community"), cat, &day, ""])?;
        let branch = &units[r.branch];
        let name = format!("{}{}", r.new_name, names::branch_suffix(1));
        csv.row(&[&branch.id, &name, &r.new_id, level_zh("branch"), cat, &day, ""])?;
        self.summary.units += 1;
        self.finish_csv(csv, "units")
    }

    /// One month of attendance: two exports (street/rural in GB18030 Chinese, organs and
    /// non-public in UTF-8 English). Returns a few rows to correct later.
    fn write_attendance_month(
        &mut self,
        units: &[Unit],
        members_of: &BTreeMap<usize, Vec<usize>>,
        month: Period,
        month_index: usize,
        falling: &HashSet<usize>,
        rng: &mut Rng,
    ) -> Result<Vec<Correction>> {
        let Period::Month { year, month: m } = month else { unreachable!() };
        // Plain: one UTF-8 file a month, English throughout, so no Chinese export at all.
        let mut zh = if self.plain {
            None
        } else {
            let mut f = CsvOut::create(&self.out.join(format!("attendance/{month}_街道农村出勤.csv")), Enc::Gb18030)?;
            f.row(&["活动编号", "组织编码", "活动类型", "活动日期", "党员编号", "出勤状态", "姓名"])?;
            Some(f)
        };
        let (en_name, en_enc) = if self.plain {
            (format!("attendance/attendance_{month}.csv"), Enc::Utf8)
        } else {
            (format!("attendance/{month}_organs_nonpublic.csv"), Enc::Utf8Bom)
        };
        let mut en = CsvOut::create(&self.out.join(en_name), en_enc)?;
        en.row(&["event_id", "unit_id", "event_type", "event_date", "member_id", "status", "member_name"])?;
        let mut corrections = Vec::new();
        let month_in_quarter = (m - 1) % 3; // 0, 1, 2
        for (&b, members) in members_of {
            let u = &units[b];
            let s = if falling.contains(&b) { (u.strength - FALL).max(0.2) } else { u.strength };
            // A weak branch sometimes does nothing at all in a month.
            if rng.chance((1.0 - s) * 0.35) {
                continue;
            }
            let mut events: Vec<(&'static str, Vec<usize>)> = Vec::new();
            if rng.chance(0.45 + 0.55 * s) {
                events.push(("activity_day", members.clone()));
            }
            if month_in_quarter == 1 && rng.chance(0.25 + 0.75 * s) {
                events.push(("member_meeting", members.clone()));
            }
            if rng.chance(0.35 + 0.65 * s) {
                events.push(("committee_meeting", members.iter().take(5).copied().collect()));
            }
            if rng.chance(0.3 + 0.7 * s) {
                let half: Vec<usize> =
                    members.iter().copied().filter(|x| (x + month_index).is_multiple_of(2)).collect();
                events.push(("group_meeting", if half.is_empty() { members.clone() } else { half }));
            }
            if month_in_quarter == 2 && rng.chance(0.2 + 0.8 * s) {
                events.push(("party_lesson", members.clone()));
            }
            if m == 1 && rng.chance(0.5 + 0.5 * s) {
                events.push(("org_life", members.clone()));
            }
            if rng.chance(0.25) {
                events.push(("training", members.iter().copied().filter(|_| rng.chance(0.4)).collect()));
            }
            if rng.chance(0.3) {
                events.push(("service", members.iter().copied().filter(|_| rng.chance(0.3)).collect()));
            }
            let chinese = !self.plain && matches!(u.category, Some("community" | "rural"));
            for (seq, (etype, attendees)) in events.into_iter().enumerate() {
                let day = 3 + rng.below(24) as u32;
                let date = NaiveDate::from_ymd_opt(year, m, day.min(28)).expect("valid day");
                let event_id = format!("E{}-{year}{m:02}-{:02}", u.id, seq + 1);
                let present_p = (0.55 + 0.43 * s).min(0.99);
                for &member in &attendees {
                    let r = rng.f64();
                    let status = if r < present_p {
                        "present"
                    } else if r < present_p + (1.0 - present_p) * 0.55 {
                        "leave"
                    } else {
                        "absent"
                    };
                    let member_id = format!("M{:06}", member + 1);
                    let name = names::person(member);
                    let mut row: [String; 7] = [
                        event_id.clone(),
                        u.id.clone(),
                        etype.to_string(),
                        date.format("%Y-%m-%d").to_string(),
                        member_id.clone(),
                        status.to_string(),
                        name,
                    ];
                    let spoil = self.next_spoil(&Spoil::ATTENDANCE);
                    // `chinese` is never true in plain mode, where there is no Chinese export.
                    let out = match zh.as_mut() {
                        Some(z) if chinese => z,
                        _ => &mut en,
                    };
                    if chinese {
                        localise(&mut row, date);
                    }
                    match spoil {
                        None => {
                            // A few absences are later excused by a correction export.
                            if status == "absent" && rng.chance(0.08) {
                                let mut fixed = row.clone();
                                fixed[5] = if chinese { "请假".into() } else { "leave".into() };
                                corrections.push(fixed);
                            }
                            out.row_owned(&row)?;
                        }
                        Some(sp) => {
                            self.spoiled_keys.insert((row[0].clone(), row[4].clone()));
                            spoil_row(sp, &mut row, out, chinese)?;
                        }
                    }
                }
            }
        }
        if let Some(z) = zh {
            self.finish_csv(z, "attendance")?;
        }
        self.finish_csv(en, "attendance")?;
        Ok(corrections)
    }

    fn write_corrections(&mut self, month: Period, rows: Vec<Correction>) -> Result<()> {
        let mut csv =
            CsvOut::create(&self.out.join(format!("corrections/attendance_correction_{month}.csv")), Enc::Utf8Bom)?;
        csv.row(&["event_id", "unit_id", "event_type", "event_date", "member_id", "status", "member_name"])?;
        for r in rows {
            if self.spoiled_keys.contains(&(r[0].clone(), r[4].clone())) {
                continue;
            }
            // The correction system exports English codes and ISO dates whatever the original.
            let mut r = r;
            delocalise(&mut r);
            csv.row_owned(&r)?;
            // Ingested in the same call as the original, the original is the duplicate dropped;
            // ingested later, it is superseded instead.
            self.summary.expect_duplicates += 1;
        }
        self.finish_csv(csv, "attendance")
    }

    fn points_month(
        &mut self,
        units: &[Unit],
        member_branch: &[usize],
        month: Period,
        rng: &mut Rng,
        sink: &mut PointsSink,
    ) -> Result<()> {
        let Period::Month { year, month: m } = month else { unreachable!() };
        let mut seq = 0u32;
        for (member, &b) in member_branch.iter().enumerate() {
            let u = &units[b];
            let s = u.strength;
            let mut entries: Vec<(&str, &str, f64)> = Vec::new();
            if rng.chance(0.85 + 0.15 * s) {
                entries.push(("base", "B01", 2.0));
            }
            if rng.chance(0.2 + 0.5 * s) {
                entries.push(("task", *rng.pick(&["T01", "T02", "T03"]), (3 + rng.below(8)) as f64));
            }
            if rng.chance(0.06 * s) {
                entries.push(("reward", "R01", (5 + rng.below(16)) as f64));
            }
            if rng.chance((1.0 - s) * 0.2) {
                entries.push(("deduction", *rng.pick(&["D01", "D02"]), -((2 + rng.below(9)) as f64)));
            }
            for (cat, rule, pts) in entries {
                seq += 1;
                let date = NaiveDate::from_ymd_opt(year, m, 1 + rng.below(28) as u32).expect("valid day");
                let approved = !rng.chance(0.03);
                let entry_id = format!("P{year}{m:02}{seq:07}");
                let member_id = format!("M{:06}", member + 1);
                let spoil = if self.dirty > 0.0 && self.spoil_rng.chance(self.dirty) {
                    *self.summary.spoiled.entry("positive_deduction_or_bad_number").or_default() += 1;
                    self.summary.expect_quarantined += 1;
                    true
                } else {
                    false
                };
                let pts_text = if spoil {
                    if cat == "deduction" { format!("{}", -pts) } else { "十分".to_string() }
                } else {
                    format!("{pts}")
                };
                match sink {
                    PointsSink::Xlsx(x) => {
                        let cat_zh = crate::model::kinds::label_of(crate::model::kinds::POINT_CATEGORIES, cat);
                        x.row(&[
                            write::Cell::Text(entry_id),
                            write::Cell::Text(member_id),
                            write::Cell::Text(u.id.clone()),
                            write::Cell::Date(date),
                            write::Cell::Text(cat_zh.into()),
                            write::Cell::Text(rule.into()),
                            match pts_text.parse::<f64>() {
                                Ok(v) => write::Cell::Number(v),
                                Err(_) => write::Cell::Text(pts_text),
                            },
                            write::Cell::Text(if approved { "是" } else { "否" }.into()),
                            write::Cell::Text(names::person(member)),
                        ])?;
                    }
                    PointsSink::Csv(c) => {
                        c.row_owned(&[
                            entry_id,
                            member_id,
                            u.id.clone(),
                            date.format("%Y-%m-%d").to_string(),
                            cat.to_string(),
                            rule.to_string(),
                            pts_text,
                            approved.to_string(),
                            names::person(member),
                        ])?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The task and finding ledgers, re-exported whole on each export day: XLSX with Chinese
    /// headers and labels, or plain CSV. Every row of an earlier export that a later one
    /// repeats is a duplicate to an ingest of the whole sample.
    fn write_ledgers(
        &mut self,
        units: &[Unit],
        tasks: &[ledgers::Task],
        findings: &[ledgers::Finding],
        days: &[(Period, NaiveDate)],
    ) -> Result<()> {
        use crate::model::kinds::{self as k, label_of};
        let date = |d: Option<NaiveDate>| d.map_or(write::Cell::Text(String::new()), write::Cell::Date);
        let text = |s: &str| write::Cell::Text(s.to_string());
        let mut written = 0u64;
        let mut keys = HashSet::new();
        for (month, day) in days {
            let rows: Vec<&ledgers::Task> = tasks.iter().filter(|t| t.due.year() == day.year()).collect();
            let mut table = Vec::new();
            for t in &rows {
                let (status, done) = t.status_on(*day);
                let (project, status) = if self.plain {
                    (t.project, status)
                } else {
                    (label_of(k::PROJECTS, t.project), label_of(k::TASK_STATUSES, status))
                };
                table.push(vec![
                    text(&t.id),
                    text(&units[t.unit].id),
                    text(project),
                    text(&t.title),
                    write::Cell::Date(t.due),
                    text(status),
                    date(done),
                ]);
                keys.insert(t.id.clone());
            }
            written += table.len() as u64;
            let header_zh = ["任务编号", "责任单位编码", "所属工程", "任务内容", "完成时限", "完成状态", "完成日期"];
            let header_en = ["task_id", "unit_id", "project", "title", "due_date", "status", "done_date"];
            self.write_table(&format!("tasks/目标任务台账_{month}"), &header_zh, &header_en, table, "tasks")?;

            let mut table = Vec::new();
            for f in findings.iter().filter(|f| f.found <= *day) {
                let (status, rectified) = f.status_on(*day);
                let (source, severity, status) = if self.plain {
                    (f.source, f.severity, status)
                } else {
                    (
                        label_of(k::FINDING_SOURCES, f.source),
                        label_of(k::SEVERITIES, f.severity),
                        label_of(k::FINDING_STATUSES, status),
                    )
                };
                table.push(vec![
                    text(&f.id),
                    text(&units[f.unit].id),
                    write::Cell::Date(f.found),
                    text(source),
                    text(severity),
                    text(f.description),
                    write::Cell::Date(f.deadline),
                    text(status),
                    date(rectified),
                    text(f.problem_id.as_deref().unwrap_or("")),
                ]);
                keys.insert(f.id.clone());
            }
            written += table.len() as u64;
            let header_zh = [
                "问题编号",
                "组织编码",
                "发现日期",
                "问题来源",
                "严重程度",
                "问题描述",
                "整改时限",
                "整改状态",
                "整改完成日期",
                "关联问题编号",
            ];
            let header_en = [
                "finding_id",
                "unit_id",
                "found_date",
                "source",
                "severity",
                "description",
                "deadline",
                "status",
                "rectified_date",
                "problem_id",
            ];
            self.write_table(&format!("findings/问题整改台账_{month}"), &header_zh, &header_en, table, "findings")?;
        }
        self.summary.expect_duplicates += written - keys.len() as u64;
        Ok(())
    }

    /// One ledger export: `rel` plus `.xlsx` with the Chinese header, or `.csv` (UTF-8, the
    /// English header, ISO dates) when the sample is plain.
    fn write_table(
        &mut self,
        rel: &str,
        header_zh: &[&str],
        header_en: &[&str],
        rows: Vec<Vec<write::Cell>>,
        kind: &'static str,
    ) -> Result<()> {
        if self.plain {
            let mut csv = CsvOut::create(&self.out.join(format!("{rel}.csv")), Enc::Utf8)?;
            csv.row(header_en)?;
            for row in rows {
                let cells: Vec<String> = row
                    .into_iter()
                    .map(|c| match c {
                        write::Cell::Text(s) => s,
                        write::Cell::Number(n) => n.to_string(),
                        write::Cell::Date(d) => d.to_string(),
                    })
                    .collect();
                csv.row_owned(&cells)?;
            }
            return self.finish_csv(csv, kind);
        }
        let mut x = XlsxOut::new(header_zh)?;
        for row in rows {
            x.row(&row)?;
        }
        self.finish_xlsx(x, &format!("{rel}.xlsx"), kind)
    }

    fn write_assessment(&mut self, units: &[Unit], months: &[Period], rng: &mut Rng) -> Result<()> {
        let mut quarters: Vec<Period> = Vec::new();
        for p in months {
            let Period::Month { year, month } = *p else { unreachable!() };
            let q = Period::quarter_of(NaiveDate::from_ymd_opt(year, month, 1).expect("valid"));
            // Only complete quarters are assessed.
            if month % 3 == 0 && !quarters.contains(&q) {
                quarters.push(q);
            }
        }
        let mut by_year: BTreeMap<i32, Vec<Period>> = BTreeMap::new();
        for q in quarters {
            by_year.entry(q.year()).or_default().push(q);
        }
        for (year, qs) in by_year {
            let mut x = XlsxOut::new(&[
                "组织编码",
                "考核期",
                "考核方式",
                "考核项目编码",
                "考核项目",
                "满分",
                "得分",
                "考核人",
                "扣分原因",
            ])?;
            for q in &qs {
                for u in units.iter().filter(|u| u.level != "district") {
                    let mut items: Vec<(&str, (&str, &str))> = names::ITEMS.iter().map(|i| ("定期督查", *i)).collect();
                    if rng.chance(0.3) {
                        items.extend(names::ITEMS.iter().take(2).map(|i| ("随机抽查", *i)));
                    }
                    if rng.chance(0.12) {
                        items.push(("走访暗查", names::ITEMS[2]));
                    }
                    for (method, (code, item)) in items {
                        let max = 20.0;
                        let raw = u.strength + 0.1 * (rng.f64() - 0.5);
                        let mut score = (max * raw.clamp(0.2, 1.0) * 2.0).round() / 2.0;
                        let spoil = self.dirty > 0.0 && self.spoil_rng.chance(self.dirty);
                        if spoil {
                            score = max + 5.0;
                            *self.summary.spoiled.entry("score_above_max").or_default() += 1;
                            self.summary.expect_quarantined += 1;
                        }
                        let note = if score < max * 0.7 { "台账资料不完整" } else { "" };
                        x.row(&[
                            write::Cell::Text(u.id.clone()),
                            write::Cell::Text(q.to_string()),
                            write::Cell::Text(method.into()),
                            write::Cell::Text(code.into()),
                            write::Cell::Text(item.into()),
                            write::Cell::Number(max),
                            write::Cell::Number(score),
                            write::Cell::Text(names::person(1000 + rng.below(20) as usize)),
                            write::Cell::Text(note.into()),
                        ])?;
                    }
                }
            }
            // A full year gets the annual review (述职评议) of townships and communities.
            if qs.len() == 4 {
                for u in units.iter().filter(|u| matches!(u.level, "township" | "community")) {
                    let score = (100.0 * (u.strength + 0.08 * (rng.f64() - 0.5)).clamp(0.3, 1.0)).round();
                    x.row(&[
                        write::Cell::Text(u.id.clone()),
                        write::Cell::Text(format!("{year}年")),
                        write::Cell::Text("述职评议".into()),
                        write::Cell::Text("Y01".into()),
                        write::Cell::Text("书记抓党建述职评议".into()),
                        write::Cell::Number(100.0),
                        write::Cell::Number(score),
                        write::Cell::Text(String::new()),
                        write::Cell::Text(String::new()),
                    ])?;
                }
            }
            self.finish_xlsx(x, &format!("assessment/考核记录_{year}.xlsx"), "assessment")?;
        }
        Ok(())
    }
}

/// Chinese labels and `2026/3/6` dates, as the street and rural system exports them.
fn localise(row: &mut [String; 7], date: NaiveDate) {
    use crate::model::kinds::{EVENT_TYPES, STATUSES, label_of};
    row[2] = label_of(EVENT_TYPES, &row[2]).to_string();
    row[3] = format!("{}/{}/{}", date.year(), date.month(), date.day());
    row[5] = label_of(STATUSES, &row[5]).to_string();
}

fn delocalise(row: &mut [String; 7]) {
    let labels = crate::model::kinds::all_labels();
    for i in [2, 5] {
        if let Some(code) = labels.get(row[i].as_str()) {
            row[i] = code.to_string();
        }
    }
    if let Ok(d) = crate::ingest::values::parse_date(&row[3]) {
        row[3] = d.format("%Y-%m-%d").to_string();
    }
}

fn spoil_row(sp: Spoil, row: &mut [String; 7], out: &mut CsvOut, chinese: bool) -> Result<()> {
    match sp {
        Spoil::BadDate => row[3] = "2026-02-30".into(),
        Spoil::UnknownUnit => row[1] = "X999".into(),
        Spoil::BadEnum => row[5] = if chinese { "迟到".into() } else { "late".into() },
        Spoil::MissingMember => row[4] = String::new(),
        Spoil::Ragged => {
            let short: Vec<&str> = row[..4].iter().map(String::as_str).collect();
            return out.row(&short);
        }
        Spoil::ExcelError => row[3] = "#VALUE!".into(),
        Spoil::DateOutOfRange => row[3] = "1926-03-06".into(),
        Spoil::KeyConflict => {
            out.row_owned(row)?;
            row[5] = if row[5] == "absent" || row[5] == "缺席" { "present" } else { "absent" }.into();
            if chinese {
                row[5] = crate::model::kinds::label_of(crate::model::kinds::STATUSES, &row[5]).into();
            }
        }
        Spoil::ExactDuplicate => out.row_owned(row)?,
        Spoil::BadBytes => return out.raw_bad_row(row),
    }
    out.row_owned(row)
}
