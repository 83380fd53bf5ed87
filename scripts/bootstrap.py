"""Creates the uploads bucket, the sessions table, the verifier's queue and the event bus on an
endpoint, as template.yaml does on AWS: S3 notifies the queue of every object created under
uploads/, and the bus's rules send every verdict to the webhooks' queue and to an example queue.

usage: bootstrap.py ENDPOINT BUCKET TABLE          (idempotent)
       bootstrap.py ENDPOINT BUCKET --s3-only      the bucket alone (the strict S3: scripts/strict_s3.sh)

What it creates is what the API's settings name (scripts/env.sh sets them; unset or blank, as the
API reads them, means the default):
  EVENT_BUS_NAME      the bus, its name or ARN               default BUCKET
  VERIFIER_QUEUE_URL  the verifier's queue (+ NAME-dlq)      default BUCKET-verifier
  WEBHOOK_QUEUE_URL   the webhooks' queue (+ NAME-dlq)       default BUCKET-webhooks
  RECEIPT_KEY_ID      receipts' signing key, when an alias/NAME: an ECC_NIST_P256 SIGN_VERIFY key
                      in the emulator's KMS (moto signs with it, as KMS does in AWS)
and the example queue BUCKET-events (+ -dlq), which nothing reads but you. A setting this endpoint
cannot hold exactly as written (a queue URL of another host, port or account, a FIFO queue, a name
AWS refuses, two settings naming one queue) stops it with exit status 1 before anything is created.
"""
import json
import os
import re
import sys
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

from create_table import ensure_table

QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
BUS_NAME = re.compile(r"[A-Za-z0-9._-]{1,256}")  # a custom bus: no "/" (partner buses have one)
RULE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
BUS_ARN = re.compile(r"arn:aws[a-z-]*:events:([a-z0-9-]+):(\d{12}):event-bus/(.+)")


def refuse(message):
    sys.exit(f"bootstrap.py: refused: {message}")


def setting(name):
    """The variable as the API reads it: unset or blank is None, anything else verbatim."""
    value = os.environ.get(name)
    return value if value is not None and value.strip() else None


def queue_setting(variable, default_name, endpoint, account):
    """(queue name, URL the setting names or None); refuses a URL this endpoint cannot hold."""
    url = setting(variable)
    if url is None:
        return default_name, None
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    if name.endswith(".fifo"):
        refuse(
            f"{variable}={url} names a FIFO queue; the service's queues are standard queues "
            "(retries are delayed per message, which FIFO queues cannot)"
        )
    if not QUEUE_NAME.fullmatch(name) or len(name) > 80 - len("-dlq"):
        refuse(
            f"{variable}={url}: {name!r} is no queue name SQS accepts with its dead-letter queue "
            "NAME-dlq (letters, digits, - and _, at most 76 characters)"
        )
    expected = f"{endpoint.rstrip('/')}/{account}/{name}"
    if url != expected:
        refuse(
            f"{variable}={url} is not a queue on this emulator: the queue {name} here is "
            f"{expected} (a setting left from another port, host or account? "
            "`. scripts/env.sh; local_aws_env PORT` sets it)"
        )
    return name, url


def bus_setting(default_name, region, account):
    """The bus's name; refuses a name or ARN this endpoint cannot hold."""
    value = setting("EVENT_BUS_NAME")
    if value is None:
        return default_name
    name = value
    arn = BUS_ARN.fullmatch(value)
    if arn:
        if (arn.group(1), arn.group(2)) != (region, account):
            refuse(
                f"EVENT_BUS_NAME={value} is a bus in {arn.group(1)}/{arn.group(2)}; "
                f"this emulator's buses are in {region}/{account}"
            )
        name = arn.group(3)
    elif value.startswith("arn:"):
        refuse(f"EVENT_BUS_NAME={value} is no event bus ARN")
    if not BUS_NAME.fullmatch(name) or name.startswith("aws."):
        refuse(
            f"EVENT_BUS_NAME={value}: {name!r} is no custom event bus name (letters, digits, "
            ". - and _, at most 256 characters, not starting with aws.; partner buses, whose "
            "names contain /, cannot be created here)"
        )
    return name


def queue_with_dlq(sqs, name, attributes, max_receives):
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


