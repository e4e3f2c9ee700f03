"""Run dangjian's Spark SQL scripts and read its warehouse with Apache Spark in local mode.

    spark_run.py tables WAREHOUSE            -> JSON {table: {"count": n, "types": {col: type}}}
    spark_run.py scripts FILE.sql [...]      -> JSON {file: [row, ...]} (the last SELECT of each)

Used by the integration tests; needs pyspark and a Java runtime.
"""
import json
import sys

from pyspark.sql import SparkSession

TABLES = ["units", "attendance", "points", "assessment", "tasks", "findings", "quarantine", "ingests", "indicators", "problems", "draws", "submissions", "appraisal"]


def session():
    return (
        SparkSession.builder.master("local[2]")
        .appName("dangjian-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        # The scripts' plans are deep (views over views). With the reporting views added, 1 GB
        # of heap ran out, and 2 GB ran out once while broadcasting a join: joins here are
        # sort-merge joins, which stream instead of holding a table in memory.
        # With the review loop's four indicators (fifteen in all) one session running the four
        # periods' scripts ran out of 3 GB: the status store keeps every query's plan.
        .config("spark.driver.memory", "6g")
        .config("spark.sql.ui.retainedExecutions", "1")
        .config("spark.ui.retainedJobs", "1")
        .config("spark.ui.retainedStages", "1")
        .config("spark.ui.retainedTasks", "1")
        .config("spark.sql.autoBroadcastJoinThreshold", "-1")
        .getOrCreate()
    )


def statements(text):
    """Split a script on semicolons that end a line (the generator writes one per statement)."""
    out, cur = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("--"):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur).rstrip().rstrip(";"))
            cur = []
    if "".join(cur).strip():
        out.append("\n".join(cur))
    return out


def main():
    mode = sys.argv[1]
    spark = session()
    spark.sparkContext.setLogLevel("ERROR")
    result = {}
    if mode == "tables":
        root = sys.argv[2]
        for t in TABLES:
            path = f"{root}/{t}"
            try:
                df = spark.read.option("basePath", path).parquet(path)
                result[t] = {"count": df.count(), "types": {f.name: f.dataType.simpleString() for f in df.schema.fields}}
            except Exception as e:  # an empty table has no files to infer a schema from
                if "UNABLE_TO_INFER_SCHEMA" in str(e) or "Unable to infer schema" in str(e):
                    result[t] = {"count": 0, "types": {}}
                else:
                    raise
    else:
        for path in sys.argv[2:]:
            # Each script stands alone, as on a cluster: what one cached is not kept for the next.
            spark.catalog.clearCache()
            rows = None
            for stmt in statements(open(path, encoding="utf-8").read()):
                df = spark.sql(stmt)
                if stmt.lstrip().upper().startswith("SELECT"):
                    rows = [r.asDict() for r in df.collect()]
            result[path] = rows
    print(json.dumps(result, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
