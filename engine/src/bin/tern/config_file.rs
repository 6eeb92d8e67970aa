//! The `--config FILE.toml` of `tern serve`: every flag is a key (dashes become underscores),
//! every key optional. A key the node does not know is an error naming it, so a typo cannot
//! silently leave a setting at its default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A member list: `"1=HOST:PORT,2=HOST:PORT"` or a table `{ 1 = "HOST:PORT", ... }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum MemberList {
    Text(String),
    Table(BTreeMap<String, String>),
}

/// `read_mode` in the file (same words as `--read-mode`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileReadMode {
    Linearizable,
    Lease,
    Serializable,
}

/// `log_level` in the file (same words as `--log-level`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileLogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// The file's contents. Field names are the flags' names with underscores.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub id: Option<u64>,
    pub peers: Option<MemberList>,
    pub client_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tls_dir: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub peer_client_addrs: Option<MemberList>,
    pub election_timeout_ms_min: Option<u64>,
    pub election_timeout_ms_max: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    pub read_mode: Option<FileReadMode>,
    pub clock_drift_margin_ms: Option<u64>,
    pub proposal_batch_commands_max: Option<usize>,
    pub proposal_batch_bytes_max: Option<usize>,
    pub proposal_queue_batches_max: Option<usize>,
    pub append_entries_max: Option<usize>,
    pub append_bytes_max: Option<usize>,
    pub inflight_messages_max: Option<usize>,
    pub uncommitted_entries_max: Option<u64>,
    pub pending_reads_max: Option<usize>,
    pub wal_segment_bytes: Option<usize>,
    pub snapshot_entries: Option<u64>,
    pub join: Option<bool>,
    pub client_executors: Option<usize>,
    pub pin_cores: Option<bool>,
    pub key_bytes_max: Option<usize>,
    pub value_bytes_max: Option<usize>,
    pub batch_commands_max: Option<usize>,
    pub command_bytes_max: Option<usize>,
    pub range_limit_max: Option<u32>,
    pub sessions_max: Option<usize>,
    pub results_per_session_max: Option<usize>,
    pub log_level: Option<FileLogLevel>,
}

impl ConfigFile {
    /// Reads and parses `path`. The error is one line: the path, the line number and what is
    /// wrong (an unknown key is named).
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("--config {}: {error}", path.display()))?;
        Self::parse(&text).map_err(|problem| format!("--config {}: {problem}", path.display()))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|error| {
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            // toml's message can span lines (it lists the expected keys); keep it on one.
            let message = error
                .message()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        let file = ConfigFile::parse(
            "id = 2\npeers = \"1=127.0.0.1:7001,2=127.0.0.1:7002\"\ninsecure = true\n\
             read_mode = \"lease\"\n[peer_client_addrs]\n1 = \"127.0.0.1:7101\"\n",
        )
        .unwrap();
        assert_eq!(file.id, Some(2));
        assert!(matches!(file.peers, Some(MemberList::Text(_))));
        assert!(matches!(file.read_mode, Some(FileReadMode::Lease)));
        match file.peer_client_addrs {
            Some(MemberList::Table(table)) => assert_eq!(table["1"], "127.0.0.1:7101"),
            other => panic!("expected a table, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let error = ConfigFile::parse("id = 1\nelection_timeout_min = 5\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(error.contains("election_timeout_min"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}
