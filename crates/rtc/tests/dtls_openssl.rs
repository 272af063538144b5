//! Our DTLS against the OpenSSL command line over loopback UDP: our server against
//! `openssl s_client`, our client against `openssl s_server`, with ECDSA P-256 and RSA-2048
//! certificates on the OpenSSL side. The keying material OpenSSL exports must equal ours.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dtls_common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dtls_common::{config, first_handshake_type};
use rtc::dtls::{Dtls, DtlsError, DtlsEvent, Fingerprint};
use rtc::rand::Rng;
use rtc::srtp::SrtpProfile;

const OPENSSL: &str = "/usr/bin/openssl";
const BOTH: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80";

/// Kills and reaps the child on every exit path.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        assert!(
            Path::new(OPENSSL).exists(),
            "{OPENSSL} missing: apt-get install openssl"
        );
        let mut child = Command::new(OPENSSL)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let stdin = child.stdin.take();
        Proc {
            child,
            stdin,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn write(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

/// A temp dir with a certificate and key made by `openssl req`.
struct Peer {
    dir: PathBuf,
    fingerprint: Fingerprint,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Peer {
    fn new(kind: &str) -> Peer {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("leanrtc-dtls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = match kind {
            "ec" => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            _ => vec!["-newkey", "rsa:2048"],
        };
        let status = Command::new(OPENSSL)
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=openssl-peer",
            ])
            .args(key)
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl req");
        assert!(status.success());
        let der = Command::new(OPENSSL)
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.join("cert.pem"))
            .output()
            .unwrap()
            .stdout;
        let fingerprint = Fingerprint::of(&der);
        // OpenSSL's own rendering parses to the same fingerprint.
        let shown = Command::new(OPENSSL)
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(dir.join("cert.pem"))
            .output()
            .unwrap()
            .stdout;
        let shown = String::from_utf8(shown).unwrap();
        let hex = shown.trim().rsplit('=').next().unwrap();
        assert_eq!(hex.parse::<Fingerprint>().unwrap(), fingerprint);
        assert_eq!(fingerprint.to_string(), hex);
        Peer { dir, fingerprint }
    }

    fn cert(&self) -> String {
        self.dir.join("cert.pem").display().to_string()
    }

    fn key(&self) -> String {
        self.dir.join("key.pem").display().to_string()
    }
}

/// Pumps datagrams between `sock` and our `dtls` until `done` says so or 20 s pass.
fn drive(
    sock: &UdpSocket,
    peer: &mut Option<SocketAddr>,
    dtls: &mut Dtls,
    validated: bool,
    events: &mut Vec<DtlsEvent>,
    proc_: &mut Proc,
    mut done: impl FnMut(&mut Dtls, &[DtlsEvent], &str, &mut Proc) -> bool,
) -> Vec<u8> {
    // The handshake type of each plaintext handshake datagram we send, first record.
    let mut sent = Vec::new();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(d) = dtls.poll_datagram() {
            sent.extend(first_handshake_type(&d));
            if let Some(p) = peer {
                sock.send_to(&d, *p).unwrap();
            }
        }
        while let Some(e) = dtls.poll_event() {
            events.push(e);
        }
        if done(dtls, events, &proc_.output(), proc_) {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; our events: {events:?}\nopenssl said:\n{}",
            proc_.output()
        );
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            *peer = Some(from);
            if validated {
                dtls.handle_validated_datagram(Instant::now(), &buf[..n]);
            } else {
                dtls.handle_datagram(Instant::now(), &buf[..n]);
            }
        }
        dtls.handle_timeout(Instant::now());
    }
}

fn keying_material(output: &str) -> Option<Vec<u8>> {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with("Keying material:"))?;
    let hex = line.split(':').nth(1)?.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn connected(events: &[DtlsEvent]) -> Option<(SrtpProfile, Vec<u8>, Fingerprint)> {
    events.iter().find_map(|e| match e {
        DtlsEvent::Connected {
            srtp_profile,
            keying_material,
            peer_certificate_fingerprint,
        } => Some((
            *srtp_profile,
            keying_material.clone(),
            *peer_certificate_fingerprint,
        )),
        _ => None,
    })
}

/// Our server against `openssl s_client`; returns the profile we chose.
fn server_vs_s_client(kind: &str, profiles: &str, extra: &[&str]) -> SrtpProfile {
    server_vs_s_client_from(kind, profiles, extra, false)
}

