//! The certificate generator, the identity names certificates carry, and limit checks.

use tern_net::certs::{load_credentials, write_cluster_certificates, CertError};
use tern_net::tls::{identity_of_certificate, Identity};

/// Proves the generator writes every file, refuses to overwrite without force (leaving the
/// files as they were), overwrites with force, and that written certificates carry their ids.
#[test]
fn generator_writes_refuses_overwrite_and_ids_round_trip() {
    let directory = tempfile::tempdir().unwrap();
    let written = write_cluster_certificates(directory.path(), &[1, 2, 3], false).unwrap();
    assert_eq!(written.len(), 2 + 2 * 4);
    let before = std::fs::read(directory.path().join("ca.pem")).unwrap();
    let error = write_cluster_certificates(directory.path(), &[1], false).unwrap_err();
    assert!(matches!(error, CertError::Exists { .. }), "{error}");
    assert_eq!(
        std::fs::read(directory.path().join("ca.pem")).unwrap(),
        before
    );
    write_cluster_certificates(directory.path(), &[1, 2, 3], true).unwrap();
    assert_ne!(
        std::fs::read(directory.path().join("ca.pem")).unwrap(),
        before
    );
    for identity in [Identity::Node(1), Identity::Node(3), Identity::Client] {
        let credentials = load_credentials(directory.path(), identity).unwrap();
        assert_eq!(
            identity_of_certificate(&credentials.certificate_chain[0]).unwrap(),
            identity
        );
    }
    assert!(
        write_cluster_certificates(directory.path(), &[0], true).is_err(),
        "node id 0 is invalid"
    );
}

/// Proves only canonical names parse, so one id has exactly one name.
#[test]
fn identity_names_are_canonical() {
    assert_eq!(
        Identity::from_dns_name("node-7.tern"),
        Some(Identity::Node(7))
    );
    assert_eq!(
        Identity::from_dns_name("client.tern"),
        Some(Identity::Client)
    );
    for bad in [
        "node-07.tern",
        "node-.tern",
        "node-1x.tern",
        "node-1.tern.evil",
        "node-+1.tern",
        "node-99999999999999999999.tern",
    ] {
        assert_eq!(Identity::from_dns_name(bad), None, "{bad}");
    }
    assert_eq!(
        Identity::from_dns_name(&Identity::Node(42).dns_name()),
        Some(Identity::Node(42))
    );
}

/// Proves inconsistent limits are refused by name (and the defaults pass).
#[test]
fn limits_are_validated() {
    use tern_net::transport::Limits;
    Limits::default().validate().unwrap();
    let bad = [
        Limits {
            frame_bytes_max: 8,
            ..Limits::default()
        },
        Limits {
            send_queue_frames_max: 0,
            ..Limits::default()
        },
        Limits {
            client_connections_max: 0,
            ..Limits::default()
        },
        Limits {
            receive_buffer_bytes_retained: 1 << 10,
            ..Limits::default()
        },
        Limits {
            keep_alive_interval_ms: 10_000,
            idle_timeout_ms: 5_000,
            ..Limits::default()
        },
        Limits {
            reconnect_backoff_ms_min: 500,
            reconnect_backoff_ms_max: 100,
            ..Limits::default()
        },
        Limits {
            handshake_timeout_ms: 0,
            ..Limits::default()
        },
        Limits {
            handshake_timeout_ms: 6_000,
            idle_timeout_ms: 5_000,
            ..Limits::default()
        },
    ];
    for limits in bad {
        assert!(limits.validate().is_err(), "{limits:?}");
    }
}
