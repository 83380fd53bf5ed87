"""The S3 requests in moto's request log from byte OFFSET on, by type, per completed upload
(`make bench`'s load section: what one upload costs in S3 requests, docs/cost.md).

usage: moto_requests.py LOG OFFSET BUCKET

moto logs one line per request (werkzeug: `"METHOD /path?query HTTP/1.1" status`). `POST /` lines
are the JSON protocols (SQS receive/delete by the local verifier, EventBridge PutEvents); S3's
own notifications into SQS happen inside moto and are not logged.
"""
import collections
import re
import sys
from urllib.parse import parse_qs, urlsplit

log, offset, bucket = sys.argv[1], int(sys.argv[2]), sys.argv[3]
line_re = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+)')
counts = collections.Counter()
with open(log, "rb") as f:
    f.seek(offset)
    for raw in f:
        m = line_re.search(raw.decode("utf-8", "replace"))
        if not m:
            continue
        method, target, status = m.group(1), m.group(2), m.group(3)
        url = urlsplit(target)
        if url.path.startswith(f"/{bucket}/load-baseline/"):
            continue  # the generator's raw PutObject baseline, not an upload's
        q = parse_qs(url.query, keep_blank_values=True)
        if url.path == "/":
            kind = "POST / (SQS, EventBridge)" if method == "POST" else f"{method} /"
        elif not url.path.startswith(f"/{bucket}"):
            kind = f"{method} other"
        elif method == "POST" and "uploads" in q:
            kind = "CreateMultipartUpload"
        elif method == "PUT" and "partNumber" in q:
            kind = "UploadPart"
        elif method == "GET" and "uploadId" in q:
            kind = "ListParts"
        elif method == "POST" and "uploadId" in q:
            kind = "CompleteMultipartUpload"
        elif method == "HEAD":
            kind = "HeadObject"
        elif method == "GET" and "versions" in q:
            kind = "ListObjectVersions"
        elif method == "GET":
            kind = "GetObject"
        elif method == "DELETE":
            kind = "DeleteObject"
        else:
            kind = f"{method} other"
        if not status.startswith("2"):
            kind += f" ({status})"
        counts[kind] += 1
done = counts.get("CompleteMultipartUpload", 0)
print(f"moto's requests per completed multipart upload ({done} completed):")
for kind, n in sorted(counts.items()):
    print(f"  {kind}: {n / max(done, 1):.2f}")
