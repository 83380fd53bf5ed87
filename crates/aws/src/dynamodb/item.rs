//! Translation only: the core's storage-neutral item (`vu_core::domain::Item`, which defines the
//! record's attributes) as DynamoDB attribute values, both ways, and a transition's writes and
//! condition (`Change::writes`, `Guard::condition`) as one `UpdateItem` expression. Nothing here
//! knows a record field or a change.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;
use vu_core::domain::{self, Cond, Malformed, UploadRecord, Value, Write, from_item};
use vu_core::ports::{PortError, Upstream};

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn attribute(v: &Value) -> AttributeValue {
    match v {
        Value::S(v) => s(v),
        Value::N(v) => n(v),
        Value::Bool(v) => AttributeValue::Bool(*v),
        Value::M(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
    }
}

/// `None` for what the record never stores (a list, a set, binary, a number with a fraction, a
/// map of non-strings): reading the record then names the attribute as malformed.
fn value(v: &AttributeValue) -> Option<Value> {
    match v {
        AttributeValue::S(v) => Some(Value::S(v.clone())),
        AttributeValue::N(v) => v.parse().ok().map(Value::N),
        AttributeValue::Bool(v) => Some(Value::Bool(*v)),
        AttributeValue::M(map) => map
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
            .collect::<Option<_>>()
            .map(Value::M),
        _ => None,
    }
}

pub(super) fn to_attributes(item: &domain::Item) -> Item {
    item.iter()
        .map(|(k, v)| (k.clone(), attribute(v)))
        .collect()
}

pub(super) fn from_attributes(item: &Item) -> domain::Item {
    item.iter()
        .filter_map(|(k, v)| Some((k.clone(), value(v)?)))
        .collect()
}

pub(super) fn to_item(r: &UploadRecord) -> Item {
    to_attributes(&domain::to_item(r))
}

pub(super) fn record(item: &Item) -> Result<UploadRecord, PortError> {
    from_item(&from_attributes(item)).map_err(unreadable)
}

/// An item this service did not write (or a corrupted one) is an upstream fault, not a client's.
pub(super) fn malformed(what: &str) -> PortError {
    unreadable(Malformed(what.to_owned()))
}

fn unreadable(e: Malformed) -> PortError {
    PortError::unavailable(Upstream::DynamoDB, e)
}

/// A conditional `UpdateItem`'s expressions and their placeholders.
#[derive(Debug, Default)]
pub(super) struct Update {
    pub expression: String,
    pub condition: String,
    pub names: HashMap<String, String>,
    pub values: Item,
}

/// `writes` as `SET … REMOVE …`, `condition` as clauses joined by `AND`. Every attribute goes
/// through a name placeholder: `status`, `size`, `key` and `error` are reserved words.
pub(super) fn update(writes: &[Write], condition: &[Cond]) -> Update {
    let mut u = Update::default();
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    for w in writes {
        let name = u.name(w.attr());
        match w {
            Write::Set(attr, v) => {
                let placeholder = format!(":{attr}");
                sets.push(format!("{name} = {placeholder}"));
                u.values.insert(placeholder, attribute(v));
            }
            Write::Remove(_) => removes.push(name),
        }
    }
    let mut clauses = Vec::new();
    for (i, c) in condition.iter().enumerate() {
        // Apart from the writes' values: a clause may test the attribute a write sets.
        let placeholder = format!(":if{i}");
        let (attr, op, v) = match c {
            Cond::Eq(attr, v) => (attr, "=", v),
            Cond::Lt(attr, v) => (attr, "<", v),
            Cond::Absent(attr) => {
                clauses.push(format!("attribute_not_exists({})", u.name(attr)));
                continue;
            }
        };
        clauses.push(format!("{} {op} {placeholder}", u.name(attr)));
        u.values.insert(placeholder, attribute(v));
    }
    let mut parts = Vec::new();
    if !sets.is_empty() {
        parts.push(format!("SET {}", sets.join(", ")));
    }
    if !removes.is_empty() {
        parts.push(format!("REMOVE {}", removes.join(", ")));
    }
    u.expression = parts.join(" ");
    u.condition = clauses.join(" AND ");
    u
}

impl Update {
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use vu_core::domain::attr;

    #[test]
    fn every_value_translates_both_ways() {
        let values = [
            Value::S("x".into()),
            Value::N(-5),
            Value::N(i128::from(u64::MAX)),
            Value::Bool(true),
            Value::M([("k".to_owned(), "v".to_owned())].into()),
        ];
        for v in values {
            assert_eq!(value(&attribute(&v)), Some(v));
        }
        assert_eq!(value(&AttributeValue::N("1.5".into())), None);
        assert_eq!(value(&AttributeValue::Null(true)), None);
    }

    #[test]
    fn writes_and_condition_make_one_expression() {
        let writes = [
            Write::Set(attr::STATUS, Value::S("verified".into())),
            Write::Remove(attr::LEASE_TOKEN),
            Write::Set(attr::LEASE_UNTIL, Value::N(0)),
        ];
        let condition = [
            Cond::Eq(attr::STATUS, Value::S("completing".into())),
            Cond::Lt(attr::LEASE_UNTIL, Value::N(10)),
            Cond::Absent(attr::ERROR),
        ];
        let u = update(&writes, &condition);
        assert_eq!(
            u.expression,
            "SET #status = :status, #lease_until = :lease_until REMOVE #lease_token"
        );
        assert_eq!(
            u.condition,
            "#status = :if0 AND #lease_until < :if1 AND attribute_not_exists(#error)"
        );
        assert_eq!(u.names.len(), 4);
        assert_eq!(u.values.len(), 4);
        assert_eq!(u.values[":if1"], n(10));
    }
}
