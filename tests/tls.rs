//! HTTPS on ponte's listener, checked with `curl`: the certificate is served and
//! reloaded on SIGHUP, and a client certificate stands for an API key.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use support::ponte::Ponte;
use support::start_on_mock;

/// A CA and a certificate it signed, written as PEM files under `dir/name-*`.
struct Pki {
    ca: String,
    certificate: String,
    key: String,
    der_sha256: String,
}

fn issue(dir: &Path, name: &str, hosts: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: a certificate whose issuer is its own subject looks self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, hosts[0]);
    let certificate = params.signed_by(&key, &ca).expect("certificate");

    let write = |suffix: &str, text: String| {
        let path = dir.join(format!("{name}-{suffix}.pem"));
        std::fs::write(&path, text).expect("write pem");
        path.to_string_lossy().into_owned()
    };
    let der_sha256 = Sha256::digest(certificate.der())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Pki {
        ca: write("ca", ca.pem()),
        certificate: write("cert", certificate.pem()),
        key: write("key", key.serialize_pem()),
        der_sha256,
    }
}

/// `curl` over HTTPS; returns the HTTP status, or 0 when TLS failed.
fn curl(ponte: &Ponte, ca: &str, path: &str, extra: &[&str]) -> u16 {
    let url = format!("https://localhost:{}{path}", ponte.port);
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            ca,
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_served_and_a_new_certificate_is_taken_on_sighup() {
    let dir = tempfile::tempdir().expect("dir");
    let first = issue(dir.path(), "first", &["localhost"]);
    let live_cert = dir.path().join("server-cert.pem");
    let live_key = dir.path().join("server-key.pem");
    std::fs::copy(&first.certificate, &live_cert).expect("copy");
    std::fs::copy(&first.key, &live_key).expect("copy");
    let (cert, key) = (live_cert.to_string_lossy(), live_key.to_string_lossy());
    let (_cluster, _d, ponte) = start_on_mock(&[
        ("PONTE_TLS_CERTIFICATE_PATH", &cert),
        ("PONTE_TLS_KEY_PATH", &key),
    ]);

    let before = curl(&ponte, &first.ca, "/health/live", &[]);
    let second = issue(dir.path(), "second", &["localhost"]);
    std::fs::copy(&second.certificate, &live_cert).expect("copy");
    std::fs::copy(&second.key, &live_key).expect("copy");
    Command::new("kill")
        .args(["-HUP", &ponte.pid().to_string()])
        .status()
        .expect("kill -HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old_ca = curl(&ponte, &first.ca, "/health/live", &[]);
    let new_ca = curl(&ponte, &second.ca, "/health/live", &[]);
    let plain = reqwest::get(ponte.url("/health/live")).await;

    assert_eq!(before, 200);
    assert_eq!((old_ca, new_ca), (0, 200), "the new certificate is served");
    assert!(
        plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()),
        "no plain HTTP"
    );
    assert!(ponte.log().contains("tls certificate reloaded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_stands_for_its_api_key() {
    let dir = tempfile::tempdir().expect("dir");
    let server = issue(dir.path(), "server", &["localhost"]);
    let client = issue(dir.path(), "client", &["erp.example"]);
    let config = format!(
        "tls_certificate_path = \"{}\"\ntls_key_path = \"{}\"\ntls_client_ca_path = \"{}\"\n\n\
         [[api_keys]]\nname = \"erp\"\nhash = \"{}\"\nscopes = [\"produce\"]\n\
         client_certificate_sha256 = \"{}\"\n",
        server.certificate,
        server.key,
        client.ca,
        ponte::auth::hash_secret(&ponte::auth::new_secret()),
        client.der_sha256,
    );
    let path = dir.path().join("ponte.toml");
    std::fs::write(&path, config).expect("config");
    let path = path.to_string_lossy();
    let (_cluster, _d, ponte) = start_on_mock(&[("PONTE_CONFIG", &path)]);
    let post = [
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"data":{"a":1}}"#,
    ];

    let with_certificate = curl(
        &ponte,
        &server.ca,
        "/topics/mtls",
        &[
            &post[..],
            &["--cert", &client.certificate, "--key", &client.key],
        ]
        .concat(),
    );
    // Without a body: over HTTP/2, a refusal sent before the body is read ends in a
    // stream reset that curl may report instead of the status (see the README).
    let without = curl(&ponte, &server.ca, "/messages?status=sent", &[]);

    assert_eq!(with_certificate, 200);
    assert_eq!(without, 401);
}
