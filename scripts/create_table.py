"""The sessions table, as template.yaml declares it: the one definition scripts/bootstrap.py (moto)
and scripts/dynalite.sh (dynalite) create it from.

usage: create_table.py ENDPOINT TABLE [--ttl-optional]   (idempotent)
--ttl-optional: an endpoint without UpdateTimeToLive (dynalite) still gets the table, with a
warning that nothing expires there; without it, that is an error.
"""
import sys
import time

from botocore.exceptions import ClientError

TTL_ATTRIBUTE = "expires_at"
OWNER_INDEX = {
    "IndexName": "owner-keys",
    "KeySchema": [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ],
    # Keys only: the create is a session's one write to its owner's partition (docs/scale.md).
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}
# Sparse: only sessions pending or in flight, and verdicts not yet announced, carry `in_flight`,
# sharded as `<kind>#<k>` (docs/scale.md).
IN_FLIGHT_INDEX = {
    "IndexName": "in_flight-lease_until",
    "KeySchema": [
        {"AttributeName": "in_flight", "KeyType": "HASH"},
        {"AttributeName": "lease_until", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}
DEFINITION = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": "upload_id", "AttributeType": "S"},
        {"AttributeName": "owner", "AttributeType": "S"},
        {"AttributeName": "created_at", "AttributeType": "S"},
        {"AttributeName": "in_flight", "AttributeType": "S"},
        {"AttributeName": "lease_until", "AttributeType": "N"},
    ],
    "KeySchema": [{"AttributeName": "upload_id", "KeyType": "HASH"}],
    "GlobalSecondaryIndexes": [OWNER_INDEX, IN_FLIGHT_INDEX],
}


def wait_active(ddb, table, timeout=30.0):
    """Until the table and its indexes are ACTIVE (moto: at once; dynalite: after createTableMs)."""
    deadline = time.monotonic() + timeout
    while True:
        t = ddb.describe_table(TableName=table)["Table"]
        statuses = [t["TableStatus"]] + [i["IndexStatus"] for i in t.get("GlobalSecondaryIndexes", [])]
        if all(s == "ACTIVE" for s in statuses):
            return t
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table} not ACTIVE after {timeout:.0f} s: {statuses}")
        time.sleep(0.1)


def ensure_table(ddb, table, ttl_optional=False):
    """Creates TABLE on the client's endpoint (or adds what an older table lacks: the sweep's
    index, TTL); returns a list of warnings (empty unless ttl_optional let something pass)."""
    warnings = []
    try:
        ddb.create_table(TableName=table, **DEFINITION)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
        # A table from an older release: add the indexes it lacks (the sweep's, the keys-only
        # owner index), one per update as DynamoDB requires, as template.yaml's upgrade does.
        wait_active(ddb, table)
        for index, attributes in (
            (IN_FLIGHT_INDEX, [("in_flight", "S"), ("lease_until", "N")]),
            (OWNER_INDEX, [("owner", "S"), ("created_at", "S")]),
        ):
            indexes = ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
            if any(i["IndexName"] == index["IndexName"] for i in indexes):
                continue
            ddb.update_table(
                TableName=table,
                AttributeDefinitions=[
                    {"AttributeName": name, "AttributeType": kind} for name, kind in attributes
                ],
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
            wait_active(ddb, table)
    wait_active(ddb, table)
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if ttl.get("AttributeName") != TTL_ATTRIBUTE:
            raise SystemExit(
                f"table {table} expires items by {ttl.get('AttributeName')!r}, not {TTL_ATTRIBUTE!r}"
            )
        return warnings
    try:
        ddb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except ClientError as e:
        if not (ttl_optional and e.response["Error"]["Code"] == "UnknownOperationException"):
            raise
        warnings.append(
            f"the endpoint has no UpdateTimeToLive ({e.response['Error']['Code']}): "
            f"table {table} is created, but nothing in it expires by {TTL_ATTRIBUTE}"
        )
    return warnings


def main():
    args = [a for a in sys.argv[1:] if a != "--ttl-optional"]
    if len(args) != 2:
        sys.exit(__doc__.strip())
    import boto3

    endpoint, table = args
    ddb = boto3.client("dynamodb", endpoint_url=endpoint)
    for warning in ensure_table(ddb, table, ttl_optional="--ttl-optional" in sys.argv):
        print(f"create_table.py: warning: {warning}", file=sys.stderr)
    t = wait_active(ddb, table)
    indexes = ", ".join(i["IndexName"] for i in t.get("GlobalSecondaryIndexes", []))
    print(f"table {table} ready on {endpoint} (indexes: {indexes})")


if __name__ == "__main__":
    main()
