use super::*;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// An incoming row of file `file` (exported in January 2026 unless said otherwise).
fn u(id: &str, parent: Option<&str>, level: &str, file: usize, line: i64) -> UnitRow {
    UnitRow {
        unit_id: id.into(),
        unit_name: format!("{id} 名称"),
        parent_id: parent.map(Into::into),
        level: level.into(),
        category: if parent.is_some() { Some("community".into()) } else { None },
        valid_from: None,
        valid_to: None,
        source_file: format!("f{file}.csv"),
        source_line: line,
        source_mtime: 1000 + file as i64,
        ingest_id: "i".into(),
        origin: Origin::Incoming { file, row: line as usize, effective: day("2026-01-01") },
    }
}

fn effective(mut r: UnitRow, d: &str) -> UnitRow {
    if let Origin::Incoming { effective, .. } = &mut r.origin {
        *effective = day(d);
    }
    r
}

fn stored(m: UnitsMerge) -> Vec<UnitRow> {
    m.units
        .into_iter()
        .map(|mut r| {
            r.origin = Origin::Existing;
            r
        })
        .collect()
}

fn rejected(m: &UnitsMerge) -> Vec<(String, &'static str)> {
    let mut v: Vec<_> = m.rejections.iter().map(|r| (r.reason.value.clone(), r.reason.rule.name())).collect();
    v.sort();
    v
}

/// A district D with townships T1, T2, communities C1 (under T1) and C5 (under T2), branch B
/// under C1 and branch B2 under C5, loaded by a first export.
fn district() -> Vec<UnitRow> {
    let m = merge_units(
        vec![],
        vec![
            u("D", None, "district", 0, 2),
            u("T1", Some("D"), "township", 0, 3),
            u("T2", Some("D"), "township", 0, 4),
            u("C1", Some("T1"), "community", 0, 5),
            u("C5", Some("T2"), "community", 0, 6),
            u("B", Some("C1"), "branch", 0, 7),
            u("B2", Some("C5"), "branch", 0, 8),
        ],
        Coverage::Partial,
    );
    assert!(m.rejections.is_empty());
    stored(m)
}

/// The path of each unit on `d`, from the stored stretches.
fn path_on(versions: &[UnitRow], id: &str, d: &str) -> Option<String> {
    history::stretches(versions)
        .into_iter()
        .find(|s| s.row.unit_id == id && s.row.covers(day(d)))
        .map(|s| s.path.join("/"))
}

#[test]
fn the_units_frames_have_the_columns_of_the_model() {
    assert_eq!(units_frame(&[]).unwrap().schema().as_ref(), &crate::model::Table::Units.schema());
    assert_eq!(history_frame(&[]).unwrap().schema().as_ref(), &crate::model::Table::UnitsHistory.schema());
}

#[test]
fn a_valid_tree_loads_whole_and_open_from_the_start() {
    let m = merge_units(
        vec![],
        vec![u("D", None, "district", 0, 2), u("T", Some("D"), "township", 0, 3), u("B", Some("T"), "branch", 0, 4)],
        Coverage::Partial,
    );
    assert!(m.rejections.is_empty());
    assert_eq!(m.loaded[&0], 3);
    assert!(m.units.iter().all(|v| v.valid_from.is_none() && v.valid_to.is_none()));
    assert_eq!(path_on(&m.units, "B", "2020-05-01").as_deref(), Some("D/T/B"));
}

#[test]
fn unknown_parent_cascades_to_children() {
    let m = merge_units(
        vec![],
        vec![u("D", None, "district", 0, 2), u("T", Some("X"), "township", 0, 3), u("B", Some("T"), "branch", 0, 4)],
        Coverage::Partial,
    );
    // T's parent X is unknown; then B's parent T is gone too. Values name the parent.
    assert_eq!(rejected(&m), vec![("T".into(), "reference"), ("X".into(), "reference")]);
    assert_eq!(m.units.len(), 1);
}

