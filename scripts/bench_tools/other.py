"""The same work in the tools an analyst would otherwise reach for, one step per process so
its time and peak memory are measured alone.

    other.py duckdb-ingest CSV_GLOB OUT_DIR
    other.py polars-ingest CSV_GLOB OUT_DIR
    other.py duckdb-compute WAREHOUSE_PARQUET UNITS_CSV PREVIOUS_FROM FROM TO
    other.py polars-compute WAREHOUSE_PARQUET UNITS_CSV PREVIOUS_FROM FROM TO

ingest: the attendance CSVs to Hive-partitioned (year, month) zstd Parquet, no validation.
compute: attendance_rate, attendance_rate_excused, absence_rate and participation_per_member
for every unit over its subtree (the units' path column gives the closure), for a quarter and
the quarter before it (dangjian computes both, for the change), as dangjian does with
scripts/bench_tools/attendance4.toml.
"""
import sys


def duckdb_ingest(glob, out):
    import duckdb

    duckdb.sql(
        f"""COPY (SELECT *, year(event_date) AS year, month(event_date) AS month
                  FROM read_csv('{glob}', header = true, columns = {{
                    'event_id': 'VARCHAR', 'unit_id': 'VARCHAR', 'event_type': 'VARCHAR', 'event_date': 'DATE',
                    'member_id': 'VARCHAR', 'status': 'VARCHAR', 'member_name': 'VARCHAR'}}))
            TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month))"""
    )


def polars_ingest(glob, out):
    import polars as pl

    lf = pl.scan_csv(glob, schema_overrides={"event_date": pl.Date}).with_columns(
        pl.col("event_date").dt.year().alias("year"), pl.col("event_date").dt.month().alias("month")
    )
    lf.sink_parquet(pl.PartitionBy(out, key=["year", "month"]), compression="zstd")


def closure_sql():
    return "SELECT unit_id, unnest(string_split(path, '/')) AS ancestor_id FROM units"


def duckdb_compute(parquet, units_csv, prev, start, end):
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE TABLE units AS SELECT * FROM read_csv('{units_csv}', header = true)")
    # The path column dangjian derives: walk the parents.
    con.execute(
        """CREATE TABLE paths AS WITH RECURSIVE p(unit_id, path) AS (
             SELECT unit_id, unit_id FROM units WHERE parent_id IS NULL
             UNION ALL SELECT u.unit_id, p.path || '/' || u.unit_id FROM units u JOIN p ON u.parent_id = p.unit_id)
           SELECT * FROM p"""
    )
    rows = con.execute(
        f"""WITH a AS (SELECT * FROM read_parquet('{parquet}/**/*.parquet', hive_partitioning = true)
                       WHERE event_date >= DATE '{prev}' AND event_date < DATE '{end}'),
                 c AS (SELECT unit_id, unnest(string_split(path, '/')) AS ancestor_id FROM paths)
            SELECT c.ancestor_id, event_date >= DATE '{start}' AS current,
                   sum(CASE WHEN status = 'present' THEN 1 ELSE 0 END) / count(*) AS attendance_rate,
                   sum(CASE WHEN status = 'present' THEN 1 ELSE 0 END) / nullif(sum(CASE WHEN status <> 'leave' THEN 1 ELSE 0 END), 0),
                   sum(CASE WHEN status = 'absent' THEN 1 ELSE 0 END) / count(*),
                   sum(CASE WHEN status = 'present' THEN 1 ELSE 0 END) / count(DISTINCT member_id)
            FROM a JOIN c ON a.unit_id = c.unit_id GROUP BY c.ancestor_id, current"""
    ).fetchall()
    print(len(rows), file=sys.stderr)


def polars_compute(parquet, units_csv, prev, start, end):
    import datetime as dt

    import polars as pl

    units = pl.read_csv(units_csv)
    parent = dict(zip(units["unit_id"], units["parent_id"]))
    pairs = []
    for u in units["unit_id"]:
        cur = u
        while cur is not None:
            pairs.append((u, cur))
            cur = parent.get(cur)
    closure = pl.DataFrame(pairs, schema=["unit_id", "ancestor_id"], orient="row").lazy()
    p, s, e = (dt.date.fromisoformat(x) for x in (prev, start, end))
    a = (
        pl.scan_parquet(f"{parquet}/**/*.parquet", hive_partitioning=True)
        .filter((pl.col("event_date") >= p) & (pl.col("event_date") < e))
        .with_columns((pl.col("event_date") >= s).alias("current"))
    )
    present = (pl.col("status") == "present").cast(pl.Int64)
    out = (
        a.join(closure, on="unit_id")
        .group_by("ancestor_id", "current")
        .agg(
            (present.sum() / pl.len()).alias("attendance_rate"),
            (present.sum() / (pl.col("status") != "leave").cast(pl.Int64).sum()).alias("excused"),
            ((pl.col("status") == "absent").cast(pl.Int64).sum() / pl.len()).alias("absence"),
            (present.sum() / pl.col("member_id").n_unique()).alias("participation"),
        )
        .collect()
    )
    print(out.height, file=sys.stderr)


if __name__ == "__main__":
    step, args = sys.argv[1], sys.argv[2:]
    {"duckdb-ingest": duckdb_ingest, "polars-ingest": polars_ingest, "duckdb-compute": duckdb_compute, "polars-compute": polars_compute}[step](*args)
