"""Read a dangjian warehouse with engines that know nothing of dangjian.

Prints one JSON object: for each table, the row count as DuckDB sees it (hive partitioning on)
and as pyarrow sees it, plus the column types pyarrow reads, and for attendance the sum of
`source_line` as each reads it (long exports store it as deltas). Used by the integration
tests.
"""
import json
import sys

import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds

TABLES = ["units", "attendance", "points", "assessment", "tasks", "findings", "quarantine", "ingests", "indicators", "submissions"]


def main(root: str) -> None:
    out = {}
    con = duckdb.connect()
    for t in TABLES:
        path = f"{root}/{t}"
        try:
            n = con.execute(
                f"SELECT count(*) FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
            ).fetchone()[0]
        except duckdb.IOException:
            n = 0  # no files yet
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        types = {f.name: str(f.type) for f in dataset.schema}
        out[t] = {"duckdb": n, "pyarrow": dataset.count_rows(), "types": types}
        if t == "attendance" and n > 0:
            out[t]["line_sum_duckdb"] = con.execute(
                f"SELECT sum(source_line) FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
            ).fetchone()[0]
            out[t]["line_sum_pyarrow"] = pc.sum(dataset.to_table(columns=["source_line"])["source_line"]).as_py()
    # Names of members never appear: no column holds clear text names.
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
