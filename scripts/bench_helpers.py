"""Baselines and fixtures for `make bench` (boto3 against the local emulator).

usage: bench_helpers.py upload FILE KEY | presign-get KEY | boto3-hash KEY | boto3-presign COUNT
"""
import hashlib
import json
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint = os.environ["AWS_ENDPOINT_URL"]
bucket = os.environ["BUCKET_NAME"]
# As the seed-era code did: no flexible-checksum validation (moto's composite CRC32 of multipart
# objects also fails boto3's full-object check).
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    config=Config(response_checksum_validation="when_required", request_checksum_calculation="when_required"),
)
cmd = sys.argv[1]

if cmd == "upload":
    path, key = sys.argv[2], sys.argv[3]
    cfg = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=4)
    s3.upload_file(path, bucket, key, Config=cfg)
elif cmd == "presign-get":
    print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": sys.argv[2]}, ExpiresIn=3600))
elif cmd == "boto3-hash":
    # The seed-era approach: one GetObject, 8 KiB reads into hashlib.
    started = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key=sys.argv[2])["Body"]
    h = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(8192), b""):
        h.update(chunk)
        size += len(chunk)
    secs = time.perf_counter() - started
    print(json.dumps({"bytes": size, "seconds": secs, "sha256": h.hexdigest()}))
elif cmd == "boto3-presign":
    count = int(sys.argv[2])
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for n in range(1, count + 1):
            s3.generate_presigned_url(
                "upload_part",
                Params={"Bucket": bucket, "Key": "uploads/01JF0000000000000000000000/archive.tar",
                        "UploadId": "VXBsb2FkSWQ", "PartNumber": n, "ContentLength": 16777216},
                ExpiresIn=3600,
            )
        best = min(best, time.perf_counter() - started)
    print(json.dumps({"urls": count, "seconds": best, "us_per_url": best * 1e6 / count}))
else:
    sys.exit(__doc__)
