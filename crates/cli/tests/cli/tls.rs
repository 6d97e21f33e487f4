//! TLS through the real binary: `serve --tls-self-signed` prints its fingerprint, clients pinning
//! it send, list and get; a wrong pin, a plaintext client on the TLS port and a TLS client on the
//! plain port fail with exit 1 and a clear message; the certificate survives a restart.

use std::time::Duration;

use super::{framewire, stderr, stdout, Hub};

fn tls_hub(data: &std::path::Path) -> Hub {
    let hub = Hub::start_with(
        data,
        "127.0.0.1:0",
        &["--tls-self-signed", "--plain-listen", "127.0.0.1:0"],
    );
    let fp = &hub.fingerprint;
    assert_eq!(fp.len(), 95, "32 colon-separated hex pairs: {fp:?}");
    assert!(
        fp.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())),
        "{fp}"
    );
    hub
}

#[test]
fn serve_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let photo = dir.path().join("photo.jpg");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(&photo, &bytes).unwrap();

    let mut hub = tls_hub(&data);
    let plain = hub.plain.clone();
    assert!(plain.starts_with("127.0.0.1:"), "{plain:?}");
    let fp = hub.fingerprint.clone();
    let key_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(data.join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode, 0o600);

    // send, ls, get with the pinned fingerprint
    let out = hub
        .cmd()
        .args(["--tls-fingerprint", &fp, "send", "--to", "cam"])
        .arg(&photo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("stored 1 file"),
        "{}",
        stdout(&out)
    );
    let out = hub
        .cmd()
        .args(["--tls-fingerprint", &fp, "ls"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "cam/photo.jpg\n");
    let back = dir.path().join("back.jpg");
    let out = hub
        .cmd()
        .args(["--tls-fingerprint", &fp, "get", "cam/photo.jpg", "-o"])
        .arg(&back)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&back).unwrap(), bytes);

    // the environment variable, in plain lowercase hex
    let plain_hex = fp.replace(':', "").to_lowercase();
    let out = hub
        .cmd()
        .env("FRAMEWIRE_TLS_FINGERPRINT", &plain_hex)
        .args(["ping", "--count", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // the certificate file as CA
    let out = hub
        .cmd()
        .args(["--tls-ca"])
        .arg(data.join("tls/cert.pem"))
        .args(["ls"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // a wrong fingerprint: exit 1, naming both
    let mut wrong = fp.clone();
    wrong.replace_range(0..2, if fp.starts_with("00") { "11" } else { "00" });
    let out = hub
        .cmd()
        .args(["--tls-fingerprint", &wrong, "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("presented a certificate with SHA-256 {fp}"))
            && err.contains(&format!("the expected fingerprint is {wrong}"))
            && err.contains("refusing to connect"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    // not a fingerprint at all: a usage error
    let out = hub
        .cmd()
        .args(["--tls-fingerprint", "AB:CD", "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("64 hex digits"), "{}", stderr(&out));

    // a plaintext client on the TLS port, a TLS client on the plain port
    let out = hub.cmd().args(["ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("this port requires TLS: connect with --tls"),
        "{}",
        stderr(&out)
    );
    let out = framewire()
        .args(["--server", &plain, "--tls-fingerprint", &fp, "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "the hub at {plain} did not answer TLS (is it a plain port? drop --tls)"
        )),
        "{}",
        stderr(&out)
    );
    // the plain port serves plain clients (microcontrollers)
    let out = framewire()
        .args(["--server", &plain, "ls"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "cam/photo.jpg\n");

    // a restart keeps the certificate
    assert_eq!(hub.terminate(Duration::from_secs(5)).code(), Some(0));
    drop(hub);
    let hub = tls_hub(&data);
    assert_eq!(hub.fingerprint, fp, "same certificate after a restart");
    let out = hub
        .cmd()
        .args(["--tls-fingerprint", &fp, "ls"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn tls_flags_are_checked() {
    for args in [
        &["serve", "--tls-cert", "c.pem"][..],
        &["serve", "--plain-listen", "127.0.0.1:0"][..],
        &[
            "serve",
            "--tls-self-signed",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ][..],
    ] {
        let out = framewire().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let dir = tempfile::tempdir().unwrap();
    // `--tls` is a client flag; the hub says what it wants instead.
    let out = framewire()
        .args(["serve", "--tls", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--tls-self-signed"),
        "{}",
        stderr(&out)
    );
    // unreadable certificate files: exit 1, naming the file
    let out = framewire()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "off",
            "--data",
        ])
        .arg(dir.path())
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read /nonexistent/cert.pem"),
        "{}",
        stderr(&out)
    );
}