def ensure_receipt_key(kms, alias):
    """The receipts' signing key under `alias`, created when missing: as template.yaml's
    ReceiptKey (ECC_NIST_P256, SIGN_VERIFY). Its id."""
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "NotFoundException":
            raise
    key = kms.create_key(
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="verified-uploads receipts"
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    return key


def create_bucket(s3, bucket):
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


def main():
    s3_only = "--s3-only" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--s3-only"]
    if len(args) != (2 if s3_only else 3):
        sys.exit(__doc__.strip())
    endpoint, bucket = args[:2]
    s3 = boto3.client("s3", endpoint_url=endpoint)
    if s3_only:
        create_bucket(s3, bucket)
        print(f"bucket {bucket} ready on {endpoint}")
        return

    table = args[2]
    ddb = boto3.client("dynamodb", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    events = boto3.client("events", endpoint_url=endpoint)
    account = boto3.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"]

    # Every setting checked before anything is created.
    verifier, verifier_url = queue_setting(
        "VERIFIER_QUEUE_URL", f"{bucket}-verifier", endpoint, account
    )
    webhooks, webhooks_url = queue_setting(
        "WEBHOOK_QUEUE_URL", f"{bucket}-webhooks", endpoint, account
    )
    example = f"{bucket}-events"
    if not QUEUE_NAME.fullmatch(example) or len(example) > 80 - len("-dlq"):
        refuse(f"BUCKET {bucket!r}: its example queue {example!r} is no queue name SQS accepts")
    bus = bus_setting(bucket, events.meta.region_name, account)
    for suffix in ("webhooks", "events"):
        if not RULE_NAME.fullmatch(f"{bucket}-{suffix}"):
            refuse(f"BUCKET {bucket!r}: the rule name {bucket}-{suffix} is longer than 64")
    owners = {}
    for variable, name in [
        ("VERIFIER_QUEUE_URL", verifier),
        ("WEBHOOK_QUEUE_URL", webhooks),
        ("the example queue", example),
    ]:
        for queue, role in [(name, f"{variable}"), (f"{name}-dlq", f"{variable}'s dead-letter queue")]:
            if queue in owners:
                refuse(f"{role} and {owners[queue]} would be one queue, {queue}")
            owners[queue] = role

    create_bucket(s3, bucket)
    for warning in ensure_table(ddb, table):
        print(f"bootstrap.py: warning: {warning}", file=sys.stderr)

    # The verifier's queue with its dead-letter queue, and S3's notifications into it.
    # Locally no deadline stops a verification; a redelivery meanwhile is acknowledged.
    queue_url, queue_arn = queue_with_dlq(sqs, verifier, {"VisibilityTimeout": "60"}, 5)
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

    # The event bus verdicts are announced on, as template.yaml's EventBusName; rules as its
    # WebhookRule (every verdict to the webhooks' queue, retried with back-off, then dead-lettered)
    # and ExampleRule (every verdict to a queue anyone can read: `aws sqs receive-message`).
    try:
        events.create_event_bus(Name=bus)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    pattern = json.dumps({"source": ["verified-uploads"]})
    urls = {}
    for suffix, name, attributes, receives in [
        ("webhooks", webhooks, {"VisibilityTimeout": "30"}, 8),
        ("events", example, {}, 5),
    ]:
        url, arn = queue_with_dlq(sqs, name, attributes, receives)
        urls[suffix] = url
        rule = f"{bucket}-{suffix}"
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=pattern, State="ENABLED")
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": suffix, "Arn": arn}])

    # The key receipts are signed with, when the settings name one by alias (env.sh does).
    receipt_key = setting("RECEIPT_KEY_ID")
    if receipt_key is not None and receipt_key.startswith("alias/"):
        key = ensure_receipt_key(boto3.client("kms", endpoint_url=endpoint), receipt_key)
        print(f"receipts are signed with the KMS key {key} ({receipt_key})")

    # What the settings name is what now exists.
    for variable, wanted, got in [
        ("VERIFIER_QUEUE_URL", verifier_url, queue_url),
        ("WEBHOOK_QUEUE_URL", webhooks_url, urls["webhooks"]),
    ]:
        if wanted is not None and wanted != got:
            refuse(f"{variable}={wanted}, but the queue created is {got}")

    print(
        f"bucket {bucket}, table {table}, queue {queue_url} and bus {bus} (rules to "
        f"{urls['webhooks']} and {urls['events']}) ready on {endpoint}"
    )


if __name__ == "__main__":
    main()
