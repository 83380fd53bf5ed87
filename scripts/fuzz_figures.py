"""The fuzzing run's figures: test cases from Schemathesis's summary, requests as the API logged
them. Exits non-zero when Schemathesis failed (its status is argv[1]), any check failed, or any
request answered a 5xx."""
import re
import sys

out = open(".local/fuzz-output.log").read()
log = open(".local/fuzz-api.log").read()
cases = re.search(r"Test cases:\s*\n\s*(\d+) generated, ([^\n]*)", out)
requests = log.count(": handled status=")
server_errors = len(re.findall(r"handled status=5\d\d", log))
failed = re.search(r"(\d+) failed|found (\d+) unique failures", cases.group(2)) if cases else None
failures = int(failed.group(1) or failed.group(2)) if failed else (0 if cases else -1)
print(
    f"fuzzing: {cases.group(1) if cases else '?'} test cases generated, {requests} requests "
    f"handled by the API ({server_errors} answered 5xx), failures: {failures}"
)
if int(sys.argv[1]) != 0 or failures != 0 or server_errors:
    sys.exit(1)
