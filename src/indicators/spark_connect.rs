//! A period's indicators computed on a Spark Connect server (`compute --engine spark`, issue
//! 24): the script `sql --dialect spark` writes, submitted statement by statement, and its last
//! query's rows read back as Arrow. The caller writes them through the usual commit, so the
//! table is the one a local compute writes: the same columns and types, the same row order,
//! and the weak-unit notes worded by the same function (`compute::weak_reasons`).
//!
//! What travels: SQL text one way, the indicators table (units × indicators rows) back. The
//! records stay where they are; Spark reads them from the warehouse's path as the cluster
//! sees it.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType as ArrowType, Float64Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use polars::prelude::*;
use spark_connect_core::{ChannelBuilder, SparkConnectClient, SparkError, block_on};
use spark_connect_proto as proto;

use super::compute::{COMPOSITE, Figure, MEETINGS, WEAK, WeakGroup, weak_reasons};
use super::{Catalogue, SparkRemote, spark, tree};
use crate::model::Table;
use crate::model::period::Period;
use crate::warehouse::{Snapshot, Warehouse, scan_table};

/// The indicators of `period` computed by the Spark at `remote`, as `indicator_frame` gives
/// them locally.
pub fn indicator_frame(
    wh: &Warehouse,
    catalogue: &Catalogue,
    period: Period,
    remote: &SparkRemote,
) -> Result<DataFrame> {
    let snapshot = wh.snapshot()?;
    let root = match &remote.warehouse {
        Some(seen) => seen.clone(),
        None => std::fs::canonicalize(wh.root())
            .with_context(|| format!("resolving {}", wh.root().display()))?
            .display()
            .to_string(),
    };
    let script = spark::script(catalogue, std::path::Path::new(&root), period)?;
    let session = connect(remote)?;
    let result = run_script(&session, &spark::statements(&script), &root, |s| same_warehouse(s, &snapshot, &root));
    let _ = block_on(session.release_session());
    let mut rows = Rows::read(&result?, period)?;
    rows.order_as_compute(catalogue, &snapshot, period)?;
    rows.word_weak_notes(catalogue)?;
    rows.frame()
}

/// A session on the server (the client's, with a new id), once the server has answered. The client retries an unreachable server
/// for minutes (its backoff reaches 64 s): a server that is down is found first by dialling
/// its port, so that the scheduled run says so at once.
fn connect(remote: &SparkRemote) -> Result<SparkConnectClient> {
    let url = remote.url.as_str();
    let unreachable = |e: &dyn std::fmt::Display| {
        anyhow!(
            "Spark Connect at {url} does not answer: {e}\n(is the server started and listening there? README, \"When one machine is not enough\")"
        )
    };
    let (host, port) = remote.address()?;
    let addrs: Vec<SocketAddr> = (host.as_str(), port).to_socket_addrs().map_err(|e| unreachable(&e))?.collect();
    let mut dialled = Err(unreachable(&format!("{host} has no address")));
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, DIAL_TIMEOUT) {
            Ok(_) => {
                dialled = Ok(());
                break;
            }
            Err(e) => dialled = Err(unreachable(&format!("{addr}: {e}"))),
        }
    }
    dialled?;
    let builder = ChannelBuilder::parse(url).map_err(|e| unreachable(&e))?;
    let session = block_on(SparkConnectClient::connect(&builder)).map_err(|e| unreachable(&e))?;
    // The channel connects lazily: ask the server something before sending the script.
    let version = sql(&session, "SELECT version()").map_err(|e| unreachable(&e))?;
    tracing::info!(url, version = ?texts("version()", &version.iter().map(|b| b.column(0)).collect::<Vec<_>>()).ok(), "connected to Spark");
    Ok(session)
}