/// `validated`: our server skips the cookie exchange, as it does behind ICE.
fn server_vs_s_client_from(
    kind: &str,
    profiles: &str,
    extra: &[&str],
    validated: bool,
) -> SrtpProfile {
    let peer = Peer::new(kind);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let cfg = config(7);
    let (cert, key) = (peer.cert(), peer.key());
    let mut args = vec![
        "s_client",
        "-dtls1_2",
        "-connect",
        &addr,
        "-use_srtp",
        profiles,
    ];
    args.extend([
        "-cert",
        &cert,
        "-key",
        &key,
        "-keymatexport",
        "EXTRACTOR-dtls_srtp",
    ]);
    args.extend(["-keymatexportlen", "60"]);
    args.extend(extra);
    let mut proc_ = Proc::spawn(&args);
    let mut dtls = Dtls::new_server(cfg, peer.fingerprint, addr.as_bytes(), Rng::system());
    let (mut events, mut from) = (Vec::new(), None);
    // Handshake, then the keying material OpenSSL prints.
    let sent = drive(
        &sock,
        &mut from,
        &mut dtls,
        validated,
        &mut events,
        &mut proc_,
        |_, ev, out, _| connected(ev).is_some() && keying_material(out).is_some(),
    );
    // Without the cookie exchange our first answer is the ServerHello flight (RFC 6347
    // §4.2.1), which OpenSSL's client takes as readily as the HelloVerifyRequest.
    assert_eq!(
        sent.first(),
        Some(&if validated { 2 } else { 3 }),
        "{sent:?}"
    );
    let (profile, ours, fp) = connected(&events).unwrap();
    assert_eq!(fp, peer.fingerprint);
    let theirs = keying_material(&proc_.output()).unwrap();
    assert_eq!(theirs.len(), 60);
    // PRF output is a prefix-stable stream: our 56 bytes for GCM are their first 56.
    assert_eq!(ours[..], theirs[..ours.len()], "{}", proc_.output());
    let name = match profile {
        SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
        SrtpProfile::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
    };
    assert!(
        proc_.output().contains(&format!("profile={name}")),
        "{}",
        proc_.output()
    );
    // Application data both ways, then s_client's close_notify (on end of its input).
    dtls.send_application_data(b"from leanrtc\n").unwrap();
    proc_.write("from openssl\n");
    drive(
        &sock,
        &mut from,
        &mut dtls,
        validated,
        &mut events,
        &mut proc_,
        |_, ev, out, _| {
            out.contains("from leanrtc")
                && ev
                    .iter()
                    .any(|e| matches!(e, DtlsEvent::ApplicationData(d) if d == b"from openssl\n"))
        },
    );
    proc_.stdin = None;
    drive(
        &sock,
        &mut from,
        &mut dtls,
        validated,
        &mut events,
        &mut proc_,
        |_, ev, _, _| ev.contains(&DtlsEvent::Closed),
    );
    profile
}

#[test]
fn server_against_s_client_ecdsa() {
    assert_eq!(
        server_vs_s_client("ec", BOTH, &[]),
        SrtpProfile::AeadAes128Gcm
    );
}

/// Behind ICE (address validated) our server skips HelloVerifyRequest; OpenSSL's client
/// handshakes all the same.
#[test]
fn server_without_cookie_against_s_client() {
    assert_eq!(
        server_vs_s_client_from("ec", BOTH, &[], true),
        SrtpProfile::AeadAes128Gcm
    );
}

#[test]
fn server_against_s_client_falls_back_to_aes_cm() {
    let profile = server_vs_s_client("ec", "SRTP_AES128_CM_SHA1_80", &[]);
    assert_eq!(profile, SrtpProfile::Aes128CmSha1_80);
}

#[test]
fn server_against_s_client_rsa_pkcs1() {
    let p = server_vs_s_client("rsa", BOTH, &["-client_sigalgs", "rsa_pkcs1_sha256"]);
    assert_eq!(p, SrtpProfile::AeadAes128Gcm);
}

#[test]
fn server_against_s_client_rsa_pss() {
    let p = server_vs_s_client("rsa", BOTH, &["-client_sigalgs", "rsa_pss_rsae_sha256"]);
    assert_eq!(p, SrtpProfile::AeadAes128Gcm);
}

