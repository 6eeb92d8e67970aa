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
///
/// Two kinds: above a maximum (`found > limit`: "... is 70000, above the limit
/// value_bytes_max = 65536") and below the minimum of 1 that keys and range limits have
/// (`found` is 0, `what` says which rule, `limit` is the field's maximum for reference).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(self))]
pub struct LimitError {
    /// What was measured, e.g. "value of key \"a\" (bytes)".
    pub what: String,
    pub found: u64,
    /// The limit's field name in [`Limits`], e.g. "value_bytes_max".
    pub limit_name: &'static str,
    pub limit: u64,
}

impl LimitError {
    /// True when the value is above its maximum (too large); false when it is below the minimum
    /// of 1 (an empty key, a range limit of 0), which is an invalid request rather than a
    /// too-large one.
    pub fn is_above_max(&self) -> bool {
        self.found > self.limit
    }
}

impl Limits {
    /// Checks a decoded command (and its encoded size) against every bound.
    ///
    /// Checked, in order: the encoded size (`command_bytes_max`), the batch's command count
    /// (`batch_commands_max`), then each command: keys non-empty and at most `key_bytes_max`
    /// (a range's `start` may be empty: it means "from the first key"; a range's `end`, when
    /// given, is a key bound and obeys `key_bytes_max`), values (`Put` value, CAS expected and
    /// new value, CAD expected) at most `value_bytes_max`, a range's `limit` from 1 to
    /// `range_limit_max`. The first violation found is returned.
    pub fn check(&self, command: &Command, encoded_bytes: usize) -> Result<(), LimitError> {
        above(
            || "encoded command (bytes)".to_string(),
            encoded_bytes as u64,
            "command_bytes_max",
            self.command_bytes_max as u64,
        )?;
        match command {
            Command::Batch(commands) => {
                above(
                    || "batch (commands)".to_string(),
                    commands.len() as u64,
                    "batch_commands_max",
                    self.batch_commands_max as u64,
                )?;
                for (position, inner) in commands.iter().enumerate() {
                    let context = Context {
                        batch_position: Some(position),
                        name: inner.name(),
                    };
                    self.check_one(inner, context)?;
                }
                Ok(())
            }
            other => self.check_one(
                other,
                Context {
                    batch_position: None,
                    name: other.name(),
                },
            ),
        }
    }

    /// Checks one non-batch command; `context` names it in errors ("Put", "batch command 3 (Put)").
    fn check_one(&self, command: &Command, context: Context) -> Result<(), LimitError> {
        match command {
            Command::Put { key, value } => {
                self.check_key(key, context)?;
                self.check_value(key, value, context, "value")
            }
            Command::Get { key } | Command::Delete { key } => self.check_key(key, context),
            Command::CompareAndSwap {
                key,
                expected,
                new_value,
            } => {
                self.check_key(key, context)?;
                if let Some(expected) = expected {
                    self.check_value(key, expected, context, "expected value")?;
                }
                self.check_value(key, new_value, context, "new value")
            }
            Command::CompareAndDelete { key, expected } => {
                self.check_key(key, context)?;
                self.check_value(key, expected, context, "expected value")
            }
            Command::Range { start, end, limit } => {
                above(
                    || format!("range start of {context} (bytes)"),
                    start.len() as u64,
                    "key_bytes_max",
                    self.key_bytes_max as u64,
                )?;
                if let Some(end) = end {
                    above(
                        || format!("range end of {context} (bytes)"),
                        end.len() as u64,
                        "key_bytes_max",
                        self.key_bytes_max as u64,
                    )?;
                }
                if *limit == 0 {
                    return Err(LimitError {
                        what: format!(
                            "range limit of {context} (pairs): limit must be at least 1;"
                        ),
                        found: 0,
                        limit_name: "range_limit_max",
                        limit: u64::from(self.range_limit_max),
                    });
                }
                above(
                    || format!("range limit of {context} (pairs)"),
                    u64::from(*limit),
                    "range_limit_max",
                    u64::from(self.range_limit_max),
                )
            }
            Command::Batch(_) => Err(LimitError {
                what: format!("{context}: a batch inside a batch; batch nesting depth"),
                found: 2,
                // Not a field of `Limits`: nesting is never allowed, whatever the limits.
                limit_name: "batch nesting depth (fixed, batches may not nest)",
                limit: 1,
            }),
        }
    }

    /// A key: not empty, at most `key_bytes_max`.
    fn check_key(&self, key: &[u8], context: Context) -> Result<(), LimitError> {
        if key.is_empty() {
            return Err(LimitError {
                what: format!("key of {context} (bytes): keys may not be empty;"),
                found: 0,
                limit_name: "key_bytes_max",
                limit: self.key_bytes_max as u64,
            });
        }
        above(
            || format!("key {} of {context} (bytes)", show_key(key)),
            key.len() as u64,
            "key_bytes_max",
            self.key_bytes_max as u64,
        )
    }

    /// A value (`field`: "value", "expected value", "new value") of `key`.
    fn check_value(
        &self,
        key: &[u8],
        value: &[u8],
        context: Context,
        field: &str,
    ) -> Result<(), LimitError> {
        above(
            || format!("{field} of key {} in {context} (bytes)", show_key(key)),
            value.len() as u64,
            "value_bytes_max",
            self.value_bytes_max as u64,
        )
    }
}

/// Names the command being checked in error messages ("Put", "batch command 3 (Put)");
/// formatted only when a check fails.
#[derive(Clone, Copy)]
struct Context {
    batch_position: Option<usize>,
    name: &'static str,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.batch_position {
            Some(position) => write!(f, "batch command {position} ({})", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// An error when `found` exceeds `limit`.
/// `what` is only formatted on failure: checks run on every applied command.
fn above(
    what: impl FnOnce() -> String,
    found: u64,
    limit_name: &'static str,
    limit: u64,
) -> Result<(), LimitError> {
    if found > limit {
        return Err(LimitError {
            what: what(),
            found,
            limit_name,
            limit,
        });
    }
    Ok(())
}

/// The message: above a maximum, or (found within the maximum) below the minimum of 1 that
/// `what` explains.
fn describe(error: &LimitError) -> String {
    if error.found > error.limit {
        format!(
            "{} is {}, above the limit {} = {}",
            error.what, error.found, error.limit_name, error.limit
        )
    } else {
        format!(
            "{} found {} (the minimum is 1, the maximum {} = {})",
            error.what, error.found, error.limit_name, error.limit
        )
    }
}

/// A key for an error message: printable ASCII escaped, long keys cut to their first bytes.
fn show_key(key: &[u8]) -> String {
    /// Longest key prefix shown in a message, in bytes.
    const SHOWN_BYTES_MAX: usize = 32;
    let shown = &key[..key.len().min(SHOWN_BYTES_MAX)];
    let suffix = if key.len() > SHOWN_BYTES_MAX {
        "..."
    } else {
        ""
    };
    format!("\"{}{suffix}\"", shown.escape_ascii())
}
