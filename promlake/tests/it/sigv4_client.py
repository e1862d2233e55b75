"""Sends one request signed by botocore (the AWS SDK for Python's own SigV4
signer), optionally tampered with after signing, and prints the answer.

Usage: sigv4_client.py SPEC_JSON
SPEC: {"url": "http://127.0.0.1:PORT/path?query", "method": "GET",
       "body": "text" | null, "body_hex": "00ff…" (binary, instead of body),
       "headers": {...},
       "access_key": "...", "secret_key": "...",
       "region": "us-east-1", "service": "aps",
       "presign": false, "expires": 60, "unsigned_payload": false,
       "time_offset_seconds": 0,
       "tamper": null | "body" | "header" | "date" | "query" | "path"}
Prints {"status": N, "headers": {...lowercase}, "body": "..."}.
"""

import datetime
import json
import sys

import botocore.auth
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session


def main():
    spec = json.loads(sys.argv[1])
    offset = datetime.timedelta(seconds=spec.get("time_offset_seconds", 0))
    real_now = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real_now() + offset

    body = spec.get("body")
    body = body.encode() if body is not None else None
    if spec.get("body_hex") is not None:
        body = bytes.fromhex(spec["body_hex"])
    request = AWSRequest(method=spec.get("method", "GET"), url=spec["url"], data=body,
                         headers=dict(spec.get("headers", {})))
    if spec.get("unsigned_payload"):
        request.context["payload_signing_enabled"] = False
    credentials = Credentials(spec["access_key"], spec["secret_key"])
    region = spec.get("region", "us-east-1")
    service = spec.get("service", "aps")
    if spec.get("presign"):
        SigV4QueryAuth(credentials, service, region, expires=spec.get("expires", 60)).add_auth(request)
    else:
        SigV4Auth(credentials, service, region).add_auth(request)

    tamper = spec.get("tamper")
    if tamper == "body":
        b = bytearray(request.data)
        b[len(b) // 2] ^= 0x01
        request.data = bytes(b)
    elif tamper == "header":
        # A signed header's value changed.
        name = "Content-Type" if "Content-Type" in request.headers else "Host"
        request.headers[name] = request.headers[name] + "x"
    elif tamper == "date":
        stamp = datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = (stamp + datetime.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    elif tamper == "query":
        request.url = request.url + ("&" if "?" in request.url else "?") + "extra=1"
    elif tamper == "path":
        request.url = request.url.replace("/workspaces", "/workspaceS", 1)

    prepared = request.prepare()
    response = URLLib3Session().send(prepared)
    print(json.dumps({
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": response.content.decode("utf-8", "replace"),
    }))


if __name__ == "__main__":
    main()