#[test]
fn cycles_and_second_roots_are_refused() {
    let m = merge_units(
        vec![],
        vec![u("D", None, "district", 0, 2), u("A", Some("B"), "township", 0, 3), u("B", Some("A"), "township", 0, 4)],
        Coverage::Partial,
    );
    assert_eq!(rejected(&m), vec![("A".into(), "tree"), ("B".into(), "tree")]);
    let existing = stored(merge_units(vec![], vec![u("D", None, "district", 0, 2)], Coverage::Partial));
    let m = merge_units(existing, vec![u("E", None, "district", 1, 2)], Coverage::Partial);
    assert_eq!(rejected(&m), vec![("".into(), "tree")]);
    assert_eq!(m.units.len(), 1);
}

#[test]
fn a_renamed_unit_gets_a_new_version_and_a_refused_one_restores() {
    let existing = stored(merge_units(
        vec![],
        vec![u("D", None, "district", 0, 2), u("T", Some("D"), "township", 0, 3)],
        Coverage::Partial,
    ));
    let mut renamed = u("T", Some("D"), "township", 1, 2);
    renamed.unit_name = "新名称".into();
    let m = merge_units(existing.clone(), vec![renamed], Coverage::Partial);
    assert!(m.rejections.is_empty());
    let t: Vec<&UnitRow> = m.units.iter().filter(|x| x.unit_id == "T").collect();
    assert_eq!(t.len(), 2);
    assert_eq!((t[0].unit_name.as_str(), t[0].valid_to), ("T 名称", Some(day("2025-12-31"))));
    assert_eq!((t[1].unit_name.as_str(), t[1].valid_from), ("新名称", Some(day("2026-01-01"))));
    // A replacement that makes T its own grandparent is refused; T keeps one version.
    let m = merge_units(
        existing,
        vec![u("T", Some("T2"), "township", 1, 2), u("T2", Some("T"), "township", 1, 3)],
        Coverage::Partial,
    );
    assert_eq!(m.rejections.len(), 2);
    let t: Vec<&UnitRow> = m.units.iter().filter(|x| x.unit_id == "T").collect();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].parent_id.as_deref(), Some("D"));
    assert!(m.superseded.is_empty());
}

#[test]
fn an_unchanged_reexport_keeps_one_version() {
    let existing = district();
    let again = vec![u("B", Some("C1"), "branch", 1, 2)];
    let m = merge_units(existing.clone(), again, Coverage::Partial);
    assert_eq!(m.units.len(), existing.len());
    assert_eq!((m.loaded[&1], m.superseded[&1]), (1, 1));
    assert_eq!(m.units.iter().find(|v| v.unit_id == "B").unwrap().source_file, "f1.csv");
}

#[test]
fn issue_27_a_moved_branch_rolls_up_under_its_new_parent_from_the_export_month() {
    let m = merge_units(district(), vec![u("B", Some("C5"), "branch", 1, 2)], Coverage::Partial);
    assert!(m.rejections.is_empty(), "{:?}", m.rejections);
    assert_eq!(path_on(&m.units, "B", "2025-12-31").as_deref(), Some("D/T1/C1/B"));
    assert_eq!(path_on(&m.units, "B", "2026-01-01").as_deref(), Some("D/T2/C5/B"));
    // `units` is the tree after the change.
    let now = units_frame(&m.units).unwrap();
    let ids = now.column("unit_id").unwrap().str().unwrap().clone();
    let b = (0..ids.len()).position(|i| ids.get(i) == Some("B")).unwrap();
    assert_eq!(now.column("path").unwrap().str().unwrap().get(b), Some("D/T2/C5/B"));
}

