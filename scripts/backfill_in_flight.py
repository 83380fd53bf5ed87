"""Once, when upgrading a stack created before the sweep: gives every session left in `completing`
or `verifying` the `in_flight` attribute that the sweep's index (`in_flight-lease_until`) reads, so
the sweep re-drives those too. Idempotent.

usage: backfill_in_flight.py TABLE   (AWS settings from the environment, AWS_ENDPOINT_URL included)
"""
import sys

import boto3
from botocore.exceptions import ClientError

table = sys.argv[1]
ddb = boto3.client("dynamodb")
found = marked = 0
pages = ddb.get_paginator("scan").paginate(
    TableName=table,
    FilterExpression="#s IN (:c, :v) AND attribute_not_exists(in_flight)",
    ExpressionAttributeNames={"#s": "status"},
    ExpressionAttributeValues={":c": {"S": "completing"}, ":v": {"S": "verifying"}},
    ProjectionExpression="upload_id, #s",
)
for page in pages:
    for item in page["Items"]:
        found += 1
        try:
            ddb.update_item(
                TableName=table,
                Key={"upload_id": item["upload_id"]},
                UpdateExpression="SET in_flight = :s",
                ConditionExpression="#s = :s AND attribute_not_exists(in_flight)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": item["status"]},
            )
            marked += 1
        except ClientError as e:
            # It moved on meanwhile: whatever moved it wrote `in_flight` as needed.
            if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
print(f"backfill: {found} sessions in flight without in_flight, {marked} marked")
