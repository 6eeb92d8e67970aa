//! Certificates for an etcd cluster's mutual TLS: one CA, one certificate per member (used for
//! both its client and its peer listener, and to dial its peers), one for clients.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The PEM files of one certificate and its key.
#[derive(Clone, Debug)]
pub struct PemPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every file an etcd cluster and its clients need.
#[derive(Clone, Debug)]
pub struct EtcdCerts {
    pub ca: PathBuf,
    /// Member index order.
    pub members: Vec<PemPair>,
    pub client: PemPair,
}

/// Writes ca.pem, <name>.pem / <name>.key for every member name and client.pem / client.key
/// into `dir` (created if missing; existing files are replaced). Member certificates name
/// 127.0.0.1 and localhost and serve as both TLS server and client (members dial each other).
pub fn write_etcd_certs(dir: &Path, member_names: &[String]) -> Result<EtcdCerts, String> {
    let generate = |what: &str, error: rcgen::Error| {
        format!("cannot generate the etcd {what} certificate: {error}")
    };
    fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;

    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| generate("CA", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name = common_name("tern-perf etcd CA");
    let ca_key = KeyPair::generate().map_err(|e| generate("CA", e))?;
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| generate("CA", e))?;
    let ca_path = dir.join("ca.pem");
    write_file(&ca_path, &ca.pem(), false)?;

    let issue = |name: &str, alt_names: Vec<String>| -> Result<PemPair, String> {
        let mut params = CertificateParams::new(alt_names).map_err(|e| generate(name, e))?;
        params.distinguished_name = common_name(name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(|e| generate(name, e))?;
        let certificate = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| generate(name, e))?;
        let pair = PemPair {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        write_file(&pair.cert, &certificate.pem(), false)?;
        write_file(&pair.key, &key.serialize_pem(), true)?;
        Ok(pair)
    };
    let loopback_names = || vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let members = member_names
        .iter()
        .map(|name| issue(name, loopback_names()))
        .collect::<Result<Vec<_>, String>>()?;
    let client = issue("client", loopback_names())?;
    Ok(EtcdCerts {
        ca: ca_path,
        members,
        client,
    })
}

fn common_name(name: &str) -> DistinguishedName {
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, name);
    distinguished_name
}

/// Writes `contents` to `path` (replacing it); private keys readable by the owner only.
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), String> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_and_the_client_get_a_certificate_and_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["n1".to_string(), "n2".to_string()];
        let certs = write_etcd_certs(dir.path(), &names).unwrap();
        assert_eq!(certs.members.len(), 2);
        let ca = fs::read_to_string(&certs.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        for pair in certs.members.iter().chain([&certs.client]) {
            let cert = fs::read_to_string(&pair.cert).unwrap();
            assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
            assert_ne!(cert, ca);
            let key = fs::read_to_string(&pair.key).unwrap();
            assert!(key.contains("PRIVATE KEY"), "{key}");
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&pair.key).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is readable by others",
                pair.key.display()
            );
        }
    }
}
