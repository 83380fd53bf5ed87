# Sourced by the scripts: the local stack's AWS settings (moto accepts any credentials).
# shellcheck shell=bash
local_aws_env() {
  export AWS_ENDPOINT_URL="http://127.0.0.1:$1"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export BUCKET_NAME=${BUCKET_NAME:-verified-uploads} TABLE_NAME=${TABLE_NAME:-verified-uploads}
  # bootstrap.py's queue (moto's account is 123456789012): S3's notifications and hand-overs.
  export VERIFIER_QUEUE_URL="$AWS_ENDPOINT_URL/123456789012/$BUCKET_NAME-verifier"
  # The emulator never needs IMDS; skip the lookups the SDK would otherwise try.
  export AWS_EC2_METADATA_DISABLED=true
}
