//! The service rollups in the table: per day (`ROLLUP#<UTC date>`), one small item per cell,
//! counters and histogram buckets added at write time (`throughline_service::rollup` says
//! what goes where). A report reads one Query per day.

use chrono::NaiveDate;
use futures_util::StreamExt;
use throughline_model::Interaction;
use throughline_service::Observation;
use throughline_service::rollup::{Adds, DayAdds, Resolved, interaction_adds, resolution_adds};

use crate::items::{Expr, key_item, number_attr, number_value, string_attr, string_value};
use crate::{StoreError, TimelineStore, dynamo};

/// One cell as read: its day, its sort key, its counters.
pub type RollupCell = (NaiveDate, String, Adds);

/// The cells of some days, with the read capacity they consumed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupRead {
    /// Every cell, day by day.
    pub cells: Vec<RollupCell>,
    /// DynamoDB read capacity units consumed.
    pub read_units: f64,
}

/// The longest range a report reads at once.
pub const MAX_REPORT_DAYS: i64 = 366;

/// The rollups' partition of a day.
pub(crate) fn rollup_pk(day: NaiveDate) -> String {
    format!("ROLLUP#{}", day.format("%Y-%m-%d"))
}

impl TimelineStore {
    /// Adds to the cells: one UpdateItem (`ADD`) per cell. The store calls it for every
    /// interaction it records and every resolution; tools that load history call it too.
    pub async fn roll_up(&self, adds: DayAdds) -> Result<(), StoreError> {
        for ((day, cell), counts) in adds.cells {
            if counts.is_empty() {
                continue;
            }
            let mut expr = Expr::new();
            let mut clauses = Vec::new();
            for (n, (attribute, amount)) in counts.iter().enumerate() {
                clauses.push(format!("#a{n} :a{n}"));
                expr = expr
                    .name(&format!("#a{n}"), attribute)
                    .value(&format!(":a{n}"), number_value(*amount));
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item((rollup_pk(day), cell))))
                .update_expression(format!("ADD {}", clauses.join(", ")))
                .set_expression_attribute_names(Some(expr.names))
                .set_expression_attribute_values(Some(expr.values))
                .send()
                .await
                .map_err(dynamo("UpdateItem"))?;
        }
        Ok(())
    }

    /// Rolls up a recorded interaction. A rollup that fails is logged and counted, not retried:
    /// the interaction is recorded, and a redelivery would find it a duplicate (so a count can
    /// be one short, never doubled).
    pub(crate) async fn roll_up_interaction(&self, interaction: &Interaction, observed: &Observation) {
        let adds = interaction_adds(interaction, observed, &self.business_hours);
        self.roll_up_or_log(adds).await;
    }

    /// Rolls up a resolution, as `roll_up_interaction` does.
    pub(crate) async fn roll_up_resolution(&self, resolved: &Resolved) {
        let adds = resolution_adds(resolved, &self.business_hours);
        self.roll_up_or_log(adds).await;
    }

    pub(crate) async fn roll_up_or_log(&self, adds: DayAdds) {
        if let Err(error) = self.roll_up(adds).await {
            tracing::warn!(%error, "rollup not updated; the report will be one short");
        }
    }

    /// Every cell of every day from `from` to `to` (inclusive), one Query per day (up to 8 at
    /// once); with the read capacity they consumed.
    pub async fn rollup_cells(&self, from: NaiveDate, to: NaiveDate) -> Result<RollupRead, StoreError> {
        let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let results: Vec<Result<RollupRead, StoreError>> =
            futures_util::stream::iter(days.into_iter().map(|day| self.cells_of(day)))
                .buffered(8)
                .collect()
                .await;
        let mut read = RollupRead::default();
        for result in results {
            let day = result?;
            read.cells.extend(day.cells);
            read.read_units += day.read_units;
        }
        Ok(read)
    }

    async fn cells_of(&self, day: NaiveDate) -> Result<RollupRead, StoreError> {
        let mut cells = Vec::new();
        let mut consumed = 0.0;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", string_value(rollup_pk(day)))
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(dynamo("Query"))?;
            consumed += output
                .consumed_capacity()
                .and_then(|c| c.capacity_units())
                .unwrap_or(0.0);
            for item in output.items() {
                let sk = string_attr(item, "sk")?;
                let counts: Adds = item
                    .keys()
                    .filter(|name| *name != "pk" && *name != "sk")
                    .map(|name| (name.clone(), number_attr(item, name)))
                    .collect();
                cells.push((day, sk, counts));
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(RollupRead {
                    cells,
                    read_units: consumed,
                });
            }
        }
    }
}
