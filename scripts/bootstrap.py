"""Creates the uploads bucket, the sessions table, the verifier's queue and the event bus on an
endpoint, as template.yaml does on AWS: S3 notifies the queue of every object created under
uploads/, and the bus's rules send every verdict to the webhooks' queue and to an example queue.

usage: bootstrap.py ENDPOINT BUCKET TABLE [QUEUE]   (idempotent; QUEUE default BUCKET-verifier)
       bootstrap.py ENDPOINT BUCKET --s3-only      the bucket alone (the strict S3: scripts/strict_s3.sh)
The bus is BUCKET (EVENT_BUS_NAME in scripts/env.sh), its queues BUCKET-webhooks and BUCKET-events.
"""
import json
import sys

import boto3
from botocore.exceptions import ClientError

s3_only = "--s3-only" in sys.argv
args = [a for a in sys.argv[1:] if a != "--s3-only"]
endpoint, bucket = args[:2]
s3 = boto3.client("s3", endpoint_url=endpoint)

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

if s3_only:
    print(f"bucket {bucket} ready on {endpoint}")
    sys.exit(0)

table = args[2]
queue = args[3] if len(args) > 3 else f"{bucket}-verifier"
ddb = boto3.client("dynamodb", endpoint_url=endpoint)
sqs = boto3.client("sqs", endpoint_url=endpoint)
events = boto3.client("events", endpoint_url=endpoint)

try:
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "upload_id", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
            {"AttributeName": "in_flight", "AttributeType": "S"},
            {"AttributeName": "lease_until", "AttributeType": "N"},
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
            },
            # Sparse: only sessions in flight, and verdicts not yet announced, carry `in_flight`.
            {
                "IndexName": "in_flight-lease_until",
                "KeySchema": [
                    {"AttributeName": "in_flight", "KeyType": "HASH"},
                    {"AttributeName": "lease_until", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    )
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceInUseException":
        raise
    # A table from before the sweep: add its index (template.yaml does the same on update).
    indexes = ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
    if not any(i["IndexName"] == "in_flight-lease_until" for i in indexes):
        ddb.update_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "in_flight", "AttributeType": "S"},
                {"AttributeName": "lease_until", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": "in_flight-lease_until",
                        "KeySchema": [
                            {"AttributeName": "in_flight", "KeyType": "HASH"},
                            {"AttributeName": "lease_until", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                }
            ],
        )

# The verifier's queue with its dead-letter queue, and S3's notifications into it.
dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
    "QueueArn"
]
queue_url = sqs.create_queue(
    QueueName=queue,
    Attributes={
        # Locally no deadline stops a verification; a redelivery meanwhile is acknowledged.
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    },
)["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
    "Attributes"
]["QueueArn"]
s3.put_bucket_notification_configuration(
    Bucket=bucket,
    NotificationConfiguration={
        "QueueConfigurations": [
            {
                "QueueArn": queue_arn,
                "Events": [
                    "s3:ObjectCreated:CompleteMultipartUpload",
                    "s3:ObjectCreated:Post",
                ],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
            }
        ]
    },
)


def queue_with_dlq(name, attributes, max_receives):
    """A queue and its dead-letter queue; returns the queue's URL and ARN."""
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
    url = sqs.create_queue(
        QueueName=name, Attributes={**attributes, "RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


# The event bus verdicts are announced on, as template.yaml's EventBusName; rules as its
# WebhookRule (every verdict to the webhooks' queue, retried with back-off, then dead-lettered)
# and ExampleRule (every verdict to a queue anyone can read: `aws sqs receive-message`).
bus = bucket
try:
    events.create_event_bus(Name=bus)
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
        raise
pattern = json.dumps({"source": ["verified-uploads"]})
for suffix, attributes, receives in [
    ("webhooks", {"VisibilityTimeout": "30"}, 8),
    ("events", {}, 5),
]:
    url, arn = queue_with_dlq(f"{bucket}-{suffix}", attributes, receives)
    rule = f"{bucket}-{suffix}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=pattern, State="ENABLED")
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": suffix, "Arn": arn}])

print(f"bucket {bucket}, table {table}, queue {queue_url} and bus {bus} ready on {endpoint}")
