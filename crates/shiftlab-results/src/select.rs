//! Row selection for pipelines: a user's SQL filter over a dataset table, evaluated by DataFusion.

use std::collections::HashSet;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::ResultsError;

/// Ids of the rows of `split` for which `filter` (a SQL boolean expression) is true.
pub async fn select_ids(
    path: &Path,
    split: &str,
    filter: &str,
) -> Result<HashSet<String>, ResultsError> {
    let ctx = SessionContext::new();
    let display = path.display().to_string();
    ctx.register_parquet("dataset", &display, ParquetReadOptions::default())
        .await?;
    let split = split.replace('\'', "''");
    let sql = format!(
        "SELECT CAST(id AS VARCHAR) AS id FROM dataset WHERE split = '{split}' AND ({filter})"
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut ids = HashSet::new();
    for b in &batches {
        let col = b.column(0);
        let col = datafusion::arrow::compute::cast(col, &DataType::Utf8)?;
        let strings = col.as_string::<i32>();
        for i in 0..strings.len() {
            if strings.is_valid(i) {
                ids.insert(strings.value(i).to_string());
            }
        }
    }
    Ok(ids)
}
