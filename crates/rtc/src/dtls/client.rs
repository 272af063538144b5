//! The client role (RFC 6347 §4.2.1 flights 1, 3 and 5; RFC 5246 §7.3).

use std::time::Instant;

use super::cert::PeerKey;
use super::client13;
use super::conn::{Conn, Phase, Upgrade};
use super::crypto::{self, ECDSA_P256_SHA256, GROUPS, KeyShare, SCHEMES};
use super::error::{DtlsError, alert};
use super::ext::Extensions;
use super::flight::FlightItem;
use super::handshake::{ECDHE_ECDSA_AES128_GCM, ECDHE_RSA_AES128_GCM, Secrets, unexpected};
use super::kx::{self, ClientShare};
use super::msgs::{ClientHello, DTLS1_2, Handshake, ServerHello, ServerKeyExchange};
use super::msgs13::{DOWNGRADE_TLS12, DTLS1_3, HRR_RANDOM, TLS_AES_128_GCM_SHA256};
use super::reassembly::Message;
use super::record::content_type;
use crate::srtp::SrtpProfile;

/// How many HelloVerifyRequests we answer before giving up on a server.
const MAX_COOKIES: u8 = 4;

/// What the client carries between states.
#[derive(Debug)]
pub struct Hello {
    /// The ClientHello without cookie (its random is client_random).
    ch: ClientHello,
    cookies: u8,
    /// The private halves of the DTLS 1.3 key shares, when 1.3 is offered.
    shares: Vec<(u16, ClientShare)>,
}

/// Client handshake states; each accepts only the message that may come next.
#[derive(Debug)]
pub enum State {
    /// ClientHello sent; HelloVerifyRequest or ServerHello next.
    AwaitServerHello(Box<Hello>),
    /// Waiting for the server's Certificate.
    AwaitCertificate(Box<(Secrets, u16)>),
    /// Waiting for ServerKeyExchange.
    AwaitServerKeyExchange(Box<(Secrets, u16)>),
    /// Waiting for CertificateRequest or ServerHelloDone.
    AwaitServerHelloDone(Box<(Secrets, KeyShare, Vec<u8>, bool)>),
    /// Flight 5 sent; waiting for the server's Finished.
    AwaitFinished(Box<Secrets>),
    /// Handshake complete.
    Done,
}

/// Flight 1: the first ClientHello.
pub fn start(conn: &mut Conn, now: Instant) -> Result<State, DtlsError> {
    let versions = conn.config.versions;
    let profiles = conn.config.srtp_profiles.iter().map(|p| p.id()).collect();
    let mut ch = ClientHello {
        version: DTLS1_2,
        random: conn.rng.bytes(),
        session_id: Vec::new(),
        cookie: Vec::new(),
        cipher_suites: vec![ECDHE_ECDSA_AES128_GCM, ECDHE_RSA_AES128_GCM],
        compression_methods: vec![0],
        extensions: Extensions {
            supported_groups: Some(GROUPS.to_vec()),
            ec_point_formats: Some(vec![0]),
            signature_algorithms: Some(SCHEMES.to_vec()),
            use_srtp: Some(profiles),
            extended_master_secret: true,
            renegotiation_info: Some(Vec::new()),
            ..Default::default()
        },
    };
    let mut shares = Vec::new();
    if versions.speaks_13() {
        // One hello for both versions (RFC 8446 §4.2.1, RFC 9147 §5.3): 1.2 servers ignore
        // the 1.3 parts. Shares for the hybrid and x25519, so a server without ML-KEM needs
        // no HelloRetryRequest.
        let e = &mut ch.extensions;
        ch.cipher_suites.insert(0, TLS_AES_128_GCM_SHA256);
        e.supported_versions = Some(if versions.speaks_12() {
            vec![DTLS1_3, DTLS1_2]
        } else {
            vec![DTLS1_3]
        });
        e.supported_groups = Some(kx::GROUPS.to_vec());
        let mut public = Vec::new();
        for group in [kx::X25519MLKEM768, crypto::X25519] {
            let (share, key) = ClientShare::generate(group, &mut conn.rng)?;
            shares.push((group, share));
            public.push((group, key));
        }
        e.key_shares = Some(public);
    }
    let hello = Box::new(Hello {
        ch,
        cookies: 0,
        shares,
    });
    send_client_hello(conn, now, &hello, Vec::new());
    Ok(State::AwaitServerHello(hello))
}

fn send_client_hello(conn: &mut Conn, now: Instant, hello: &Hello, cookie: Vec<u8>) {
    // RFC 6347 §4.2.1: the initial ClientHello and HelloVerifyRequest are not hashed.
    conn.transcript.clear();
    let mut ch = hello.ch.clone();
    ch.cookie = cookie;
    let item = conn.message(0, &Handshake::ClientHello(ch));
    conn.send_flight(now, vec![item], true);
}

