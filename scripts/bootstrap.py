"""Creates the uploads bucket and the sessions table on an endpoint, as template.yaml does on AWS.

usage: bootstrap.py ENDPOINT BUCKET TABLE   (idempotent)
"""
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, bucket, table = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint)
ddb = boto3.client("dynamodb", endpoint_url=endpoint)

try:
    s3.create_bucket(Bucket=bucket)
except ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
# Versioning, as in template.yaml: a verified record names one version, which nothing replaces.
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
# Browsers PUT parts straight to S3 and must be able to read each part's ETag.
s3.put_bucket_cors(
    Bucket=bucket,
    CORSConfiguration={
        "CORSRules": [
            {
                "AllowedOrigins": ["*"],
                "AllowedMethods": ["PUT", "GET", "HEAD", "POST"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag", "x-amz-checksum-sha256"],
                "MaxAgeSeconds": 3000,
            }
        ]
    },
)

try:
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "upload_id", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "upload_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "owner-created_at",
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceInUseException":
        raise
print(f"bucket {bucket} and table {table} ready on {endpoint}")
