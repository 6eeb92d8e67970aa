//! Mutual TLS for QUIC: who may connect, and who they are.
//!
//! With [`Security::MutualTls`] both sides present a certificate signed by the cluster CA and
//! verify the other's chain against that CA alone (rustls + webpki). The dialer also asks for
//! the name `node-<id>.tern` of the node it meant to reach, so a valid certificate for another
//! id fails the handshake. The acceptor learns the dialer's identity from its verified
//! certificate ([`peer_identity`]). All of this happens during the handshake, before any stream
//! is accepted, so no Raft message from an unverified peer is ever read.
//!
//! [`Security::Insecure`] is for local development only: certificates are still exchanged (so
//! identities are still read and checked) but nobody checks who signed them. It logs a WARN.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::certs::{throwaway_credentials, CertError, Credentials};
use crate::message::NodeId;

/// The ALPN protocol id; a peer speaking anything else fails the handshake.
pub const ALPN_PROTOCOL: &[u8] = b"tern/1";
const NODE_NAME_PREFIX: &str = "node-";
const NAME_SUFFIX: &str = ".tern";
const CLIENT_NAME: &str = "client.tern";

/// Who is at the other end of a connection, as its certificate says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A cluster member.
    Node(NodeId),
    /// A client (may send client requests only).
    Client,
}

impl Identity {
    /// The DNS subject alternative name that carries this identity in a certificate.
    pub fn dns_name(&self) -> String {
        match self {
            Identity::Node(id) => format!("{NODE_NAME_PREFIX}{id}{NAME_SUFFIX}"),
            Identity::Client => CLIENT_NAME.to_string(),
        }
    }

    /// Parses a name written by [`Identity::dns_name`].
    pub fn from_dns_name(name: &str) -> Option<Identity> {
        if name == CLIENT_NAME {
            return Some(Identity::Client);
        }
        let digits = name
            .strip_prefix(NODE_NAME_PREFIX)?
            .strip_suffix(NAME_SUFFIX)?;
        // Only canonical decimal: "node-03.tern" would be a second name for node 3.
        if digits.starts_with('0') || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Identity::Node)
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Node(id) => write!(f, "node {id}"),
            Identity::Client => f.write_str("client"),
        }
    }
}

/// How an endpoint authenticates peers.
#[derive(Clone, Debug)]
pub enum Security {
    /// Production: mutual TLS with the cluster CA.
    MutualTls(Credentials),
    /// Local development: no peer is authenticated. Never use across machines.
    Insecure,
}

/// Why TLS could not be set up, or a peer could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(String),
    #[error("QUIC needs a TLS 1.3 initial cipher suite: {0}")]
    Quic(String),
    #[error("certificates: {0}")]
    Certificates(#[from] CertError),
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    #[error("peer certificate does not parse: {0}")]
    BadPeerCertificate(String),
    #[error("peer certificate names no tern identity (expected node-<id>.tern or client.tern)")]
    NoIdentity,
    #[error("peer certificate names several tern identities")]
    SeveralIdentities,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The credentials an endpoint presents: the configured ones, or throwaway ones when insecure.
fn own_credentials(security: &Security, identity: Identity) -> Result<Credentials, TlsError> {
    match security {
        Security::MutualTls(credentials) => Ok(credentials.clone()),
        Security::Insecure => {
            // Once per process: every endpoint and every client connection builds a config,
            // and the same warning repeated drowns the log without saying more.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    %identity,
                    "INSECURE MODE: peers are NOT authenticated and anyone who can reach this port can join the cluster; for local development only"
                );
            });
            Ok(throwaway_credentials(identity)?)
        }
    }
}

/// The keys a node's QUIC endpoint derives its connection ids and stateless-reset tokens from,
/// the same in every run of that node.
///
/// Why: when a member is killed and restarted on the same port, the peer that dials it still
/// holds the old connection and would only notice after the idle timeout (measured: elections
/// between the two waited 3.5-5 s for it, though both were up). With keys that survive the
/// restart, the new process recognises the old connection's ids as its own (so it does not
/// drop the packets as junk) and answers them with a stateless reset (RFC 9000, 10.3) whose
/// token the peer was given by the old process: the peer drops the connection at once and
/// redials.
pub(crate) struct RestartStableKeys {
    /// Signs stateless-reset tokens.
    pub reset_key: Arc<dyn quinn::crypto::HmacKey>,
    /// Keys the hash that connection ids carry (quinn's `HashedConnectionIdGenerator`).
    pub connection_id_key: u64,
}

