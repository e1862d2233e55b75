"""An independent reader of PromLake's lake: the `deltalake` package from
PyPI (delta-rs's Python binding, not PromLake's code) reads a workspace's
`samples` table and prints, as JSON, every row as
[series_id, timestamp, value bits as hex or null, stale].

Usage: read_lake.py <lake dir> <workspace id>
"""
import json
import os
import struct
import sys

from deltalake import DeltaTable

lake, workspace = sys.argv[1], sys.argv[2]
table = DeltaTable(f"{lake}/{workspace}/samples").to_pyarrow_table(
    columns=["series_id", "timestamp", "value", "stale", "metric_name"]
)
rows = []
for sid, ts, value, stale in zip(
    table["series_id"].to_pylist(),
    table["timestamp"].to_pylist(),
    table["value"].to_pylist(),
    table["stale"].to_pylist(),
):
    bits = None if value is None else struct.pack("<d", value).hex()
    rows.append([sid, ts, bits, stale])
print(json.dumps({"rows": rows, "metrics": sorted(set(table["metric_name"].to_pylist()))}))
# Exit without interpreter teardown: deltalake 1.6 with pyarrow 26 sometimes
# aborts while tearing down its runtime threads ("terminate called without an
# active exception", ~1 run in 30), after all output is written.
sys.stdout.flush()
os._exit(0)
