"""An SNS-compatible server for the SNS receiver tests: moto's SNS and SQS
behind a check of every request's SigV4 signature, recomputed by botocore
(the AWS SDK for Python's own signer) over the headers the request says it
signed, at the time it says it was signed. A request whose signature does
not match is refused with 403, as AWS refuses it.

Usage: sns_server.py ACCESS_KEY SECRET_KEY REGION   (with the venv of scripts/python-env)
Creates the topic `alerts` and the queue `alerts-queue` subscribed to it,
prints {"port", "topic_arn", "queue_url"} as one JSON line, then serves
until killed. `sns_server.py receive PORT QUEUE_URL N` prints the bodies of
the first N messages of the queue (waiting up to 20 s) as a JSON list.
"""
import datetime
import io
import json
import sys
import threading
import time

import boto3
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import make_server


def checked(app, access_key, secret_key, region, refused):
    def wsgi(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = environ["CONTENT_LENGTH"]
        auth = headers.get("authorization", "")
        if " SignedHeaders=" in auth and "/sns/aws4_request" in auth:
            signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
            url = f"http://{headers['host']}{environ.get('PATH_INFO', '/')}"
            if environ.get("QUERY_STRING"):
                url += "?" + environ["QUERY_STRING"]
            request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, data=body,
                                 headers={h: headers[h] for h in signed if h in headers and h != "x-amz-date"})
            when = datetime.datetime.strptime(headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
            real = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda: when
            try:
                SigV4Auth(Credentials(access_key, secret_key), "sns", region).add_auth(request)
            finally:
                botocore.auth.get_current_datetime = real
            if request.headers["Authorization"] != auth:
                refused.append(auth)
                start_response("403 Forbidden", [("Content-Type", "text/xml")])
                return [b"<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>"
                        b"<Message>The request signature we calculated does not match the signature you provided.</Message>"
                        b"</Error></ErrorResponse>"]
        return app(environ, start_response)
    return wsgi


def serve(access_key, secret_key, region):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    app = DomainDispatcherApplication(create_backend_app)
    refused = []
    server = make_server("127.0.0.1", 0, checked(app, access_key, secret_key, region, refused), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.port}"
    kw = dict(endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region)
    sns = boto3.client("sns", **kw)
    sqs = boto3.client("sqs", **kw)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-queue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    print(json.dumps({"port": server.port, "topic_arn": topic, "queue_url": queue}), flush=True)
    while True:
        time.sleep(3600)


def receive(port, queue_url, n):
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="x",
                       aws_secret_access_key="x", region_name="us-east-1")
    bodies = []
    deadline = time.time() + 20
    while len(bodies) < n and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in got.get("Messages", []):
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    print(json.dumps(bodies))


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        receive(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        serve(sys.argv[1], sys.argv[2], sys.argv[3])