/// With mutual TLS the keys are derived (HMAC-SHA256) from the node's private key, so only the
/// node can reset its connections. Insecure mode has no secret; it derives them from the
/// identity's name, which is no weaker than that mode already is (anyone can join). Clients get
/// fresh random keys: nobody dials them.
pub(crate) fn restart_stable_keys(security: &Security, identity: Identity) -> RestartStableKeys {
    use ring::hmac;
    let secret: Vec<u8> = match (security, identity) {
        (_, Identity::Client) => {
            let mut random = [0u8; 32];
            // A failing system RNG leaves zeros: harmless, clients accept no connections.
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
            random.to_vec()
        }
        (Security::MutualTls(credentials), Identity::Node(_)) => {
            credentials.private_key.secret_der().to_vec()
        }
        (Security::Insecure, Identity::Node(_)) => identity.dns_name().into_bytes(),
    };
    let master = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let reset = hmac::sign(&master, b"tern: QUIC stateless reset key, v1");
    let connection_id = hmac::sign(&master, b"tern: QUIC connection id key, v1");
    let mut connection_id_key = [0u8; 8];
    connection_id_key.copy_from_slice(&connection_id.as_ref()[..8]);
    RestartStableKeys {
        reset_key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, reset.as_ref())),
        connection_id_key: u64::from_le_bytes(connection_id_key),
    }
}

/// The rustls server side of an endpoint, wrapped for quinn.
pub(crate) fn server_crypto(
    security: &Security,
    identity: Identity,
) -> Result<Arc<quinn::crypto::rustls::QuicServerConfig>, TlsError> {
    let provider = provider();
    let credentials = own_credentials(security, identity)?;
    let verifier: Arc<dyn ClientCertVerifier> = match security {
        Security::MutualTls(_) => {
            let mut roots = RootCertStore::empty();
            roots.add(credentials.ca_certificate.clone())?;
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|error| TlsError::Verifier(error.to_string()))?
        }
        Security::Insecure => Arc::new(AnyCertificate {
            provider: provider.clone(),
        }),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(credentials.certificate_chain, credentials.private_key)?;
    config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(config)
        .map_err(|error| TlsError::Quic(error.to_string()))?;
    Ok(Arc::new(quic))
}

/// Which server certificates the client side of an endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerNames {
    /// Only the name the dialer asked for (`node-<id>.tern` of the node it meant to reach).
    Requested,
    /// Any cluster member (`node-<id>.tern` for any id): a client that knows only addresses.
    AnyNode,
}

/// The rustls client side of an endpoint, wrapped for quinn.
pub(crate) fn client_crypto(
    security: &Security,
    identity: Identity,
    server_names: ServerNames,
) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>, TlsError> {
    let provider = provider();
    let credentials = own_credentials(security, identity)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match (security, server_names) {
        (Security::MutualTls(_), ServerNames::Requested) => {
            let mut roots = RootCertStore::empty();
            roots.add(credentials.ca_certificate.clone())?;
            builder.with_root_certificates(roots)
        }
        (Security::MutualTls(_), ServerNames::AnyNode) => {
            let mut roots = RootCertStore::empty();
            roots.add(credentials.ca_certificate.clone())?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| TlsError::Verifier(error.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyNodeCertificate { inner }))
        }
        // Insecure mode checks no chain; the identity is still read after the handshake.
        (Security::Insecure, _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider })),
    };
    let mut config =
        builder.with_client_auth_cert(credentials.certificate_chain, credentials.private_key)?;
    config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(config)
        .map_err(|error| TlsError::Quic(error.to_string()))?;
    Ok(Arc::new(quic))
}

/// The identity in a connected peer's certificate. In secure mode rustls has already verified
/// the chain against the cluster CA, so the name was given by the CA.
pub fn peer_identity(connection: &quinn::Connection) -> Result<Identity, TlsError> {
    let any = connection
        .peer_identity()
        .ok_or(TlsError::NoPeerCertificate)?;
    let chain = any
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| TlsError::BadPeerCertificate("not an X.509 chain".into()))?;
    let end_entity = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    identity_of_certificate(end_entity)
}

/// The single tern identity named in `certificate`'s subject alternative names.
pub fn identity_of_certificate(certificate: &CertificateDer<'_>) -> Result<Identity, TlsError> {
    let parsed = webpki::EndEntityCert::try_from(certificate)
        .map_err(|error| TlsError::BadPeerCertificate(error.to_string()))?;
    let mut found = None;
    for name in parsed.valid_dns_names() {
        if let Some(identity) = Identity::from_dns_name(name) {
            if found.replace(identity).is_some() {
                return Err(TlsError::SeveralIdentities);
            }
        }
    }
    found.ok_or(TlsError::NoIdentity)
}

/// Insecure mode's verifier for both directions: any certificate is accepted, but handshake
/// signatures are still checked, so the peer holds the key of the certificate it showed.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, certificate, signature, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, certificate, signature, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ClientCertVerifier for AnyCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(self, message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(self, message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ServerCertVerifier::supported_verify_schemes(self)
    }
}

/// Secure mode's verifier for a client that knows only addresses: the chain must verify against
/// the cluster CA (webpki, as for a named dial), for the name `node-<id>.tern` that the
/// certificate itself carries. So any member is accepted, and nothing else: not a client
/// certificate, not a certificate from another CA, not one naming several identities.
#[derive(Debug)]
struct AnyNodeCertificate {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyNodeCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let identity = identity_of_certificate(end_entity)
            .map_err(|error| rustls::Error::General(error.to_string()))?;
        let Identity::Node(_) = identity else {
            return Err(rustls::Error::General(format!(
                "server certificate names {identity}, not a cluster node"
            )));
        };
        let name = ServerName::try_from(identity.dns_name())
            .map_err(|error| rustls::Error::General(error.to_string()))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