/// Our client against `openssl s_server` (which does the cookie exchange).
fn client_vs_s_server(kind: &str, extra: &[&str]) {
    let peer = Peer::new(kind);
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (cert, key) = (peer.cert(), peer.key());
    let mut args = vec!["s_server", "-dtls1_2", "-port", &port, "-use_srtp", BOTH];
    args.extend([
        "-cert",
        &cert,
        "-key",
        &key,
        "-keymatexport",
        "EXTRACTOR-dtls_srtp",
    ]);
    args.extend(["-keymatexportlen", "60", "-verify", "1", "-naccept", "1"]);
    args.extend(extra);
    let mut proc_ = Proc::spawn(&args);
    // Wait for s_server to listen.
    let start = Instant::now();
    while !proc_.output().contains("ACCEPT") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            proc_.output()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut to = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let cfg = config(9);
    let mut dtls = Dtls::new_client(cfg, peer.fingerprint, Rng::system(), Instant::now());
    let mut events = Vec::new();
    drive(
        &sock,
        &mut to,
        &mut dtls,
        false,
        &mut events,
        &mut proc_,
        |_, ev, out, _| connected(ev).is_some() && keying_material(out).is_some(),
    );
    let (profile, ours, fp) = connected(&events).unwrap();
    assert_eq!(fp, peer.fingerprint);
    assert_eq!(profile, SrtpProfile::AeadAes128Gcm);
    let theirs = keying_material(&proc_.output()).unwrap();
    assert_eq!(ours[..], theirs[..ours.len()], "{}", proc_.output());
    // Data both ways; then our close_notify, which s_server reports as DONE.
    dtls.send_application_data(b"from leanrtc\n").unwrap();
    proc_.write("from openssl\n");
    drive(
        &sock,
        &mut to,
        &mut dtls,
        false,
        &mut events,
        &mut proc_,
        |_, ev, out, _| {
            out.contains("from leanrtc")
                && ev
                    .iter()
                    .any(|e| matches!(e, DtlsEvent::ApplicationData(d) if d == b"from openssl\n"))
        },
    );
    dtls.close();
    drive(
        &sock,
        &mut to,
        &mut dtls,
        false,
        &mut events,
        &mut proc_,
        |_, _, out, _| out.contains("DONE"),
    );
    assert!(events.contains(&DtlsEvent::Closed));
}

#[test]
fn client_against_s_server_ecdsa() {
    client_vs_s_server("ec", &[]);
}

#[test]
fn client_against_s_server_rsa_pkcs1() {
    client_vs_s_server(
        "rsa",
        &[
            "-sigalgs",
            "rsa_pkcs1_sha256",
            "-client_sigalgs",
            "ECDSA+SHA256",
        ],
    );
}

#[test]
fn client_against_s_server_rsa_pss() {
    client_vs_s_server(
        "rsa",
        &[
            "-sigalgs",
            "rsa_pss_rsae_sha256",
            "-client_sigalgs",
            "ECDSA+SHA256",
        ],
    );
}

#[test]
fn wrong_fingerprint_names_both() {
    let peer = Peer::new("ec");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let (cert, key) = (peer.cert(), peer.key());
    let mut proc_ = Proc::spawn(&[
        "s_client",
        "-dtls1_2",
        "-connect",
        &addr,
        "-use_srtp",
        BOTH,
        "-cert",
        &cert,
        "-key",
        &key,
    ]);
    let expected = Fingerprint([0xab; 32]);
    let mut dtls = Dtls::new_server(config(3), expected, b"x", Rng::system());
    let (mut events, mut from) = (Vec::new(), None);
    drive(
        &sock,
        &mut from,
        &mut dtls,
        false,
        &mut events,
        &mut proc_,
        |_, ev, out, _| !ev.is_empty() && out.contains("alert"),
    );
    let DtlsEvent::Failed(err) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        err,
        &DtlsError::FingerprintMismatch {
            expected,
            actual: peer.fingerprint
        }
    );
    let text = err.to_string();
    assert!(text.contains(&expected.to_string()) && text.contains(&peer.fingerprint.to_string()));
    assert!(
        proc_.output().contains("bad certificate"),
        "{}",
        proc_.output()
    );
}

#[test]
fn our_certificate_reads_in_openssl() {
    let mut rng = Rng::seeded(5);
    let cert = rtc::dtls::DtlsCertificate::generate(&mut rng).unwrap();
    let peer = Peer::new("ec"); // just for its temp dir
    let path = peer.dir.join("ours.der");
    std::fs::write(&path, cert.der()).unwrap();
    let out = Command::new(OPENSSL)
        .args([
            "x509",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-fingerprint",
            "-sha256",
            "-in",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Version: 3",
        "ecdsa-with-SHA256",
        "CN = leanrtc",
        "prime256v1",
        "9999",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    assert!(
        text.contains(&format!("Fingerprint={}", cert.fingerprint())),
        "{text}"
    );
    // The self-signature verifies.
    let pem = peer.dir.join("ours.pem");
    let status = Command::new(OPENSSL)
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&path)
        .arg("-out")
        .arg(&pem)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(OPENSSL)
        .args(["verify", "-CAfile"])
        .arg(&pem)
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": OK"),
        "{out:?}"
    );
    // And our DER walker finds the key OpenSSL shows.
    assert!(
        matches!(rtc::dtls::peer_key(cert.der()), Ok(rtc::dtls::PeerKey::EcdsaP256(k)) if k.len() == 65)
    );
}
