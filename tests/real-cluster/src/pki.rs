//! The cluster's certificates and kubeconfigs: a throwaway CA per cluster, a serving certificate for the API
//! server and the kubelet, a client certificate per component and for the admin, the ServiceAccount signing
//! key.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;
use crate::layout::{API_PORT, API_SERVICE_IP, GATEWAY, Layout, NODE};

/// A client identity: the file stem, the user (CN) and its group (O).
struct Client {
    name: &'static str,
    user: String,
    group: Option<&'static str>,
}

/// Every client of the API server: the admin (the tests), the API server towards the kubelet, the components.
fn clients() -> Vec<Client> {
    let client = |name, user: &str, group| Client {
        name,
        user: user.to_owned(),
        group,
    };
    vec![
        client("admin", "admin", Some("system:masters")),
        client(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            Some("system:masters"),
        ),
        client("controller-manager", "system:kube-controller-manager", None),
        client("scheduler", "system:kube-scheduler", None),
        client("kube-proxy", "system:kube-proxy", None),
        client("kubelet", &format!("system:node:{NODE}"), Some("system:nodes")),
    ]
}

/// Writes the CA, every certificate and key, the ServiceAccount key pair, and a kubeconfig for each client.
pub fn write(layout: &Layout, node_ip: Ipv4Addr) -> Result<(), Error> {
    let pki = layout.pki();
    std::fs::create_dir_all(&pki)?;
    std::fs::create_dir_all(layout.kubeconfig("x").parent().unwrap_or(&pki))?;

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = name("agentfarm-test-ca", None);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    write_file(&pki.join("ca.crt"), &ca_cert.pem())?;
    write_file(&pki.join("ca.key"), &ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca, ca_key);

    let ips = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(GATEWAY),
        IpAddr::V4(API_SERVICE_IP),
        IpAddr::V4(node_ip),
    ];
    let apiserver_names = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ];
    sign(
        &pki,
        "apiserver",
        &issuer,
        name("kube-apiserver", None),
        &apiserver_names,
        &ips,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    sign(
        &pki,
        "kubelet-serving",
        &issuer,
        name(&format!("system:node:{NODE}"), Some("system:nodes")),
        &[NODE, "localhost"],
        &ips,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    for client in clients() {
        sign(
            &pki,
            client.name,
            &issuer,
            name(&client.user, client.group),
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        write_kubeconfig(layout, client.name)?;
    }

    // The ServiceAccount token signer (ES256).
    let signer = KeyPair::generate()?;
    write_file(&pki.join("sa.key"), &signer.serialize_pem())?;
    write_file(&pki.join("sa.pub"), &signer.public_key_pem())?;
    Ok(())
}

fn name(common: &str, organization: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common);
    if let Some(organization) = organization {
        name.push(DnType::OrganizationName, organization);
    }
    name
}

/// Writes `NAME.crt` and `NAME.key`: a certificate for `subject`, signed by the CA.
fn sign(
    pki: &Path,
    file: &str,
    issuer: &Issuer<'_, KeyPair>,
    subject: DistinguishedName,
    dns: &[&str],
    ips: &[IpAddr],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(), Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = subject;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    for dns in dns {
        params
            .subject_alt_names
            .push(SanType::DnsName((*dns).try_into()?));
    }
    params
        .subject_alt_names
        .extend(ips.iter().copied().map(SanType::IpAddress));
    let cert = params.signed_by(&key, issuer)?;
    write_file(&pki.join(format!("{file}.crt")), &cert.pem())?;
    write_file(&pki.join(format!("{file}.key")), &key.serialize_pem())
}

fn write_kubeconfig(layout: &Layout, user: &str) -> Result<(), Error> {
    let pki = layout.pki();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: agentfarm-test\n  cluster:\n    certificate-authority: {ca}\n    \
         server: https://127.0.0.1:{API_PORT}\nusers:\n- name: {user}\n  user:\n    client-certificate: {cert}\n    \
         client-key: {key}\ncontexts:\n- name: agentfarm-test\n  context:\n    cluster: agentfarm-test\n    user: {user}\n\
         current-context: agentfarm-test\n",
        ca = pki.join("ca.crt").display(),
        cert = pki.join(format!("{user}.crt")).display(),
        key = pki.join(format!("{user}.key")).display(),
    );
    write_file(&layout.kubeconfig(user), &text)
}

/// Writes `text` to `path`, readable by its owner only (keys among them).
pub fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(())
}
