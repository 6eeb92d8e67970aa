//! The certificate generator: a cluster CA, node certificates that carry the node id, and
//! client certificates, made with rcgen and written as PEM files.
//!
//! A node's id lives in its certificate as the DNS subject alternative name `node-<id>.tern`
//! (see [`Identity`]); clients carry `client.tern`. Peers check that name after the chain has
//! been verified against the cluster CA, so a certificate only proves the id the CA gave it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::message::NodeId;
use crate::tls::Identity;

/// Why certificates could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists; pass --force (or force = true) to overwrite")]
    Exists { path: PathBuf },
    #[error("{path}: no PEM {what} found ({detail})")]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("generated private key is unusable: {0}")]
    Key(String),
    #[error("node id 0 is invalid")]
    InvalidNodeId,
    #[error(
        "{path}: {detail}; issuing certificates for new members needs the directory `tern certs` \
         wrote for the cluster, with its ca.pem and ca.key"
    )]
    BadCa { path: PathBuf, detail: String },
}

/// What an endpoint presents and trusts: the cluster CA, its own certificate and key.
#[derive(Debug)]
pub struct Credentials {
    /// The cluster CA: the only issuer peers' certificates are accepted from.
    pub ca_certificate: CertificateDer<'static>,
    /// This endpoint's certificate (first) and any intermediates.
    pub certificate_chain: Vec<CertificateDer<'static>>,
    pub private_key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            ca_certificate: self.ca_certificate.clone(),
            certificate_chain: self.certificate_chain.clone(),
            private_key: self.private_key.clone_key(),
        }
    }
}

/// A certificate and key issued by a [`ClusterCa`], in PEM and ready to use.
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub credentials: Credentials,
}

/// A cluster certificate authority held in memory.
pub struct ClusterCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl ClusterCa {
    /// A new self-signed CA named after `cluster_name`.
    pub fn generate(cluster_name: &str) -> Result<ClusterCa, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("tern cluster CA {cluster_name}"),
        );
        params.distinguished_name = name;
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(ClusterCa { certificate, key })
    }

    /// The CA `tern certs` wrote into `directory` (ca.pem, ca.key), to issue certificates for
    /// members added later. The issued certificates chain to the original ca.pem (same name,
    /// same key), so the running members accept them.
    pub fn load(directory: &Path) -> Result<ClusterCa, CertError> {
        let read = |name: &str| {
            let path = directory.join(name);
            fs::read_to_string(&path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => CertError::BadCa {
                    path,
                    detail: "not found".into(),
                },
                _ => CertError::Io { path, source },
            })
        };
        let (certificate_pem, key_pem) = (read("ca.pem")?, read("ca.key")?);
        let bad = |name: &str, detail: String| CertError::BadCa {
            path: directory.join(name),
            detail,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|error| bad("ca.key", error.to_string()))?;
        let params = CertificateParams::from_ca_cert_pem(&certificate_pem)
            .map_err(|error| bad("ca.pem", error.to_string()))?;
        if !matches!(params.is_ca, IsCa::Ca(_)) {
            return Err(bad("ca.pem", "not a CA certificate".into()));
        }
        // Re-signing the same name with the same key gives an issuer whose signatures verify
        // against the ca.pem the members hold.
        let certificate = params.self_signed(&key)?;
        let original =
            pem_der(&certificate_pem).ok_or_else(|| bad("ca.pem", "no PEM block".into()))?;
        if !same_public_key(&original, &key) {
            return Err(bad("ca.pem", "ca.key is not the key of ca.pem".into()));
        }
        Ok(ClusterCa { certificate, key })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// The CA private key, PEM. Keep it off the nodes if you can.
    pub fn private_key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// Issues a certificate for `identity`, valid for both TLS server and client use (nodes
    /// both accept and dial).
    pub fn issue(&self, identity: Identity) -> Result<IssuedCertificate, CertError> {
        if identity == Identity::Node(0) {
            return Err(CertError::InvalidNodeId);
        }
        let mut params = CertificateParams::new(vec![identity.dns_name()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, identity.dns_name());
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.certificate, &self.key)?;
        let private_key = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|detail| CertError::Key(detail.to_string()))?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
            credentials: Credentials {
                ca_certificate: self.certificate_der(),
                certificate_chain: vec![certificate.der().clone()],
                private_key,
            },
        })
    }
}

/// The DER bytes of the first PEM block of `pem`.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

/// Whether the certificate `der` carries `key`'s public key.
fn same_public_key(der: &[u8], key: &KeyPair) -> bool {
    let public = key.public_key_der();
    // The SubjectPublicKeyInfo appears verbatim inside the certificate.
    der.windows(public.len())
        .any(|window| window == public.as_slice())
}

