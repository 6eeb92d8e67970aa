//! Connection options (mutual TLS from the launcher's PEM files) and client construction.

use std::path::Path;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::driver::EtcdEndpoints;

/// Bound on one TCP + TLS connect to a member: loopback answers at once, so a member that
/// does not within this is down or wedged.
pub(super) const MEMBER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The options every client of the driver starts from: the CA to trust and the identity to
/// present (etcd runs with client certificate authentication).
pub(super) fn base_options(endpoints: &EtcdEndpoints) -> Result<ConnectOptions, String> {
    let ca = read_pem(&endpoints.ca_pem, "CA certificate")?;
    let cert = read_pem(&endpoints.client_cert_pem, "client certificate")?;
    let key = read_pem(&endpoints.client_key_pem, "client key")?;
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key));
    Ok(ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(MEMBER_CONNECT_TIMEOUT))
}

/// A client balanced over `urls`. Connections are made lazily by the channel, so this fails
/// only on malformed URLs or TLS material; the first request finds out whether anyone answers.
pub(super) async fn client(urls: &[String], options: ConnectOptions) -> Result<Client, String> {
    Client::connect(urls, Some(options))
        .await
        .map_err(|error| format!("etcd driver: cannot set up a client for {urls:?}: {error}"))
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| {
        format!(
            "etcd driver: cannot read the {what} {}: {error} (the etcd launcher writes it)",
            path.display()
        )
    })
}
