//! Size bounds on what clients may ask. Checked at the edge (the node, before proposing) and
//! again when applying, so a violation is an error to the client and never reaches the map.

use crate::command::Command;

/// Named size bounds. Every replica must use the same values (they are checked at apply time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes. Keys may not be empty.
    pub key_bytes_max: usize,
    /// Longest value, in bytes.
    pub value_bytes_max: usize,
    /// Most commands in one `Batch`.
    pub batch_commands_max: usize,
    /// Most encoded bytes in one command (a batch counts as one command).
    pub command_bytes_max: usize,
    /// The largest `limit` a `Range` may ask for.
    pub range_limit_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            key_bytes_max: 4 << 10,
            value_bytes_max: 1 << 20,
            batch_commands_max: 1024,
            command_bytes_max: 4 << 20,
            range_limit_max: 10_000,
        }
    }
}

/// A command that breaks a limit: says which limit, the value found and the bound.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {found}, above the limit {limit_name} = {limit}")]
pub struct LimitError {
    /// What was measured, e.g. "value of key \"a\" (bytes)".
    pub what: String,
    pub found: u64,
    /// The limit's field name in [`Limits`], e.g. "value_bytes_max".
    pub limit_name: &'static str,
    pub limit: u64,
}

impl Limits {
    /// Checks a decoded command (and its encoded size) against every bound.
    pub fn check(&self, command: &Command, encoded_bytes: usize) -> Result<(), LimitError> {
        todo!()
    }
}
