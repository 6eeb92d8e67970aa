//! Results: JSON records, the summary table, plots.

pub mod plot;
pub mod record;
pub mod table;
