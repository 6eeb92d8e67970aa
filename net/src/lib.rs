//! The wire: QUIC transport with mutual TLS and rkyv messages (being built: issue 4).