/// One statement executed to its end, and its rows. Not reattachable: a reattachable stream
/// is closed by the server every two minutes for the client to reattach
/// (`spark.connect.execute.reattachable.senderMaxStreamDuration`), and the client library's
/// DataFrame layer took that end for the end of the result (a quarter's statement on 200
/// shuffle partitions returned no rows, and no error). A plain stream ends when the result
/// does, or with an error.
fn sql(session: &SparkConnectClient, query: &str) -> Result<Vec<RecordBatch>> {
    let request = proto::ExecutePlanRequest {
        session_id: session.session_id().to_string(),
        user_context: Some(proto::UserContext { user_id: "dangjian".into(), ..Default::default() }),
        plan: Some(proto::Plan {
            op_type: Some(proto::plan::OpType::Root(proto::Relation {
                common: None,
                rel_type: Some(proto::relation::RelType::Sql(proto::Sql {
                    query: query.to_string(),
                    ..Default::default()
                })),
            })),
        }),
        client_type: Some(concat!("dangjian/", env!("CARGO_PKG_VERSION")).into()),
        ..Default::default()
    };
    let mut stream = block_on(session.execute_plan(request)).map_err(|e| anyhow!("{e}"))?;
    let mut batches = Vec::new();
    while let Some(response) = block_on(stream.message()).map_err(|s| anyhow!("{}", SparkError::from_grpc_status(s)))? {
        if let Some(proto::execute_plan_response::ResponseType::ArrowBatch(b)) = response.response_type {
            let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(&b.data[..]), None)
                .map_err(|e| anyhow!("an Arrow batch Spark sent cannot be read: {e}"))?;
            for batch in reader {
                batches.push(batch.map_err(|e| anyhow!("an Arrow batch Spark sent cannot be read: {e}"))?);
            }
        }
    }
    Ok(batches)
}

/// How long a dial may take before the server is said not to answer.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the script needs of a server: a statement executed to its end, and its rows.
trait Server {
    fn sql(&self, statement: &str) -> Result<Vec<RecordBatch>>;
}

impl Server for SparkConnectClient {
    fn sql(&self, statement: &str) -> Result<Vec<RecordBatch>> {
        sql(self, statement)
    }
}

fn is_table_view(statement: &str) -> bool {
    statement.starts_with("CREATE OR REPLACE TEMPORARY VIEW") && statement.contains("USING parquet")
}

/// Every statement in order; the last one's rows. Once the tables are declared,
/// `tables_seen` checks that Spark sees this warehouse. Whatever happens, the views the script
/// cached are uncached: a server keeps cached data after the session that cached it is
/// released (SPARK-50569), so a long-lived server would otherwise hold every compute's views.
fn run_script<S: Server>(
    server: &S,
    statements: &[String],
    root: &str,
    tables_seen: impl FnOnce(&S) -> Result<()>,
) -> Result<Vec<RecordBatch>> {
    let mut cached = Vec::new();
    let result = execute(server, statements, root, tables_seen, &mut cached);
    release_cache(server, &cached);
    result
}

fn execute<S: Server>(
    server: &S,
    statements: &[String],
    root: &str,
    tables_seen: impl FnOnce(&S) -> Result<()>,
    cached: &mut Vec<String>,
) -> Result<Vec<RecordBatch>> {
    let last_table = statements.iter().rposition(|s| is_table_view(s)).context("the script declares no table")?;
    let mut tables_seen = Some(tables_seen);
    let mut batches = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        batches = server.sql(statement).map_err(|e| {
            if is_table_view(statement) {
                anyhow!(
                    "Spark cannot read the warehouse at {root}: {e}\n(--spark-warehouse, or spark_warehouse in a pipeline, is the warehouse's path as the cluster sees it)"
                )
            } else {
                anyhow!("Spark refused statement {} of {} of the script: {e}\nthe statement: {}", i + 1, statements.len(), head(statement))
            }
        })?;
        if let Some(view) = cached_view(statement) {
            cached.push(view.to_string());
        }
        if i == last_table
            && let Some(check) = tables_seen.take()
        {
            check(server)?;
        }
    }
    Ok(batches)
}

/// The view a `CACHE TABLE name;` statement caches.
fn cached_view(statement: &str) -> Option<&str> {
    let name = statement.strip_prefix("CACHE TABLE ")?.trim().trim_end_matches(';').trim();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some(name)
}

/// Last cached, first uncached. A failure here leaves the indicators right and the server
/// fuller: it is logged, not raised.
fn release_cache<S: Server>(server: &S, cached: &[String]) {
    for view in cached.iter().rev() {
        if let Err(e) = server.sql(&format!("UNCACHE TABLE IF EXISTS {view}")) {
            tracing::warn!(view, error = %e, "Spark did not uncache a view of the script");
        }
    }
}

/// A statement's first 300 characters, for an error.
fn head(statement: &str) -> String {
    match statement.char_indices().nth(300) {
        Some((at, _)) => format!("{} …", &statement[..at]),
        None => statement.to_string(),
    }
}

