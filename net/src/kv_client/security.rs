//! Telling a security mismatch (TLS refused) from a transient failure.
//!
//! A node that is down or busy may answer the next attempt; a client whose certificate the
//! cluster does not accept (or that does not accept the cluster's) never will. The transport
//! reports both as text, so the TLS failure is recognised by the QUIC error it carries: a
//! failed cryptographic handshake (a TLS alert such as "unknown CA", sent or received).

use crate::tls::Security;

/// How the QUIC stack describes a TLS alert (quinn's text for every crypto error code).
const TLS_ALERT_TEXT: &str = "the cryptographic handshake failed";
/// How it describes a close received from the peer (the peer refused us).
const PEER_ABORT_TEXT: &str = "aborted by peer";

/// When `problem` (a failed dial or a lost connection) is a TLS refusal: what is wrong and
/// what to do, for a client using `security`. `None` when it may pass with a retry.
pub(crate) fn security_problem(security: &Security, problem: &str) -> Option<String> {
    if !problem.contains(TLS_ALERT_TEXT) {
        return None;
    }
    let refused_by_node = problem.contains(PEER_ABORT_TEXT);
    let advice = match (security, refused_by_node) {
        (Security::Insecure, _) => {
            "the cluster uses mutual TLS and refused this insecure client: pass --tls-dir with \
             the cluster's certificates (from `tern certs`) instead of --insecure"
        }
        (Security::MutualTls(_), true) => {
            "the node refused this client's certificate: it was not issued by the cluster's CA; \
             pass --tls-dir with this cluster's certificates (from `tern certs`)"
        }
        (Security::MutualTls(_), false) => {
            "the node's certificate was not issued by this client's CA: the --tls-dir \
             certificates belong to another cluster, or the cluster runs --insecure"
        }
    };
    Some(format!("{advice} ({problem})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls_alerts_are_security_problems() {
        let unreachable = "connecting to 127.0.0.1:9: no handshake within 1000 ms";
        assert_eq!(security_problem(&Security::Insecure, unreachable), None);
        let refused = "connection to 127.0.0.1:9: aborted by peer: the cryptographic handshake \
                       failed: error 48: invalid peer certificate: UnknownIssuer";
        let advice = security_problem(&Security::Insecure, refused).unwrap();
        assert!(advice.contains("--tls-dir"), "{advice}");
        assert!(advice.contains("UnknownIssuer"), "{advice}");
    }
}
