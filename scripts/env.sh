# Sourced by the scripts: the local stack's AWS settings (moto accepts any credentials).
# shellcheck shell=bash
local_aws_env() {
  export AWS_ENDPOINT_URL="http://127.0.0.1:$1"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export BUCKET_NAME=${BUCKET_NAME:-verified-uploads} TABLE_NAME=${TABLE_NAME:-verified-uploads}
  # bootstrap.py's queue (moto's account is 123456789012): S3's notifications and hand-overs.
  export VERIFIER_QUEUE_URL="$AWS_ENDPOINT_URL/123456789012/$BUCKET_NAME-verifier"
  # bootstrap.py's bus (every verdict is announced on it) and the queue its webhook rule fills;
  # webhooks are delivered when WEBHOOK_URL and WEBHOOK_SECRET are set too (README).
  export EVENT_BUS_NAME=${EVENT_BUS_NAME:-$BUCKET_NAME}
  export WEBHOOK_QUEUE_URL="$AWS_ENDPOINT_URL/123456789012/$BUCKET_NAME-webhooks"
  # The key receipts are signed with: bootstrap.py creates it in the emulator's KMS (moto signs
  # ECC_NIST_P256 as KMS does). RECEIPT_KEY_ID= (blank) turns receipts off.
  export RECEIPT_KEY_ID=${RECEIPT_KEY_ID-alias/$BUCKET_NAME-receipts}
  # The emulator never needs IMDS; skip the lookups the SDK would otherwise try.
  export AWS_EC2_METADATA_DISABLED=true
}