fn same_warehouse<S: Server>(server: &S, snapshot: &Snapshot, root: &str) -> Result<()> {
    let table = Table::UnitsHistory.name();
    let batches = server
        .sql(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .map_err(|e| anyhow!("Spark cannot count {table} at {root}: {e}"))?;
    let theirs: i64 =
        batches.iter().map(|b| b.column(0).as_primitive::<Int64Type>().iter().flatten().sum::<i64>()).sum();
    let ours = scan_table(snapshot, Table::UnitsHistory)?.select([len()]).collect()?.column("len")?.u32()?.get(0);
    let ours = i64::from(ours.unwrap_or(0));
    if theirs != ours {
        bail!(
            "Spark sees {theirs} rows of {table} at {root}, this warehouse holds {ours}: --spark-warehouse (spark_warehouse in a pipeline) must name this warehouse as the cluster sees it"
        );
    }
    Ok(())
}

/// A column of the indicators table as read back.
enum Values {
    Text(Vec<Option<String>>),
    Number(Vec<Option<f64>>),
    Integer(Vec<Option<i32>>),
}

/// The table's columns (the model's, in its order), then the partition column Spark adds.
struct Rows {
    columns: Vec<(PlSmallStr, Values)>,
    len: usize,
}

impl Rows {
    fn read(batches: &[RecordBatch], period: Period) -> Result<Rows> {
        let mut columns = Vec::new();
        for (name, dtype) in Table::Indicators.schema().iter() {
            let parts: Vec<&ArrayRef> = batches
                .iter()
                .map(|b| b.column_by_name(name).ok_or_else(|| anyhow!("Spark's result has no column {name}")))
                .collect::<Result<_>>()?;
            let values = match dtype {
                DataType::String => Values::Text(texts(name, &parts)?),
                DataType::Float64 => Values::Number(numbers(name, &parts)?),
                DataType::Int32 => Values::Integer(integers(name, &parts)?),
                other => bail!("the indicators table's column {name} is {other}: not read from Spark"),
            };
            columns.push((name.clone(), values));
        }
        let len = batches.iter().map(RecordBatch::num_rows).sum();
        let periods: Vec<&ArrayRef> = batches
            .iter()
            .map(|b| b.column_by_name("period").context("Spark's result has no period"))
            .collect::<Result<_>>()?;
        let want = period.to_string();
        if let Some(other) = texts("period", &periods)?.into_iter().find(|p| p.as_deref() != Some(want.as_str())) {
            bail!("Spark returned rows of period {other:?} for {want}");
        }
        Ok(Rows { columns, len })
    }

    fn text(&self, name: &str) -> &[Option<String>] {
        match self.columns.iter().find(|(n, _)| n == name) {
            Some((_, Values::Text(v))) => v,
            _ => unreachable!("the model's text column {name}"),
        }
    }

    fn number(&self, name: &str) -> &[Option<f64>] {
        match self.columns.iter().find(|(n, _)| n == name) {
            Some((_, Values::Number(v))) => v,
            _ => unreachable!("the model's number column {name}"),
        }
    }

    fn integer(&self, name: &str) -> &[Option<i32>] {
        match self.columns.iter().find(|(n, _)| n == name) {
            Some((_, Values::Integer(v))) => v,
            _ => unreachable!("the model's integer column {name}"),
        }
    }

    /// By indicator in the catalogue's order, then unit in tree order, as `compute` writes.
    fn order_as_compute(&mut self, catalogue: &Catalogue, snapshot: &Snapshot, period: Period) -> Result<()> {
        let mut units = tree::load(snapshot, period.last_day())?;
        units.sort_by(|a, b| a.path.cmp(&b.path));
        if self.len == 0 && !units.is_empty() {
            bail!("Spark returned no indicators for the {} units of {period}'s tree", units.len());
        }
        let unit_at: HashMap<&str, usize> = units.iter().enumerate().map(|(i, u)| (u.id.as_str(), i)).collect();
        let indicator_at: HashMap<&str, usize> = catalogue
            .indicator
            .iter()
            .map(|i| i.id.as_str())
            .chain([WEAK])
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        let (ids, indicators) = (self.text("unit_id"), self.text("indicator"));
        let mut keys = Vec::with_capacity(self.len);
        for (id, indicator) in ids.iter().zip(indicators) {
            let (id, indicator) = (id.as_deref().unwrap_or_default(), indicator.as_deref().unwrap_or_default());
            let unit = *unit_at
                .get(id)
                .ok_or_else(|| anyhow!("Spark returned unit {id:?}, which is not in the tree of {period}"))?;
            let ind = *indicator_at
                .get(indicator)
                .ok_or_else(|| anyhow!("Spark returned indicator {indicator:?}, which is not in the catalogue"))?;
            keys.push((ind, unit));
        }
        let mut order: Vec<usize> = (0..self.len).collect();
        order.sort_by_key(|&i| keys[i]);
        for (_, values) in &mut self.columns {
            match values {
                Values::Text(v) => *v = order.iter().map(|&i| v[i].take()).collect(),
                Values::Number(v) => *v = order.iter().map(|&i| v[i]).collect(),
                Values::Integer(v) => *v = order.iter().map(|&i| v[i]).collect(),
            }
        }
        Ok(())
    }

    /// The note of each weak candidate: which rules fired, worded as `compute` words them, from
    /// the composite and meeting figures Spark returned.
    fn word_weak_notes(&mut self, catalogue: &Catalogue) -> Result<()> {
        let (ids, indicators) = (self.text("unit_id"), self.text("indicator"));
        let (levels, categories) = (self.text("level"), self.text("category"));
        let (values, ranks) = (self.number("value"), self.integer("rank"));
        let mut figures: HashMap<(&str, &str), Figure> = HashMap::new();
        let mut groups: HashMap<(&str, Option<&str>), WeakGroup> = HashMap::new();
        for i in 0..self.len {
            let (id, indicator) = (ids[i].as_deref().unwrap_or_default(), indicators[i].as_deref().unwrap_or_default());
            if indicator == COMPOSITE || indicator == MEETINGS {
                let rank = ranks[i].map(|r| r as u32);
                figures.insert((id, indicator), Figure { value: values[i], rank, ..Default::default() });
                if let (COMPOSITE, Some(r)) = (indicator, rank) {
                    let level = levels[i].as_deref().unwrap_or_default();
                    groups.entry((level, categories[i].as_deref())).or_default().add(r);
                }
            }
        }
        let mut notes = vec![None; self.len];
        for i in 0..self.len {
            if indicators[i].as_deref() != Some(WEAK) || values[i] != Some(1.0) {
                continue;
            }
            let id = ids[i].as_deref().unwrap_or_default();
            let level = levels[i].as_deref().unwrap_or_default();
            let figure = |ind: &str| figures.get(&(id, ind)).cloned().unwrap_or_default();
            let group = groups.get(&(level, categories[i].as_deref())).copied().unwrap_or_default();
            let fired = weak_reasons(&catalogue.weak, &figure(COMPOSITE), &figure(MEETINGS), group, level);
            if fired.is_empty() {
                bail!("Spark found {id} a weak-unit candidate, but no rule fires on the figures it returned");
            }
            notes[i] = Some(fired.join("; "));
        }
        for (name, values) in &mut self.columns {
            if name == "note" {
                *values = Values::Text(notes);
                break;
            }
        }
        Ok(())
    }

    fn frame(self) -> Result<DataFrame> {
        let columns = self
            .columns
            .into_iter()
            .map(|(name, values)| match values {
                Values::Text(v) => Column::new(name, v),
                Values::Number(v) => Column::new(name, v),
                Values::Integer(v) => Column::new(name, v),
            })
            .collect();
        Ok(DataFrame::new(self.len, columns)?)
    }
}

fn texts(name: &str, parts: &[&ArrayRef]) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for a in parts {
        match a.data_type() {
            ArrowType::Utf8 => out.extend(a.as_string::<i32>().iter().map(|v| v.map(str::to_string))),
            ArrowType::LargeUtf8 => out.extend(a.as_string::<i64>().iter().map(|v| v.map(str::to_string))),
            ArrowType::Utf8View => out.extend(a.as_string_view().iter().map(|v| v.map(str::to_string))),
            ArrowType::Null => out.extend(std::iter::repeat_n(None, a.len())),
            other => bail!("Spark returned {name} as {other}, not text"),
        }
    }
    Ok(out)
}

