//! TLS end to end, with a hub in-process on 127.0.0.1: a pinned client uploads, downloads and
//! pings; a wrong pin is refused; a CA file verifies; plaintext and TLS clients on the wrong ports
//! are told why; a plain and a TLS listener on one hub share its limits; and the dashboard's API,
//! latest.jpg and MJPEG work over HTTPS. Every wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use framewire_client::{
    plan_upload, Client, ClientError, ConnectOptions, ErrorCode, PublishOptions, Publisher,
    SendOptions, TlsOptions,
};
use framewire_server::tls::TlsIdentity;
use framewire_server::Config;
use framewire_testkit::data::bytes;
use framewire_testkit::TestHub;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(20);

/// The kit's hub with TLS on its native port, and a plain port beside it with `plain`.
async fn start_hub(data: &Path, plain: bool, tweak: impl FnOnce(&mut Config)) -> TestHub {
    let mut hub = TestHub::builder()
        .data(data)
        .tls()
        .http()
        .config(|c| c.handshake_timeout = Duration::from_secs(2))
        .config(tweak);
    if plain {
        hub = hub.plain_listener();
    }
    hub.start().await
}

/// Client options pinning the hub's certificate.
fn pinned(hub: &TestHub, name: &str) -> ConnectOptions {
    ConnectOptions {
        name: name.into(),
        connect_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(10),
        tls: Some(TlsOptions::pinned(hub.tls().fingerprint())),
        ..ConnectOptions::default()
    }
}