/// The server chose DTLS 1.3 (a ServerHello or HelloRetryRequest saying so): hands our offer
/// to [`super::client13`].
fn upgrade(conn: &mut Conn, hello: Box<Hello>, m: Message) -> Result<State, DtlsError> {
    if hello.shares.is_empty() {
        return Err(DtlsError::ProtocolVersion(DTLS1_3));
    }
    let Hello { mut ch, shares, .. } = *hello;
    ch.cookie = Vec::new();
    let mut body = Vec::new();
    Handshake::ClientHello(ch.clone()).encode(&mut body);
    let offer = client13::Offer {
        ch,
        body,
        seq: conn.next_send_seq.wrapping_sub(1),
        shares,
        retried: false,
    };
    conn.upgrade = Some(Box::new(Upgrade::Client(offer, m)));
    Ok(State::Done)
}

/// Handles one reassembled handshake message.
pub fn handle(
    state: &mut State,
    conn: &mut Conn,
    now: Instant,
    m: Message,
) -> Result<(), DtlsError> {
    let msg = Handshake::parse(m.msg_type, &m.body)?;
    *state = match (std::mem::replace(state, State::Done), msg) {
        (State::AwaitServerHello(mut hello), Handshake::HelloVerifyRequest { cookie, .. }) => {
            hello.cookies += 1;
            if hello.cookies > MAX_COOKIES {
                return Err(DtlsError::UnexpectedMessage {
                    expected: "ServerHello",
                    got: "yet another HelloVerifyRequest",
                });
            }
            conn.peer_flight_end = Some(m.seq);
            send_client_hello(conn, now, &hello, cookie);
            State::AwaitServerHello(hello)
        }
        (State::AwaitServerHello(hello), Handshake::ServerHello(sh))
            if sh.random == HRR_RANDOM || sh.extensions.selected_version.is_some() =>
        {
            if sh.extensions.selected_version != Some(DTLS1_3) {
                return Err(DtlsError::IllegalParameter("supported_versions"));
            }
            upgrade(conn, hello, m)?
        }
        (State::AwaitServerHello(hello), Handshake::ServerHello(sh)) => {
            if !conn.config.versions.speaks_12() {
                return Err(DtlsError::ProtocolVersion(sh.version));
            }
            // RFC 8446 §4.1.3: a 1.3-capable server that answers a 1.3 offer with 1.2 marks
            // its random; seeing the mark means someone removed 1.3 from our hello.
            if !hello.shares.is_empty() && sh.random[24..] == DOWNGRADE_TLS12 {
                return Err(DtlsError::IllegalParameter(
                    "downgrade from DTLS 1.3 detected",
                ));
            }
            let profile = check_server_hello(&sh, &conn.config.srtp_profiles)?;
            conn.add_received(m.msg_type, m.seq, &m.body);
            let secrets = Secrets {
                client_random: hello.ch.random,
                server_random: sh.random,
                profile,
                expected: conn.expected_fingerprint,
                peer: None,
                master: [0; 48],
            };
            State::AwaitCertificate(Box::new((secrets, sh.cipher_suite)))
        }
        (State::AwaitCertificate(mut b), Handshake::Certificate(certs)) => {
            b.0.check_certificate(&certs)?;
            // The suite fixes the key type the server must authenticate with.
            let rsa = matches!(b.0.peer_key()?, PeerKey::Rsa(_));
            if rsa != (b.1 == ECDHE_RSA_AES128_GCM) {
                return Err(DtlsError::UnsupportedCertificate(
                    "key type does not match suite",
                ));
            }
            conn.add_received(m.msg_type, m.seq, &m.body);
            State::AwaitServerKeyExchange(b)
        }
        (State::AwaitServerKeyExchange(b), Handshake::ServerKeyExchange(ske)) => {
            let (secrets, _) = *b;
            if !GROUPS.contains(&ske.group) {
                return Err(DtlsError::IllegalParameter("ECDHE group we did not offer"));
            }
            let params = ServerKeyExchange::params(ske.group, &ske.public);
            let signed = [&secrets.client_random[..], &secrets.server_random, &params].concat();
            let key = secrets.peer_key()?;
            crypto::verify(
                key,
                ske.scheme,
                &signed,
                &ske.signature,
                "ServerKeyExchange",
            )?;
            conn.add_received(m.msg_type, m.seq, &m.body);
            conn.group = Some(ske.group);
            let share = KeyShare::generate(ske.group, &mut conn.rng)?;
            let pre_master = share.agree(&ske.public)?;
            State::AwaitServerHelloDone(Box::new((secrets, share, pre_master, false)))
        }
        (State::AwaitServerHelloDone(mut b), Handshake::CertificateRequest(cr)) if !b.3 => {
            if !cr.certificate_types.contains(&64)
                || !cr.signature_algorithms.contains(&ECDSA_P256_SHA256)
            {
                return Err(DtlsError::NoCommon("client certificate type (ECDSA P-256)"));
            }
            conn.add_received(m.msg_type, m.seq, &m.body);
            b.3 = true;
            State::AwaitServerHelloDone(b)
        }
        (State::AwaitServerHelloDone(b), Handshake::ServerHelloDone) => {
            conn.add_received(m.msg_type, m.seq, &m.body);
            conn.peer_flight_end = Some(m.seq);
            let (mut secrets, share, pre_master, cert_requested) = *b;
            send_final_flight(conn, now, &mut secrets, &share, &pre_master, cert_requested)?;
            State::AwaitFinished(Box::new(secrets))
        }
        (State::AwaitFinished(s), Handshake::Finished(verify_data)) => {
            s.check_finished(conn, m.epoch, &verify_data)?;
            conn.add_received(m.msg_type, m.seq, &m.body);
            conn.peer_flight_end = Some(m.seq);
            s.connected(conn);
            State::Done
        }
        (State::Done, Handshake::HelloRequest) if conn.phase == Phase::Connected => {
            conn.send_record(content_type::ALERT, &[1, alert::NO_RENEGOTIATION])?;
            State::Done
        }
        (s, msg) => return Err(unexpected(expected_name(&s), &msg)),
    };
    Ok(())
}