fn numbers(name: &str, parts: &[&ArrayRef]) -> Result<Vec<Option<f64>>> {
    let mut out = Vec::new();
    for a in parts {
        match a.data_type() {
            ArrowType::Float64 => out.extend(a.as_primitive::<Float64Type>().iter()),
            ArrowType::Null => out.extend(std::iter::repeat_n(None, a.len())),
            other => bail!("Spark returned {name} as {other}, not a double"),
        }
    }
    Ok(out)
}

fn integers(name: &str, parts: &[&ArrayRef]) -> Result<Vec<Option<i32>>> {
    let mut out = Vec::new();
    for a in parts {
        match a.data_type() {
            ArrowType::Int32 => out.extend(a.as_primitive::<Int32Type>().iter()),
            ArrowType::Null => out.extend(std::iter::repeat_n(None, a.len())),
            other => bail!("Spark returned {name} as {other}, not an int"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int32Array, NullArray, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    /// A batch as Spark returns the indicators: every column of the model, then the period.
    /// unit_id, unit_name, level, category, indicator, value, rank.
    type Fixture<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str, Option<f64>, Option<i32>);

    fn batch(rows: &[Fixture], period: &str) -> RecordBatch {
        let schema = Table::Indicators.schema();
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for name in schema.iter_names() {
            let (field, array): (ArrowType, ArrayRef) = match name.as_str() {
                "unit_id" => (ArrowType::Utf8, Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)))),
                "unit_name" => (ArrowType::Utf8, Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)))),
                "level" => (ArrowType::Utf8, Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2)))),
                "category" => {
                    (ArrowType::Utf8, Arc::new(StringArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())))
                }
                "indicator" => (ArrowType::Utf8, Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.4)))),
                "value" => {
                    (ArrowType::Float64, Arc::new(Float64Array::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())))
                }
                "rank" => (ArrowType::Int32, Arc::new(Int32Array::from(rows.iter().map(|r| r.6).collect::<Vec<_>>()))),
                // The other columns are nulls, as Spark sends a column it knows only as NULL.
                _ => (ArrowType::Null, Arc::new(NullArray::new(rows.len()))),
            };
            fields.push(Field::new(name.as_str(), field, true));
            arrays.push(array);
        }
        fields.push(Field::new("period", ArrowType::Utf8, true));
        arrays.push(Arc::new(StringArray::from_iter_values(rows.iter().map(|_| period))));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    #[test]
    fn spark_rows_become_the_model_frame_with_notes_worded_as_compute_words_them() {
        let catalogue = Catalogue::builtin();
        let b = Some("b");
        let rows = [
            ("B1", "一支部", "branch", b, WEAK, Some(1.0), None),
            ("B1", "一支部", "branch", b, COMPOSITE, Some(40.0), Some(2)),
            ("B2", "二支部", "branch", b, COMPOSITE, Some(90.0), Some(1)),
            ("B2", "二支部", "branch", b, WEAK, Some(0.0), None),
        ];
        let mut r = Rows::read(&[batch(&rows, "2026Q1")], Period::Quarter { year: 2026, quarter: 1 }).unwrap();
        r.word_weak_notes(&catalogue).unwrap();
        let notes = r.text("note").to_vec();
        let expected = weak_reasons(
            &catalogue.weak,
            &Figure { value: Some(40.0), rank: Some(2), ..Default::default() },
            &Figure::default(),
            WeakGroup { size: 2, last: 2 },
            "branch",
        )
        .join("; ");
        assert!(expected.contains("last of 2 branch units"), "{expected}");
        assert_eq!(notes, [Some(expected), None, None, None]);
        let frame = r.frame().unwrap();
        assert_eq!(frame.schema().as_ref(), &Table::Indicators.schema());
        assert_eq!(frame.height(), 4);
    }

    #[test]
    fn rows_of_another_period_or_a_weak_unit_no_rule_explains_are_refused() {
        let catalogue = Catalogue::builtin();
        let q = Period::Quarter { year: 2026, quarter: 1 };
        let one = [("B1", "一支部", "branch", None, WEAK, Some(1.0), None)];
        let err = Rows::read(&[batch(&one, "2025Q4")], q).err().unwrap().to_string();
        assert!(err.contains("2025Q4"), "{err}");
        let mut r = Rows::read(&[batch(&one, "2026Q1")], q).unwrap();
        let err = r.word_weak_notes(&catalogue).unwrap_err().to_string();
        assert!(err.contains("B1") && err.contains("no rule fires"), "{err}");
    }

    /// A server that records what it is sent and refuses statements holding `refuse`.
    struct Recording {
        sent: std::cell::RefCell<Vec<String>>,
        refuse: &'static str,
    }

    impl Server for Recording {
        fn sql(&self, statement: &str) -> Result<Vec<RecordBatch>> {
            self.sent.borrow_mut().push(statement.to_string());
            if !self.refuse.is_empty() && statement.contains(self.refuse) {
                bail!("[TABLE_OR_VIEW_NOT_FOUND] The table or view `nowhere` cannot be found.");
            }
            Ok(vec![batch(&[("B1", "一支部", "branch", None, COMPOSITE, Some(1.0), Some(1))], statement)])
        }
    }

    fn script() -> Vec<String> {
        spark::statements(
            "CREATE OR REPLACE TEMPORARY VIEW units_history (`unit_id` STRING)\nUSING parquet OPTIONS (path '/w/units_history');\n\
             CREATE OR REPLACE TEMPORARY VIEW dj_tree AS SELECT * FROM units_history;\nCACHE TABLE dj_tree;\n\
             CREATE OR REPLACE TEMPORARY VIEW dj_values AS SELECT * FROM nowhere;\nCACHE TABLE dj_values;\nSELECT * FROM dj_values;",
        )
    }

    #[test]
    fn the_script_runs_in_order_checks_the_tables_once_and_uncaches_what_it_cached() {
        let server = Recording { sent: Default::default(), refuse: "" };
        let checked = std::cell::Cell::new(0);
        let rows = run_script(&server, &script(), "/w", |s| {
            checked.set(s.sent.borrow().len());
            Ok(())
        })
        .unwrap();
        // The last statement's rows (the fake tags them with the statement).
        assert_eq!(rows[0].column(rows[0].num_columns() - 1).as_string::<i32>().value(0), "SELECT * FROM dj_values");
        assert_eq!(checked.get(), 1, "the warehouse is checked right after its tables are declared");
        let mut expected = script();
        expected
            .extend(["UNCACHE TABLE IF EXISTS dj_values".to_string(), "UNCACHE TABLE IF EXISTS dj_tree".to_string()]);
        assert_eq!(*server.sent.borrow(), expected);
    }

    #[test]
    fn a_statement_spark_refuses_is_named_with_its_message_and_the_cache_is_still_released() {
        let server = Recording { sent: Default::default(), refuse: "nowhere" };
        let err = run_script(&server, &script(), "/w", |_| Ok(())).unwrap_err().to_string();
        assert!(err.starts_with("Spark refused statement 4 of 6 of the script: [TABLE_OR_VIEW_NOT_FOUND]"), "{err}");
        assert!(
            err.contains("the statement: CREATE OR REPLACE TEMPORARY VIEW dj_values AS SELECT * FROM nowhere"),
            "{err}"
        );
        let sent = server.sent.borrow();
        assert_eq!(sent.len(), 5, "nothing after the refused statement but the uncaching: {sent:?}");
        assert_eq!(sent[4], "UNCACHE TABLE IF EXISTS dj_tree");

        // A table Spark cannot read is the warehouse's path, and the check never runs.
        let server = Recording { sent: Default::default(), refuse: "/w/units_history" };
        let err = run_script(&server, &script(), "/w", |_| panic!("checked")).unwrap_err().to_string();
        assert!(
            err.starts_with("Spark cannot read the warehouse at /w:") && err.contains("--spark-warehouse"),
            "{err}"
        );
        assert_eq!(server.sent.borrow().len(), 1);

        // Another warehouse: the check's error, and the cache released.
        let server = Recording { sent: Default::default(), refuse: "" };
        let err = run_script(&server, &script(), "/w", |_| bail!("Spark sees 9 rows")).unwrap_err().to_string();
        assert_eq!(err, "Spark sees 9 rows");
        assert_eq!(server.sent.borrow().len(), 1, "no cache yet to release");
    }

    #[test]
    fn only_a_plain_cache_statement_names_a_cached_view() {
        assert_eq!(cached_view("CACHE TABLE dj_g0"), Some("dj_g0"));
        assert_eq!(cached_view("CACHE TABLE dj_g0;"), Some("dj_g0"));
        assert_eq!(cached_view("CACHE TABLE x AS SELECT 1"), None);
        assert_eq!(cached_view("SELECT 'CACHE TABLE x'"), None);
    }

    #[test]
    fn a_statement_in_an_error_is_cut_at_a_character() {
        let long = "选".repeat(400);
        let h = head(&long);
        assert!(h.ends_with(" …") && h.chars().count() == 302);
        assert_eq!(head("SELECT 1"), "SELECT 1");
    }
}