/// Credentials for local development only: a throwaway CA made in memory, issuing `identity`.
/// Peers using these trust nothing but their own throwaway CA; see `Security::Insecure`.
pub fn throwaway_credentials(identity: Identity) -> Result<Credentials, CertError> {
    Ok(ClusterCa::generate("insecure")?
        .issue(identity)?
        .credentials)
}

/// File names inside a certificate directory.
fn file_stem(identity: Identity) -> String {
    match identity {
        Identity::Node(id) => format!("node-{id}"),
        Identity::Client => "client".to_string(),
    }
}

/// The node identities for `node_ids`; 0 is not a node id.
fn node_identities(node_ids: &[NodeId]) -> Result<Vec<Identity>, CertError> {
    if node_ids.contains(&0) {
        return Err(CertError::InvalidNodeId);
    }
    Ok(node_ids.iter().map(|&id| Identity::Node(id)).collect())
}

/// Writes `ca.pem`/`ca.key`, `node-<id>.pem`/`.key` for each id and `client.pem`/`.key` into
/// `directory` (created if missing). Refuses to overwrite any existing file unless `force`.
/// Returns the paths written.
pub fn write_cluster_certificates(
    directory: &Path,
    node_ids: &[NodeId],
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    let mut identities = node_identities(node_ids)?;
    identities.push(Identity::Client);
    let ca = ClusterCa::generate(&directory.display().to_string())?;
    let mut files: Vec<PendingFile> = vec![
        (directory.join("ca.pem"), ca.certificate_pem(), false),
        (directory.join("ca.key"), ca.private_key_pem(), true),
    ];
    files.extend(issue_files(&ca, directory, &identities)?);
    write_all_or_nothing(directory, files, force)
}

/// Issues `node-<id>.pem`/`.key` for each id with the CA already in `directory` (a member
/// added to a running cluster), leaving every other file as it is. Refuses to overwrite an
/// existing node certificate unless `force`. Returns the paths written.
pub fn add_node_certificates(
    directory: &Path,
    node_ids: &[NodeId],
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    let identities = node_identities(node_ids)?;
    let ca = ClusterCa::load(directory)?;
    let files = issue_files(&ca, directory, &identities)?;
    write_all_or_nothing(directory, files, force)
}

/// A file to write: its path, its contents, and whether it is a private key (mode 0600).
type PendingFile = (PathBuf, String, bool);

/// The certificate and key files of each identity, issued by `ca`, named for `directory`.
fn issue_files(
    ca: &ClusterCa,
    directory: &Path,
    identities: &[Identity],
) -> Result<Vec<PendingFile>, CertError> {
    let mut files = Vec::new();
    for &identity in identities {
        let issued = ca.issue(identity)?;
        let stem = file_stem(identity);
        files.push((
            directory.join(format!("{stem}.pem")),
            issued.certificate_pem,
            false,
        ));
        files.push((
            directory.join(format!("{stem}.key")),
            issued.private_key_pem,
            true,
        ));
    }
    Ok(files)
}

/// Writes every file (creating `directory`), after checking every target first unless
/// `force`, so a refusal leaves the directory unchanged. Returns the paths written.
fn write_all_or_nothing(
    directory: &Path,
    files: Vec<PendingFile>,
    force: bool,
) -> Result<Vec<PathBuf>, CertError> {
    if !force {
        if let Some((path, _, _)) = files.iter().find(|(path, _, _)| path.exists()) {
            return Err(CertError::Exists { path: path.clone() });
        }
    }
    fs::create_dir_all(directory).map_err(|source| CertError::Io {
        path: directory.to_path_buf(),
        source,
    })?;
    for (path, contents, secret) in &files {
        write_file(path, contents, *secret)?;
    }
    Ok(files.into_iter().map(|(path, _, _)| path).collect())
}

fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        // Private keys readable by the owner only.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(contents.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

/// Reads the credentials of `identity` from a directory written by
/// [`write_cluster_certificates`].
pub fn load_credentials(directory: &Path, identity: Identity) -> Result<Credentials, CertError> {
    let stem = file_stem(identity);
    let ca_path = directory.join("ca.pem");
    let certificate_path = directory.join(format!("{stem}.pem"));
    let key_path = directory.join(format!("{stem}.key"));
    let pem_error = |path: &Path, what, detail: String| CertError::Pem {
        path: path.to_path_buf(),
        what,
        detail,
    };
    let ca_certificate = CertificateDer::from_pem_file(&ca_path)
        .map_err(|error| pem_error(&ca_path, "certificate", error.to_string()))?;
    let certificate_chain = vec![CertificateDer::from_pem_file(&certificate_path)
        .map_err(|error| pem_error(&certificate_path, "certificate", error.to_string()))?];
    let private_key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|error| pem_error(&key_path, "private key", error.to_string()))?;
    Ok(Credentials {
        ca_certificate,
        certificate_chain,
        private_key,
    })
}
