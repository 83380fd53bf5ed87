"""Checks that the upstream-fault alarm in template.yaml can fire: every function that completes
uploads (api, verifier) logs to a log group of the template, each such group has a metric filter
whose quoted term is the log line the code writes on an upstream fault (crates/core), and an alarm
watches that metric. A renamed log line or a dropped LogGroup would otherwise silence the alarm.

usage: template_alarms.py [TEMPLATE]   (needs cfn-lint, from scripts/requirements-deploy.txt)
"""
import pathlib
import sys

from cfnlint.decode import decode

path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
template, errors = decode(path)
if errors:
    sys.exit(f"{path}: {errors}")
resources = template["Resources"]
source = pathlib.Path("crates/core/src/service/lease.rs").read_text()


def ref(node):
    return node.get("Ref") if isinstance(node, dict) else None


filters = {
    ref(r["Properties"]["LogGroupName"]): r["Properties"]
    for r in resources.values()
    if r["Type"] == "AWS::Logs::MetricFilter"
}
alarmed = {
    (r["Properties"]["Namespace"].get("Fn::Sub"), r["Properties"]["MetricName"])
    for r in resources.values()
    if r["Type"] == "AWS::CloudWatch::Alarm"
}
bad = []
for fn in ("ApiFunction", "VerifierFunction"):
    group = ref(resources[fn]["Properties"].get("LoggingConfig", {}).get("LogGroup"))
    if group not in resources or resources[group]["Type"] != "AWS::Logs::LogGroup":
        bad.append(f"{fn}: logs to no log group of the template")
        continue
    f = filters.get(group)
    if f is None:
        bad.append(f"{fn}: no metric filter on {group}")
        continue
    term = f["FilterPattern"].strip('"')
    if f'"{term}' not in source:
        bad.append(f"{fn}: the filter's term {term!r} is not a log line of crates/core/src/service/lease.rs")
    metric = f["MetricTransformations"][0]
    if (metric["MetricNamespace"].get("Fn::Sub"), metric["MetricName"]) not in alarmed:
        bad.append(f"{fn}: no alarm on {metric['MetricName']}")
    print(f"alarms: {fn} -> {group} -> {metric['MetricName']} ({term!r}) ... {'WRONG' if bad else 'ok'}")
for b in bad:
    print(f"alarms: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