fn expected_name(s: &State) -> &'static str {
    match s {
        State::AwaitServerHello(_) => "ServerHello",
        State::AwaitCertificate(_) => "Certificate",
        State::AwaitServerKeyExchange(_) => "ServerKeyExchange",
        State::AwaitServerHelloDone(_) => "ServerHelloDone",
        State::AwaitFinished(_) => "Finished",
        State::Done => "nothing",
    }
}

/// Checks the server's choices against our offer; returns the SRTP profile.
fn check_server_hello(sh: &ServerHello, ours: &[SrtpProfile]) -> Result<SrtpProfile, DtlsError> {
    let e = &sh.extensions;
    if sh.version != DTLS1_2 {
        return Err(DtlsError::ProtocolVersion(sh.version));
    }
    if ![ECDHE_ECDSA_AES128_GCM, ECDHE_RSA_AES128_GCM].contains(&sh.cipher_suite) {
        return Err(DtlsError::IllegalParameter("cipher suite we did not offer"));
    }
    if sh.compression_method != 0 {
        return Err(DtlsError::IllegalParameter("compression method"));
    }
    if !e.extended_master_secret {
        return Err(DtlsError::NoExtendedMasterSecret);
    }
    if e.renegotiation_info
        .as_ref()
        .is_some_and(|ri| !ri.is_empty())
    {
        return Err(DtlsError::Renegotiation);
    }
    match e.use_srtp.as_deref() {
        None | Some([]) => Err(DtlsError::NoCommon("SRTP protection profile")),
        Some([id]) => ours
            .iter()
            .copied()
            .find(|p| p.id() == *id)
            .ok_or(DtlsError::IllegalParameter("SRTP profile we did not offer")),
        Some(_) => Err(DtlsError::IllegalParameter("more than one SRTP profile")),
    }
}

/// Flight 5: Certificate, ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished.
fn send_final_flight(
    conn: &mut Conn,
    now: Instant,
    secrets: &mut Secrets,
    share: &KeyShare,
    pre_master: &[u8],
    cert_requested: bool,
) -> Result<(), DtlsError> {
    let mut items = Vec::new();
    if cert_requested {
        let cert = Handshake::Certificate(vec![conn.config.certificate.der().to_vec()]);
        items.push(conn.message(0, &cert));
    }
    items.push(conn.message(0, &Handshake::ClientKeyExchange(share.public.clone())));
    secrets.derive(conn, pre_master)?;
    if cert_requested {
        let signature = conn.config.certificate.sign(&conn.transcript)?;
        let cv = Handshake::CertificateVerify {
            scheme: ECDSA_P256_SHA256,
            signature,
        };
        items.push(conn.message(0, &cv));
    }
    items.push(FlightItem::ChangeCipherSpec);
    let finished = Handshake::Finished(secrets.verify_data(conn, true));
    items.push(conn.message(1, &finished));
    conn.send_flight(now, items, true);
    Ok(())
}
