"""Evaluates template.yaml's `Rules` on sample parameter sets, as CloudFormation does before it
creates anything, and fails unless each set is accepted or refused as expected.

usage: template_rules.py [TEMPLATE]   (needs cfn-lint, from scripts/requirements-deploy.txt)
"""
import sys

from cfnlint.decode import decode

path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
template, errors = decode(path)
if errors:
    sys.exit(f"{path}: {errors}")


def value(node, params):
    if isinstance(node, dict) and len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            return params[arg]
        if fn == "Fn::Equals":
            return value(arg[0], params) == value(arg[1], params)
        if fn == "Fn::Not":
            return not value(arg[0], params)
        if fn == "Fn::And":
            return all(value(a, params) for a in arg)
        if fn == "Fn::Or":
            return any(value(a, params) for a in arg)
        raise SystemExit(f"unsupported rule function {fn}")
    return node


def refused(params):
    """The descriptions of the assertions that fail for `params` (defaults filled in)."""
    full = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    full.update(params)
    failed = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not value(rule["RuleCondition"], full):
            continue
        for a in rule["Assertions"]:
            if not value(a["Assert"], full):
                failed.append(f"{name}: {a['AssertDescription']}")
    return failed


cases = [
    ("the defaults (no issuer, anonymous not asked for)", {}, False),
    ("no issuer, AllowAnonymous=true", {"AllowAnonymous": "true"}, True),
    ("an issuer", {"JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/pool"}, True),
    ("an issuer and AllowAnonymous=true", {"JwtIssuer": "https://issuer.example", "AllowAnonymous": "true"}, True),
    ("a webhook URL without a secret", {"AllowAnonymous": "true", "WebhookUrl": "https://hooks.example/in"}, False),
    ("a webhook URL and its secret", {"AllowAnonymous": "true", "WebhookUrl": "https://hooks.example/in", "WebhookSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, True),
]
bad = 0
# A verified version is never expired by lifecycle: every rule that expires versions (current or
# noncurrent) is filtered on the service's removal tag; the delete-marker clean-up stands alone.
REMOVAL_TAG = {"Key": "vu-remove", "Value": "1"}
rules = template["Resources"]["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
for rule in rules:
    expires = any(k in rule for k in ("ExpirationInDays", "ExpirationDate", "NoncurrentVersionExpiration",
                                      "NoncurrentVersionExpirationInDays"))
    tags = rule.get("TagFilters") or ([rule["TagFilter"]] if "TagFilter" in rule else [])
    ok = not expires or (tags == [REMOVAL_TAG] and not rule.get("Prefix"))
    if rule.get("ExpiredObjectDeleteMarker") and (tags or expires):
        ok = False
    bad += not ok
    what = "expires only versions tagged vu-remove=1" if expires else "expires no version"
    print(f"lifecycle: {rule['Id']}: {what} ... {'ok' if ok else 'WRONG'}")
if not any(r.get("ExpiredObjectDeleteMarker") for r in rules):
    bad += 1
    print("lifecycle: no rule removes expired delete markers ... WRONG")
for what, params, accepted in cases:
    failed = refused(params)
    ok = (not failed) == accepted
    bad += not ok
    verdict = "accepted" if not failed else f"refused ({failed[0]})"
    print(f"rules: {what}: {verdict} ... {'ok' if ok else 'WRONG'}")
sys.exit(1 if bad else 0)
