//! Opt-in accounting of the DynamoDB capacity the service consumes (`DYNAMODB_CONSUMED_CAPACITY=1`,
//! for the load bench and cost checks; off by default). An SDK interceptor on the sessions
//! client asks every call for `ReturnConsumedCapacity=TOTAL`, sums what the answers report, per
//! operation, and logs each call with the running totals. Done as an interceptor so that no
//! adapter call (nor the quota's, which other changes rework) has to remember the parameter.
//!
//! What DynamoDB reports is the base table's capacity only when the answer succeeds: a refused
//! conditional write is charged but reports nothing, so those calls are counted as `unreported`
//! (emulators such as dynalite also leave out the indexes' writes that `TOTAL` includes in AWS).

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};

/// The setting that turns the accounting on (`1` or `true`).
pub const SETTING: &str = "DYNAMODB_CONSUMED_CAPACITY";

/// Whether `DYNAMODB_CONSUMED_CAPACITY` asks for the accounting.
pub fn enabled() -> bool {
    std::env::var(SETTING).is_ok_and(|v| matches!(v.trim(), "1" | "true"))
}

/// The sessions client for `sdk`, with the accounting when [`enabled`].
pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    if !enabled() {
        return aws_sdk_dynamodb::Client::new(sdk);
    }
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(ConsumedCapacityInterceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// One operation's running totals.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct OpTotals {
    pub calls: u64,
    /// Capacity units reported: read units for reads, write units for writes.
    pub units: f64,
    /// Calls whose answer reported no capacity (errors, such as a refused condition).
    pub unreported: u64,
}

/// Every operation's totals since the process started (all clients share them).
static TOTALS: Mutex<BTreeMap<&'static str, OpTotals>> = Mutex::new(BTreeMap::new());

/// A snapshot of the totals, by operation.
pub fn totals() -> BTreeMap<&'static str, OpTotals> {
    TOTALS.lock().map(|t| t.clone()).unwrap_or_default()
}

/// Reads, as opposed to writes: which of RCU or WCU an operation's units are.
fn is_read(op: &str) -> bool {
    matches!(
        op,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
    )
}

fn record(op: &'static str, units: Option<f64>) {
    let Ok(mut all) = TOTALS.lock() else { return };
    let t = all.entry(op).or_default();
    t.calls += 1;
    match units {
        Some(u) => t.units += u,
        None => t.unreported += 1,
    }
    let (mut rcu, mut wcu) = (0.0, 0.0);
    for (name, t) in all.iter() {
        if is_read(name) {
            rcu += t.units;
        } else {
            wcu += t.units;
        }
    }
    let calls: u64 = all.values().map(|t| t.calls).sum();
    drop(all);
    // One line per call: the bench sums them by operation; the totals serve whoever tails it.
    tracing::info!(
        op,
        units = units.unwrap_or(0.0),
        reported = units.is_some(),
        calls_total = calls,
        rcu_total = rcu,
        wcu_total = wcu,
        "dynamodb consumed capacity"
    );
}

/// Sets `ReturnConsumedCapacity=TOTAL` on each request and records what each answer reports.
#[derive(Debug)]
struct ConsumedCapacityInterceptor;

fn units(c: Option<&ConsumedCapacity>) -> Option<f64> {
    c.and_then(ConsumedCapacity::capacity_units)
}

fn sum(cs: &[ConsumedCapacity]) -> Option<f64> {
    (!cs.is_empty()).then(|| cs.iter().filter_map(ConsumedCapacity::capacity_units).sum())
}

/// Asks for the total on whichever operation `input` is; `None` for an operation not listed.
fn ask(input: &mut Input) -> Option<()> {
    let total = Some(ReturnConsumedCapacity::Total);
    macro_rules! set {
        ($($ty:ty),*) => {
            $(if let Some(i) = input.downcast_mut::<$ty>() {
                i.return_consumed_capacity = total;
                return Some(());
            })*
        };
    }
    set!(
        PutItemInput,
        GetItemInput,
        UpdateItemInput,
        DeleteItemInput,
        QueryInput,
        ScanInput,
        BatchGetItemInput,
        BatchWriteItemInput,
        TransactGetItemsInput,
        TransactWriteItemsInput
    );
    None
}

/// The operation's name and the units its answer reports.
fn reported(output: &Output) -> Option<(&'static str, Option<f64>)> {
    macro_rules! one {
        ($($op:literal => $ty:ty),*) => {
            $(if let Some(o) = output.downcast_ref::<$ty>() {
                return Some(($op, units(o.consumed_capacity())));
            })*
        };
    }
    macro_rules! many {
        ($($op:literal => $ty:ty),*) => {
            $(if let Some(o) = output.downcast_ref::<$ty>() {
                return Some(($op, sum(o.consumed_capacity())));
            })*
        };
    }
    one!(
        "PutItem" => PutItemOutput,
        "GetItem" => GetItemOutput,
        "UpdateItem" => UpdateItemOutput,
        "DeleteItem" => DeleteItemOutput,
        "Query" => QueryOutput,
        "Scan" => ScanOutput
    );
    many!(
        "BatchGetItem" => BatchGetItemOutput,
        "BatchWriteItem" => BatchWriteItemOutput,
        "TransactGetItems" => TransactGetItemsOutput,
        "TransactWriteItems" => TransactWriteItemsOutput
    );
    None
}

/// The operation's name from the SDK's metadata, for answers that carry no output (errors).
fn operation(cfg: &ConfigBag) -> &'static str {
    let name = cfg
        .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        .map(|m| m.name().to_owned())
        .unwrap_or_default();
    // The few names the adapter can use, as 'static strs for the totals' keys.
    [
        "PutItem",
        "GetItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    ]
    .into_iter()
    .find(|n| *n == name)
    .unwrap_or("other")
}

impl Intercept for ConsumedCapacityInterceptor {
    fn name(&self) -> &'static str {
        "ConsumedCapacityInterceptor"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask(context.input_mut());
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.output_or_error() {
            Ok(output) => match reported(output) {
                Some((op, units)) => record(op, units),
                None => record(operation(cfg), None),
            },
            Err(_) => record(operation(cfg), None),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn asks_every_listed_operation_for_the_total() {
        let mut input = Input::erase(PutItemInput::builder().table_name("t").build().unwrap());
        assert!(ask(&mut input).is_some());
        let put = input.downcast_ref::<PutItemInput>().unwrap();
        assert_eq!(
            put.return_consumed_capacity,
            Some(ReturnConsumedCapacity::Total)
        );
        let mut other = Input::erase(42_u8);
        assert!(ask(&mut other).is_none());
    }

    #[test]
    fn reads_the_units_of_one_and_of_many() {
        let one = ConsumedCapacity::builder().capacity_units(1.5).build();
        let output = Output::erase(
            GetItemOutput::builder()
                .consumed_capacity(one.clone())
                .build(),
        );
        assert_eq!(reported(&output), Some(("GetItem", Some(1.5))));
        let output = Output::erase(
            TransactWriteItemsOutput::builder()
                .consumed_capacity(one.clone())
                .consumed_capacity(one)
                .build(),
        );
        assert_eq!(reported(&output), Some(("TransactWriteItems", Some(3.0))));
        let none = Output::erase(PutItemOutput::builder().build());
        assert_eq!(reported(&none), Some(("PutItem", None)));
        assert!(is_read("Query") && !is_read("UpdateItem"));
    }
}
