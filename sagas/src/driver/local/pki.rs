//! Each workspace's own certificate authority, and what it signs: the API server's serving
//! certificate for 127.0.0.1 and localhost, and the control plane's admin client certificate.
//! Plus the key pair the API server signs service-account tokens with.
//!
//! Generated once at `create` and kept on disk, so a restarted API server presents the same
//! certificate and keeps accepting the tokens it issued before.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use crate::driver::DriverError;

/// The admin client's Kubernetes user (CN) and group (O): `system:masters` bypasses RBAC.
pub const ADMIN_USER: &str = "hexabase-control-plane";
pub const ADMIN_GROUP: &str = "system:masters";

/// PEMs for one workspace.
pub struct WorkspacePki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    /// Service-account token signing key (PKCS#8) and its public half (SPKI).
    pub sa_key: String,
    pub sa_pub: String,
}

fn failed(what: &str, e: rcgen::Error) -> DriverError {
    DriverError::Permanent(format!("local driver: cannot make the {what}: {e}"))
}

impl WorkspacePki {
    pub fn generate(workspace: &str) -> Result<Self, DriverError> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed("CA", e))?;
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, format!("hexabase {workspace} CA"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(|e| failed("CA key", e))?;
        let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| failed("CA", e))?;

        let mut serving = CertificateParams::new(vec!["localhost".to_owned()])
            .map_err(|e| failed("serving certificate", e))?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        serving
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let (serving_cert, serving_key) = sign(serving, &issuer, "serving certificate")?;

        let mut admin = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| failed("admin certificate", e))?;
        admin.distinguished_name = DistinguishedName::new();
        admin
            .distinguished_name
            .push(DnType::CommonName, ADMIN_USER);
        admin
            .distinguished_name
            .push(DnType::OrganizationName, ADMIN_GROUP);
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let (admin_cert, admin_key) = sign(admin, &issuer, "admin certificate")?;

        let sa = KeyPair::generate().map_err(|e| failed("service-account key", e))?;
        Ok(Self {
            ca_cert: issuer.pem(),
            serving_cert,
            serving_key,
            admin_cert,
            admin_key,
            sa_key: sa.serialize_pem(),
            sa_pub: sa.public_key_pem(),
        })
    }
}

fn sign(
    params: CertificateParams,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    what: &str,
) -> Result<(String, String), DriverError> {
    let key = KeyPair::generate().map_err(|e| failed(what, e))?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| failed(what, e))?;
    Ok((cert.pem(), key.serialize_pem()))
}
