"""Checks that the local stack holds what the API's settings name, as the API would use it:
the bus EVENT_BUS_NAME with an enabled rule for the service's events targeting the queue
WEBHOOK_QUEUE_URL and one targeting the example queue BUCKET_NAME-events, an event put on that bus
arriving in both queues, the verifier's queue VERIFIER_QUEUE_URL receiving the bucket's
notifications, and the table TABLE_NAME with its indexes.

usage: . scripts/env.sh; local_aws_env PORT; .venv/bin/python scripts/check_bootstrap.py
Prints each check; exit status 0 when all hold, 1 otherwise. Run it before an API consumes the
queues: its test event would otherwise be the API's to take (which refuses it as no verdict).
"""
import json
import os
import sys
import time
import uuid

import boto3
from botocore.exceptions import ClientError

SOURCE = "verified-uploads"  # src/aws/events.rs
failures = []


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)
    return ok


def required(name):
    value = os.environ.get(name, "")
    if not value.strip():
        sys.exit(f"check_bootstrap.py: {name} is not set (`. scripts/env.sh; local_aws_env PORT`)")
    return value


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def receive(sqs, url, marker, timeout=10.0):
    """The body of the message carrying MARKER (deleted); others are put back at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in got.get("Messages", []):
            if marker in m["Body"]:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                return m["Body"]
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
    return None


def main():
    endpoint = required("AWS_ENDPOINT_URL")
    bucket, table = required("BUCKET_NAME"), required("TABLE_NAME")
    bus, webhooks_url = required("EVENT_BUS_NAME"), required("WEBHOOK_QUEUE_URL")
    verifier_url = required("VERIFIER_QUEUE_URL")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    events = boto3.client("events", endpoint_url=endpoint)
    ddb = boto3.client("dynamodb", endpoint_url=endpoint)
    print(f"stack on {endpoint}: EVENT_BUS_NAME={bus} WEBHOOK_QUEUE_URL={webhooks_url}")

    try:
        arn = events.describe_event_bus(Name=bus)["Arn"]
        check(True, f"bus {bus} exists ({arn})")
    except ClientError as e:
        check(False, f"bus {bus} exists ({e.response['Error']['Code']})")
        return
    queues = {}
    for label, url in [
        ("webhooks' queue", webhooks_url),
        ("example queue", None),
        ("verifier's queue", verifier_url),
    ]:
        try:
            url = url or sqs.get_queue_url(QueueName=f"{bucket}-events")["QueueUrl"]
            queues[label] = (url, queue_arn(sqs, url))
            check(True, f"{label} {url} exists ({queues[label][1]})")
        except ClientError as e:
            check(False, f"{label} {url or bucket + '-events'} exists ({e.response['Error']['Code']})")
    if len(queues) < 3:
        return

    # The bus's rules and their targets.
    targets = {}
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        pattern = json.loads(rule.get("EventPattern") or "{}")
        arns = [
            t["Arn"] for t in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        ]
        print(f"     rule {rule['Name']} on {bus}: {rule['State']}, pattern {json.dumps(pattern)} -> {arns}")
        if rule["State"] == "ENABLED" and SOURCE in pattern.get("source", []):
            for a in arns:
                targets.setdefault(a, rule["Name"])
    for label in ("webhooks' queue", "example queue"):
        url, arn = queues[label]
        check(
            arn in targets,
            f"an enabled rule on {bus} for source {SOURCE} targets the {label} {arn}"
            + (f" (rule {targets[arn]})" if arn in targets else ""),
        )

    # An event on the bus, as the API puts a verdict, arrives in both queues.
    marker = f"bootstrap-check-{uuid.uuid4()}"
    put = events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": SOURCE,
                "DetailType": "Bootstrap check",
                "Detail": json.dumps({"check": marker}),
            }
        ]
    )
    check(put["FailedEntryCount"] == 0, f"put an event on {bus} ({marker})")
    for label in ("webhooks' queue", "example queue"):
        url = queues[label][0]
        body = receive(sqs, url, marker)
        check(body is not None, f"the event arrived in the {label} {url}")
        if body is not None:
            event = json.loads(body)
            print(f"     {event.get('source')} / {event.get('detail-type')} / {event.get('detail')}")

    # The bucket notifies the verifier's queue; the table has both indexes and TTL.
    notified = [
        c["QueueArn"]
        for c in s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
    ]
    check(
        queues["verifier's queue"][1] in notified,
        f"bucket {bucket} notifies the verifier's queue ({notified})",
    )
    try:
        t = ddb.describe_table(TableName=table)["Table"]
        indexes = sorted(i["IndexName"] for i in t.get("GlobalSecondaryIndexes", []))
        check(
            indexes == ["in_flight-lease_until", "owner-keys"],
            f"table {table} has the indexes {indexes}",
        )
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        check(
            ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName") == "expires_at",
            f"table {table} expires items by expires_at ({ttl})",
        )
    except ClientError as e:
        check(False, f"table {table} exists ({e.response['Error']['Code']})")


if __name__ == "__main__":
    main()
    if failures:
        print(f"check_bootstrap.py: {len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("check_bootstrap.py: all checks passed")
