"""moto's S3 server for the s3:// lake tests (stream-workers and promlake), one
request at a time.

moto checks `If-None-Match: *` (conditional put) and then stores the object
in two steps; in its threaded server two racing puts could both pass the
check. Real S3 makes the check and the store one atomic step, and Delta's
safe commits rely on exactly that, so this server handles requests one
after the other (werkzeug, threaded=False), which makes each conditional
put atomic as on S3.

Usage: s3-test-server.py <bucket> [<bucket>…]   (with the venv of scripts/python-env)
Creates the buckets with boto3 (signed requests, as any S3 client sends),
then prints the port on stdout once the server answers. Request lines
(method, path, status) go to stderr.
"""
import sys
import threading

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

app = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", 0, app, threaded=False)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
s3 = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{server.port}",
    aws_access_key_id="promlake-test",
    aws_secret_access_key="promlake-test",
    region_name="us-east-1",
)
for bucket in sys.argv[1:]:
    s3.create_bucket(Bucket=bucket)
print(server.port, flush=True)
thread.join()