#[test]
fn a_community_moving_splits_its_branches_rows_by_path() {
    let m = merge_units(
        district(),
        vec![effective(u("C1", Some("T2"), "community", 1, 2), "2026-03-01")],
        Coverage::Partial,
    );
    assert!(m.rejections.is_empty());
    // B did not change, but its path did: two stretches, one version.
    assert_eq!(path_on(&m.units, "B", "2026-02-28").as_deref(), Some("D/T1/C1/B"));
    assert_eq!(path_on(&m.units, "B", "2026-03-01").as_deref(), Some("D/T2/C1/B"));
    assert_eq!(m.units.iter().filter(|v| v.unit_id == "B").count(), 1);
    let back = versions_from_frame(&history_frame(&m.units).unwrap()).unwrap();
    let mut want = m.units.clone();
    want.iter_mut().for_each(|v| v.origin = Origin::Existing);
    want.sort_by(|a, b| a.unit_id.cmp(&b.unit_id).then(a.from().cmp(&b.from())));
    assert_eq!(back, want);
}

#[test]
fn a_complete_export_dissolves_what_it_omits_and_a_new_unit_starts_on_its_day() {
    let mut rows: Vec<UnitRow> = district()
        .into_iter()
        .filter(|v| v.unit_id != "B2")
        .enumerate()
        .map(|(i, v)| u(&v.unit_id, v.parent_id.as_deref(), &v.level, 1, i as i64 + 2))
        .collect();
    rows.push(u("B3", Some("C5"), "branch", 1, 20));
    let m = merge_units(district(), rows, Coverage::Complete);
    assert!(m.rejections.is_empty(), "{:?}", m.rejections);
    assert_eq!(m.dissolved, vec![("B2".to_string(), day("2026-01-01"))]);
    let b2 = m.units.iter().find(|v| v.unit_id == "B2").unwrap();
    assert_eq!(b2.valid_to, Some(day("2025-12-31")));
    let b3 = m.units.iter().find(|v| v.unit_id == "B3").unwrap();
    assert_eq!(b3.valid_from, Some(day("2026-01-01")));
    let now = units_frame(&m.units).unwrap();
    let ids = now.column("unit_id").unwrap().str().unwrap().clone();
    assert!((0..ids.len()).all(|i| ids.get(i) != Some("B2")));
    // A partial export leaves the omitted alone.
    let m = merge_units(district(), vec![u("B3", Some("C5"), "branch", 1, 20)], Coverage::Partial);
    assert!(m.dissolved.is_empty());
}

#[test]
fn a_complete_export_does_not_orphan_a_unit_it_could_not_move() {
    // C1 is omitted, but its branch B is listed under it: B's row is refused (its parent is not
    // valid on the day), and C1 stays, since B still hangs below it.
    let rows = vec![
        u("D", None, "district", 1, 2),
        u("T1", Some("D"), "township", 1, 3),
        u("T2", Some("D"), "township", 1, 4),
        u("C5", Some("T2"), "community", 1, 5),
        u("B", Some("C1"), "branch", 1, 6),
        u("B2", Some("C5"), "branch", 1, 7),
    ];
    let m = merge_units(district(), rows, Coverage::Complete);
    assert!(m.dissolved.is_empty(), "{:?}", m.dissolved);
    assert_eq!(m.units.iter().find(|v| v.unit_id == "C1").unwrap().valid_to, None);
}

#[test]
fn declared_days_make_versions_and_overlaps_are_refused() {
    let mut old = u("B", Some("C1"), "branch", 1, 2);
    old.valid_to = Some(day("2025-06-30"));
    let mut new = u("B", Some("C5"), "branch", 1, 3);
    new.valid_from = Some(day("2025-07-01"));
    let m = merge_units(district(), vec![old, new], Coverage::Partial);
    assert!(m.rejections.is_empty(), "{:?}", m.rejections);
    assert_eq!(path_on(&m.units, "B", "2025-06-30").as_deref(), Some("D/T1/C1/B"));
    assert_eq!(path_on(&m.units, "B", "2025-07-01").as_deref(), Some("D/T2/C5/B"));
    // A version declared to reach into a later one overlaps it.
    let mut later = u("B", Some("C5"), "branch", 1, 2);
    later.valid_from = Some(day("2026-03-01"));
    let mut reaching = u("B", Some("T1"), "branch", 2, 2);
    reaching.valid_from = Some(day("2026-01-01"));
    reaching.valid_to = Some(day("2026-06-30"));
    let m = merge_units(district(), vec![later, reaching], Coverage::Partial);
    assert_eq!(rejected(&m), vec![("2026-06-30".into(), "tree")]);
}

