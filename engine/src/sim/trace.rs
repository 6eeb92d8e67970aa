//! The readable event trace of a run (`--trace`): one line per event, with its simulated time.
//! Off by default; a run that records nothing pays only a branch per event.

use crate::raft::{Message, MessageBody};

#[derive(Default)]
pub struct Trace {
    pub enabled: bool,
    pub lines: Vec<String>,
}

impl Trace {
    /// Records a line built only when tracing is on.
    pub fn record(&mut self, time: u64, text: impl FnOnce() -> String) {
        if self.enabled {
            self.lines.push(format!("{:>9} {}", time, text()));
        }
    }
}

/// A message in one short line: `n1->n2 t3 AppendRequest prev=(4,2) entries=5..6 commit=4`.
pub fn describe_message(message: &Message) -> String {
    let body = match &message.body {
        MessageBody::VoteRequest {
            pre_vote,
            last_log_index,
            last_log_term,
            leadership_transfer,
        } => {
            format!(
                "{}VoteRequest last=({last_log_index},{last_log_term}){}",
                if *pre_vote { "Pre" } else { "" },
                if *leadership_transfer {
                    " transfer"
                } else {
                    ""
                }
            )
        }
        MessageBody::VoteResponse { pre_vote, granted } => format!(
            "{}VoteResponse {}",
            if *pre_vote { "Pre" } else { "" },
            if *granted { "granted" } else { "refused" }
        ),
        MessageBody::AppendRequest {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            let range = match (entries.first(), entries.last()) {
                (Some(first), Some(last)) => format!("{}..{}", first.index, last.index),
                _ => "none".into(),
            };
            format!(
                "AppendRequest prev=({prev_log_index},{prev_log_term}) entries={range} \
                 commit={leader_commit}"
            )
        }
        MessageBody::InstallSnapshot { snapshot } => format!(
            "InstallSnapshot at=({},{}) voters={:?}{}",
            snapshot.index,
            snapshot.term,
            snapshot.membership.voters,
            if snapshot.membership.is_joint() {
                format!(" outgoing={:?}", snapshot.membership.voters_outgoing)
            } else {
                String::new()
            }
        ),
        MessageBody::AppendResponse {
            success,
            match_index,
            conflict_index,
            conflict_term,
        } => {
            if *success {
                format!("AppendResponse ok match={match_index}")
            } else {
                format!(
                    "AppendResponse reject conflict_index={conflict_index} \
                     conflict_term={conflict_term:?}"
                )
            }
        }
        MessageBody::Heartbeat {
            leader_commit,
            read_round,
        } => {
            format!("Heartbeat commit={leader_commit} round={read_round}")
        }
        MessageBody::HeartbeatResponse { read_round } => {
            format!("HeartbeatResponse round={read_round}")
        }
        MessageBody::TimeoutNow => "TimeoutNow".into(),
    };
    format!(
        "n{}->n{} t{} {}",
        message.from, message.to, message.term, body
    )
}
