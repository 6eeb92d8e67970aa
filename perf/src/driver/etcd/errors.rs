//! A failed operation as the stats count it: a kind (gRPC status code, client error variant or
//! our own timeout) and a message.

use std::error::Error as _;
use std::time::Duration;

/// One failed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OpError {
    /// Groups failures in the stats: "grpc Unavailable", "transport", "timeout", ...
    pub kind: String,
    /// What went wrong, as etcd or the client said it.
    pub message: String,
}

impl OpError {
    /// No answer within the driver's own bound.
    pub fn timeout(bound: Duration) -> OpError {
        OpError {
            kind: "timeout".to_string(),
            message: format!("no answer within {bound:?}"),
        }
    }
}

impl From<etcd_client::Error> for OpError {
    fn from(error: etcd_client::Error) -> OpError {
        use etcd_client::Error;
        let kind = match &error {
            // etcd's own refusals ("etcdserver: leader changed", "... request timed out") and
            // tonic's failures to reach a member both arrive as statuses: the code separates them.
            Error::GRpcStatus(status) => format!("grpc {:?}", status.code()),
            Error::TransportError(_) => "transport".to_string(),
            Error::IoError(_) => "io".to_string(),
            _ => "client".to_string(),
        };
        let message = match &error {
            Error::GRpcStatus(status) => with_sources(status.message(), status.source()),
            other => with_sources(&other.to_string(), other.source()),
        };
        OpError { kind, message }
    }
}

/// `message: cause: cause ...` (tonic's transport errors hide the useful part in the chain).
fn with_sources(message: &str, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut text = message.to_string();
    // The chains are a handful deep; the bound only guards against a cycle.
    const SOURCES_SHOWN_MAX: usize = 8;
    for _ in 0..SOURCES_SHOWN_MAX {
        let Some(cause) = source else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_message() {
        let error = OpError::from(etcd_client::Error::InvalidArgs("bad".to_string()));
        assert_eq!(error.kind, "client");
        assert!(error.message.contains("bad"), "{}", error.message);
    }

    #[test]
    fn timeouts_name_the_bound() {
        let error = OpError::timeout(Duration::from_secs(3));
        assert_eq!(error.kind, "timeout");
        assert!(error.message.contains("3s"), "{}", error.message);
    }
}