#[test]
fn a_parent_not_valid_at_the_time_is_refused() {
    // C7 is created in March 2026; a branch placed under it from January is refused.
    let c7 = effective(u("C7", Some("T1"), "community", 1, 2), "2026-03-01");
    let mut b = u("B9", Some("C7"), "branch", 1, 3);
    b.valid_from = Some(day("2026-01-01"));
    let m = merge_units(district(), vec![c7, b], Coverage::Partial);
    assert_eq!(rejected(&m), vec![("C7".into(), "reference")]);
    let msg = &m.rejections[0].reason.message;
    assert!(msg.contains("not valid on 2026-01-01") && msg.contains("2026-03-01 to open"), "{msg}");
}

#[test]
fn dissolving_a_parent_of_a_stored_unit_is_refused_naming_the_child() {
    let mut gone = u("C1", Some("T1"), "community", 1, 2);
    gone.valid_to = Some(day("2025-12-31"));
    let m = merge_units(district(), vec![gone], Coverage::Partial);
    assert_eq!(rejected(&m), vec![("C1".into(), "tree")]);
    assert!(m.rejections[0].reason.message.contains("unit 'B' without its parent 'C1'"));
    // Dissolving the branch with it is fine.
    let mut gone = u("C1", Some("T1"), "community", 1, 2);
    gone.valid_to = Some(day("2025-12-31"));
    let mut b = u("B", Some("C1"), "branch", 1, 3);
    b.valid_to = Some(day("2025-12-31"));
    let m = merge_units(district(), vec![gone, b], Coverage::Partial);
    assert!(m.rejections.is_empty(), "{:?}", m.rejections);
    assert_eq!(path_on(&m.units, "B", "2026-01-01"), None);
}

#[test]
fn an_older_export_arriving_late_fills_in_the_history() {
    // March's export moved B to C5; January's, ingested after it, renamed B under C1.
    let march = effective(u("B", Some("C5"), "branch", 1, 2), "2026-03-01");
    let m = merge_units(district(), vec![march], Coverage::Partial);
    let mut jan = effective(u("B", Some("C1"), "branch", 2, 2), "2026-01-01");
    jan.unit_name = "改名".into();
    jan.source_mtime = 999; // an older file
    let m = merge_units(stored(m), vec![jan], Coverage::Partial);
    let names: Vec<(Option<NaiveDate>, String)> =
        m.units.iter().filter(|v| v.unit_id == "B").map(|v| (v.valid_from, v.unit_name.clone())).collect();
    assert_eq!(
        names,
        vec![
            (None, "B 名称".into()),
            (Some(day("2026-01-01")), "改名".into()),
            (Some(day("2026-03-01")), "B 名称".into())
        ]
    );
    assert_eq!(path_on(&m.units, "B", "2026-02-01").as_deref(), Some("D/T1/C1/B"));
}

#[test]
fn two_declared_versions_that_overlap_are_refused() {
    let mut first = u("B", Some("C1"), "branch", 1, 2);
    first.valid_from = Some(day("2026-01-01"));
    first.valid_to = Some(day("2026-06-30"));
    first.unit_name = "一".into();
    let mut second = u("B", Some("C1"), "branch", 1, 3);
    second.valid_from = Some(day("2026-03-01"));
    second.unit_name = "二".into();
    let m = merge_units(district(), vec![first, second], Coverage::Partial);
    assert_eq!(rejected(&m), vec![("2026-03-01".into(), "tree")]);
    let msg = &m.rejections[0].reason.message;
    assert!(msg.contains("overlaps its version 2026-01-01 to 2026-06-30 (line 2)"), "{msg}");
}