fn plain_opts(name: &str) -> ConnectOptions {
    ConnectOptions {
        name: name.into(),
        connect_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_client_uploads_downloads_and_pings() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("data"), false, |_| {}).await;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let big = bytes(7, 5 << 20);
    std::fs::write(src.join("big.bin"), &big).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("small-{i}.txt")), format!("file {i}")).unwrap();
    }

    let mut c = tokio::time::timeout(
        T,
        Client::connect(&hub.addr.to_string(), pinned(&hub, "tls")),
    )
    .await
    .unwrap()
    .unwrap();
    let p = c.ping().await.unwrap();
    assert!(p.rtt < Duration::from_secs(1));
    let plan = plan_upload(&[&src], Some("up")).unwrap();
    let report = tokio::time::timeout(T, c.send_plan(plan, SendOptions::default(), |_| {}))
        .await
        .unwrap()
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.stored.len(), 21);
    let list = c.list("up/").await.unwrap();
    assert_eq!(list.len(), 21);

    let out = dir.path().join("back.bin");
    let got = tokio::time::timeout(T, c.get("up/src/big.bin", &out))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.size, big.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), big, "byte-identical over TLS");
    assert_eq!(c.message("hello over TLS").await.unwrap(), "hello over TLS");
    c.close().await.unwrap();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_fingerprint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("data"), false, |_| {}).await;
    let mut wrong = hub.tls().fingerprint();
    wrong[0] ^= 0xff;
    let opts = ConnectOptions {
        tls: Some(TlsOptions::pinned(wrong)),
        ..pinned(&hub, "impostor-check")
    };
    let e = tokio::time::timeout(T, Client::connect(&hub.addr.to_string(), opts))
        .await
        .unwrap()
        .unwrap_err();
    let text = e.to_string();
    match &e {
        ClientError::FingerprintMismatch { expected, got, .. } => {
            assert_eq!(got, &hub.tls().fingerprint_hex());
            assert_eq!(expected, &framewire_client::format_fingerprint(&wrong));
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
    assert!(
        text.contains(&hub.tls().fingerprint_hex()) && text.contains("refusing to connect"),
        "{text}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_verifies_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hub = start_hub(&data, false, |_| {}).await;
    let ca = data.join("tls/cert.pem");
    let with = |tls: TlsOptions| ConnectOptions {
        tls: Some(tls),
        ..pinned(&hub, "ca")
    };

    // The self-signed certificate as its own CA, checked for the address's IP.
    let mut c = Client::connect(&hub.addr.to_string(), with(TlsOptions::with_ca(&ca)))
        .await
        .unwrap();
    c.ping().await.unwrap();
    // ... or for a name it has.
    let named = TlsOptions {
        server_name: Some("localhost".into()),
        ..TlsOptions::with_ca(&ca)
    };
    Client::connect(&hub.addr.to_string(), with(named))
        .await
        .unwrap();
    // Pin and CA together: both must pass.
    let both = TlsOptions {
        fingerprint: Some(hub.tls().fingerprint()),
        ..TlsOptions::with_ca(&ca)
    };
    Client::connect(&hub.addr.to_string(), with(both))
        .await
        .unwrap();

    // A name the certificate does not have.
    let other = TlsOptions {
        server_name: Some("elsewhere.example".into()),
        ..TlsOptions::with_ca(&ca)
    };
    let e = Client::connect(&hub.addr.to_string(), with(other))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("not valid for"), "{e}");

    // A CA that did not sign it.
    let stranger = tempfile::tempdir().unwrap();
    TlsIdentity::self_signed(stranger.path()).unwrap();
    let e = Client::connect(
        &hub.addr.to_string(),
        with(TlsOptions::with_ca(stranger.path().join("tls/cert.pem"))),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not signed by a CA in"), "{e}");

    // An unreadable CA file is named.
    let e = Client::connect(
        &hub.addr.to_string(),
        with(TlsOptions::with_ca(dir.path().join("missing.pem"))),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ClientError::TlsSetup(_)), "{e:?}");
    assert!(e.to_string().contains("missing.pem"), "{e}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_the_wrong_port_are_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("data"), true, |_| {}).await;
    let plain = hub.plain_addr.unwrap().to_string();

    // A plaintext client on the TLS port: the hub's reason arrives as a hub error.
    let e = tokio::time::timeout(
        T,
        Client::connect(&hub.addr.to_string(), plain_opts("plain")),
    )
    .await
    .unwrap()
    .unwrap_err();
    match &e {
        ClientError::Hub { code, message } => {
            assert_eq!(*code, ErrorCode::UnsupportedVersion);
            assert!(message.contains("this port requires TLS"), "{message}");
        }
        other => panic!("expected the hub's error, got {other:?}"),
    }

    // A TLS client on the plain port.
    let e = tokio::time::timeout(T, Client::connect(&plain, pinned(&hub, "tls")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, ClientError::NotTls { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("the hub at {plain} did not answer TLS (is it a plain port? drop --tls)")
    );

    // What the hub sends, seen raw: the plain port answers a ClientHello with a plaintext Error.
    let answer = raw_exchange(&plain, &client_hello().await).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains("this port is plain TCP (no TLS): connect without --tls"),
        "{text:?}"
    );
    // A browser on the native TLS port gets the HTTP explanation.
    let answer = raw_exchange(
        &hub.addr.to_string(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");

    // A silent client on the TLS port is dropped after the handshake timeout (2 s here).
    let mut silent = TcpStream::connect(&hub.addr.to_string()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(6), silent.read(&mut buf))
        .await
        .expect("closed within the handshake timeout");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");

    // The hub still serves both kinds.
    Client::connect(&hub.addr.to_string(), pinned(&hub, "ok"))
        .await
        .unwrap();
    Client::connect(&plain, plain_opts("ok")).await.unwrap();
    hub.stop().await;
}

/// The first bytes a TLS client sends (a ClientHello), captured from a real handshake attempt.
async fn client_hello() -> Vec<u8> {
    let catcher = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = catcher.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let s = TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(pinned_rustls_config(None)));
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            connector.connect(ServerName::try_from("localhost").unwrap(), s),
        )
        .await;
    });
    let (mut s, _) = catcher.accept().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    drop(s);
    client.abort();
    assert_eq!(buf[0], 0x16, "a TLS handshake record");
    buf
}

/// Sends `bytes` and reads everything until the peer closes.
async fn raw_exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .expect("the hub answers and closes");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_tls_listeners_serve_at_once_and_share_limits() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("data"), true, |c| {
        c.max_connections_per_ip = 2;
    })
    .await;
    let plain = hub.plain_addr.unwrap().to_string();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("tls.bin"), bytes(1, 300_000)).unwrap();
    std::fs::write(src.join("plain.bin"), bytes(2, 300_000)).unwrap();

    let mut a = Client::connect(&hub.addr.to_string(), pinned(&hub, "a"))
        .await
        .unwrap();
    let mut b = Client::connect(&plain, plain_opts("b")).await.unwrap();
    // Both upload at the same time.
    let plan_a = plan_upload(&[src.join("tls.bin")], None).unwrap();
    let plan_b = plan_upload(&[src.join("plain.bin")], None).unwrap();
    let (ra, rb) = tokio::time::timeout(
        T,
        futures_util::future::join(
            a.send_plan(plan_a, SendOptions::default(), |_| {}),
            b.send_plan(plan_b, SendOptions::default(), |_| {}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(ra.unwrap().stored.len(), 1);
    assert_eq!(rb.unwrap().stored.len(), 1);
    // Each sees the other's file.
    let names =
        |l: Vec<framewire_client::ListEntry>| l.into_iter().map(|e| e.path).collect::<Vec<_>>();
    assert_eq!(names(a.list("").await.unwrap()), ["plain.bin", "tls.bin"]);
    assert_eq!(names(b.list("").await.unwrap()), ["plain.bin", "tls.bin"]);
    assert_eq!(hub.handle.clients().list().len(), 2);

    // The per-address limit counts both ports: a third connection is refused on either.
    for (addr, opts) in [
        (&hub.addr.to_string(), pinned(&hub, "c")),
        (&plain, plain_opts("c")),
    ] {
        let e = Client::connect(addr, opts).await.unwrap_err();
        match &e {
            ClientError::Hub { code, message } => {
                assert_eq!(*code, ErrorCode::Busy, "{message}");
                assert!(message.contains("already has 2 connections"), "{message}");
            }
            other => panic!("expected Busy from {addr}, got {other:?}"),
        }
    }
    drop(a);
    drop(b);
    hub.stop().await;
}

/// A rustls client configuration trusting `ca` (or anything, for capturing a ClientHello).
fn pinned_rustls_config(ca: Option<&CertificateDer<'static>>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(c) = ca {
        roots.add(c.clone()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A dashboard over HTTPS, and a TLS client for it.
struct Https {
    addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
}

impl Https {
    async fn connect(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let s = TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        tokio::time::timeout(T, self.connector.connect(name, s))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake")
    }

    /// One request; the whole response (HTTP/1.0, so the server closes after it).
    async fn request(&self, method: &str, path: &str, headers: &str, body: &str) -> String {
        let mut s = self.connect().await;
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        // A close without close_notify is fine here: the whole response has arrived.
        let _ = tokio::time::timeout(T, s.read_to_end(&mut out))
            .await
            .expect("response in time");
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&dir.path().join("data"), false, |c| {
        c.tokens = framewire_server::auth::Tokens::from_flags(&["s3cret".into()]);
    })
    .await;
    let addr = hub.http_addr.unwrap();
    let https = Https {
        addr,
        connector: tokio_rustls::TlsConnector::from(Arc::new(pinned_rustls_config(Some(
            hub.tls().certificate(),
        )))),
    };
    let auth = "Authorization: Bearer s3cret\r\n";

    // A client that opens a connection and says nothing does not hold up the others.
    let _silent = TcpStream::connect(addr).await.unwrap();

    let res = https.request("GET", "/api/streams", auth, "").await;
    assert!(res.starts_with("HTTP/1.0 200"), "{res}");
    assert!(res.ends_with("[]"), "{res}");

    // A camera publishes over native TLS; its frames are served over HTTPS.
    let token = ConnectOptions {
        token: "s3cret".into(),
        ..pinned(&hub, "camera")
    };
    let publisher = Publisher::connect(&hub.addr.to_string(), token, PublishOptions::new("cam"))
        .await
        .unwrap();
    let mut jpeg = vec![0xff, 0xd8, 0xff];
    jpeg.extend(bytes(9, 3999));
    jpeg.extend([0xff, 0xd9]);
    let jpeg = Bytes::from(jpeg);
    let latest = tokio::time::timeout(T, async {
        loop {
            publisher.publish_jpeg(jpeg.clone(), 16, 16);
            let res = https
                .request("GET", "/streams/cam/latest.jpg", auth, "")
                .await;
            if res.starts_with("HTTP/1.0 200") {
                return res;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("latest.jpg over HTTPS");
    assert!(latest.contains("content-type: image/jpeg"), "{latest}");

    // MJPEG: read until a whole frame of ours has arrived.
    let mut s = https.connect().await;
    s.write_all(
        format!("GET /streams/cam.mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(T, async {
        let mut buf = vec![0u8; 64 * 1024];
        while !got.windows(jpeg.len()).any(|w| w == &jpeg[..]) {
            publisher.publish_jpeg(jpeg.clone(), 16, 16);
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the MJPEG stream ended early");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an MJPEG frame over HTTPS");
    let head = String::from_utf8_lossy(&got[..200.min(got.len())]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("multipart/x-mixed-replace"), "{head}");
    drop(s);

    // The login cookie is Secure over HTTPS.
    let res = https
        .request(
            "POST",
            "/login",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            "token=s3cret",
        )
        .await;
    let cookie = res
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {res}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.ends_with("; Secure"),
        "{cookie}"
    );

    // Plain HTTP on the HTTPS port is told to use https://.
    let answer = raw_exchange(
        &addr.to_string(),
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400") && text.contains(&format!("https://{addr}/")),
        "{text}"
    );

    publisher.close(Duration::from_secs(1)).await;
    hub.stop().await;
}
