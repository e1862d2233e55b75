"""An independent reader of an s3:// lake table: the `deltalake` package
from PyPI (delta-rs's Python binding, not PromLake's code), configured only
by the standard AWS environment variables (AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP). Prints every row
of a `samples` table as JSON [[series_id, timestamp], …].

Usage: read_lake.py <table URL>
"""
import json
import os
import sys

from deltalake import DeltaTable

table = DeltaTable(sys.argv[1]).to_pyarrow_table(columns=["series_id", "timestamp"])
print(json.dumps(list(zip(table["series_id"].to_pylist(), table["timestamp"].to_pylist()))))
# Exit without interpreter teardown (see promlake/tests/it/read_lake.py).
sys.stdout.flush()
os._exit(0)
