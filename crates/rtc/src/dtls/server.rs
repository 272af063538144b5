//! The server role (RFC 6347 §4.2.1 flights 2, 4 and 6; RFC 5246 §7.3).
//!
//! Before a ClientHello returns our cookie the server keeps no handshake state: it answers
//! with a HelloVerifyRequest computed from the hello itself (RFC 6347 §4.2.1) — unless the
//! caller vouches for the source address ([`super::Dtls::handle_validated_datagram`]).

use std::time::Instant;

use aws_lc_rs::hmac;

use super::codec::put_u16_list;
use super::conn::{Conn, Phase, Upgrade};
use super::crypto::{self, ECDSA_P256_SHA256, GROUPS, KeyShare, SCHEMES};
use super::error::{DtlsError, alert};
use super::ext::Extensions;
use super::handshake::{
    ECDHE_ECDSA_AES128_GCM, EMPTY_RENEGOTIATION_INFO_SCSV, Secrets, pick_srtp_profile, unexpected,
};
use super::hello13;
use super::msgs::{
    CertificateRequest, ClientHello, DTLS1_0, DTLS1_2, Handshake, ServerHello, ServerKeyExchange,
    hs_type,
};
use super::reassembly::Message;
use super::record::{content_type, write_plain};
use crate::srtp::SrtpProfile;

/// Server handshake states; each accepts only the message that may come next.
#[derive(Debug)]
pub enum State {
    /// Waiting for a ClientHello carrying a valid cookie; holds only the peer identity.
    AwaitClientHello { peer_id: Vec<u8> },
    /// Flight 4 sent; the client's Certificate comes first in flight 5.
    AwaitCertificate(Box<(Secrets, KeyShare)>),
    /// Waiting for ClientKeyExchange.
    AwaitClientKeyExchange(Box<(Secrets, KeyShare)>),
    /// Waiting for CertificateVerify.
    AwaitCertificateVerify(Box<Secrets>),
    /// Waiting for the client's Finished.
    AwaitFinished(Box<Secrets>),
    /// Handshake complete.
    Done,
}

/// Handles one reassembled handshake message.
pub fn handle(
    state: &mut State,
    conn: &mut Conn,
    now: Instant,
    m: Message,
) -> Result<(), DtlsError> {
    if matches!(state, State::AwaitClientHello { .. }) && m.msg_type != hs_type::CLIENT_HELLO {
        return Ok(()); // stateless: stray messages before the cookie are not worth an alert
    }
    let msg = Handshake::parse(m.msg_type, &m.body)?;
    *state = match (std::mem::replace(state, State::Done), msg) {
        (State::AwaitClientHello { peer_id }, Handshake::ClientHello(ch))
            if conn.config.versions.speaks_13() && hello13::offers_13(&ch) =>
        {
            // RFC 9147 §5: 1.3 when the client offers it; nothing kept until it goes on.
            if let Some(up) = hello13::answer(conn, &peer_id, &ch, m.seq, &m.body)? {
                conn.upgrade = Some(Box::new(Upgrade::Server(up)));
            }
            State::AwaitClientHello { peer_id }
        }
        (State::AwaitClientHello { .. }, Handshake::ClientHello(ch))
            if !conn.config.versions.speaks_12() =>
        {
            return Err(DtlsError::ProtocolVersion(ch.version));
        }
        (State::AwaitClientHello { peer_id }, Handshake::ClientHello(ch)) => {
            // From an ICE-validated address the cookie proves nothing more (RFC 6347 §4.2.1
            // lets the server skip HelloVerifyRequest); it is still accepted if sent.
            if !conn.source_validated && !cookie_ok(&conn.config.cookie_key, &peer_id, &ch) {
                let cookie = cookie(&conn.config.cookie_key, &peer_id, &ch);
                hello_verify_request(conn, m.seq, cookie);
                State::AwaitClientHello { peer_id }
            } else {
                conn.reassembler.expect(m.seq.wrapping_add(1));
                conn.next_send_seq = m.seq;
                conn.write_seq[0] = conn.write_seq[0].max(conn.peer_epoch0_seq + 1);
                conn.add_received(m.msg_type, m.seq, &m.body);
                conn.peer_flight_end = Some(m.seq);
                let next = server_hello_flight(conn, now, &ch)?;
                State::AwaitCertificate(Box::new(next))
            }
        }
        (State::AwaitCertificate(mut b), Handshake::Certificate(certs)) => {
            b.0.check_certificate(&certs)?;
            conn.add_received(m.msg_type, m.seq, &m.body);
            State::AwaitClientKeyExchange(b)
        }
        (State::AwaitClientKeyExchange(b), Handshake::ClientKeyExchange(public)) => {
            let (mut secrets, share) = *b;
            conn.add_received(m.msg_type, m.seq, &m.body);
            let pre_master = share.agree(&public)?;
            secrets.derive(conn, &pre_master)?;
            State::AwaitCertificateVerify(Box::new(secrets))
        }
        (State::AwaitCertificateVerify(s), Handshake::CertificateVerify { scheme, signature }) => {
            let key = s.peer_key()?;
            crypto::verify(
                key,
                scheme,
                &conn.transcript,
                &signature,
                "CertificateVerify",
            )?;
            conn.add_received(m.msg_type, m.seq, &m.body);
            State::AwaitFinished(s)
        }
        (State::AwaitFinished(s), Handshake::Finished(verify_data)) => {
            s.check_finished(conn, m.epoch, &verify_data)?;
            conn.add_received(m.msg_type, m.seq, &m.body);
            conn.peer_flight_end = Some(m.seq);
            let finished = Handshake::Finished(s.verify_data(conn, false));
            let item = conn.message(1, &finished);
            let items = vec![super::flight::FlightItem::ChangeCipherSpec, item];
            conn.send_flight(now, items, false);
            s.connected(conn);
            State::Done
        }
        (State::Done, Handshake::ClientHello(_)) if conn.phase == Phase::Connected => {
            // RFC 5746 §4.4 / RFC 5246 §7.2.2: refuse renegotiation with a warning.
            conn.send_record(content_type::ALERT, &[1, alert::NO_RENEGOTIATION])?;
            State::Done
        }
        (s, msg) => return Err(unexpected(expected_name(&s), &msg)),
    };
    Ok(())
}

fn expected_name(s: &State) -> &'static str {
    match s {
        State::AwaitClientHello { .. } => "ClientHello",
        State::AwaitCertificate(_) => "Certificate",
        State::AwaitClientKeyExchange(_) => "ClientKeyExchange",
        State::AwaitCertificateVerify(_) => "CertificateVerify",
        State::AwaitFinished(_) => "Finished",
        State::Done => "nothing",
    }
}

/// The stateless cookie: HMAC-SHA256 over the peer's identity (its address) and the hello's
/// parameters, with a secret shared by all connections of a server (RFC 6347 §4.2.1).
fn cookie(key: &hmac::Key, peer_id: &[u8], ch: &ClientHello) -> Vec<u8> {
    hmac::sign(key, &cookie_input(peer_id, ch))
        .as_ref()
        .to_vec()
}

fn cookie_ok(key: &hmac::Key, peer_id: &[u8], ch: &ClientHello) -> bool {
    hmac::verify(key, &cookie_input(peer_id, ch), &ch.cookie).is_ok()
}

fn cookie_input(peer_id: &[u8], ch: &ClientHello) -> Vec<u8> {
    let mut input = Vec::with_capacity(128);
    super::codec::put_bytes(&mut input, 2, peer_id);
    super::codec::put_u16(&mut input, ch.version);
    input.extend_from_slice(&ch.random);
    super::codec::put_bytes(&mut input, 1, &ch.session_id);
    put_u16_list(&mut input, 2, &ch.cipher_suites);
    input
}

/// Flight 2: HelloVerifyRequest, echoing the ClientHello's message_seq and record sequence
/// number and using version DTLS 1.0 as RFC 6347 §4.2.1 recommends. Not part of the
/// transcript and never retransmitted: the client's timer drives this exchange.
fn hello_verify_request(conn: &mut Conn, seq: u16, cookie: Vec<u8>) {
    let hvr = Handshake::HelloVerifyRequest {
        version: DTLS1_0,
        cookie,
    };
    let mut datagram = Vec::new();
    write_plain(
        &mut datagram,
        content_type::HANDSHAKE,
        DTLS1_0,
        conn.peer_epoch0_seq,
        &hvr.to_message(seq),
    );
    conn.queue(datagram);
}

/// What we agree to, or why not.
struct Choice {
    group: u16,
    profile: SrtpProfile,
}

fn negotiate(ch: &ClientHello, profiles: &[SrtpProfile]) -> Result<Choice, DtlsError> {
    let e = &ch.extensions;
    // A DTLS 1.3 client still puts 1.2 in the legacy field; supported_versions and key_share
    // are ignored (RFC 8446 §4.2.1 lets a 1.2 server do exactly that).
    if ch.version > DTLS1_2 {
        return Err(DtlsError::ProtocolVersion(ch.version));
    }
    if !ch.cipher_suites.contains(&ECDHE_ECDSA_AES128_GCM) {
        return Err(DtlsError::NoCommon(
            "cipher suite (we need ECDHE-ECDSA-AES128-GCM-SHA256)",
        ));
    }
    if !ch.compression_methods.contains(&0) {
        return Err(DtlsError::NoCommon("compression method"));
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
    if e.signature_algorithms
        .as_ref()
        .is_some_and(|s| !s.contains(&ECDSA_P256_SHA256))
    {
        return Err(DtlsError::NoCommon(
            "signature algorithm (ecdsa_secp256r1_sha256)",
        ));
    }
    if e.ec_point_formats.as_ref().is_some_and(|f| !f.contains(&0)) {
        return Err(DtlsError::NoCommon("EC point format"));
    }
    // RFC 8422 §4: without supported_groups the client accepts any curve.
    let group = match &e.supported_groups {
        None => crypto::SECP256R1,
        Some(offered) => GROUPS
            .into_iter()
            .find(|g| offered.contains(g))
            .ok_or(DtlsError::NoCommon("ECDHE group"))?,
    };
    // RFC 5764 §4.1.1: the server picks one of the client's profiles; we use our order.
    let profile = pick_srtp_profile(e.use_srtp.as_deref(), profiles)?;
    Ok(Choice { group, profile })
}

/// Flight 4: ServerHello, Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone.
fn server_hello_flight(
    conn: &mut Conn,
    now: Instant,
    ch: &ClientHello,
) -> Result<(Secrets, KeyShare), DtlsError> {
    let choice = negotiate(ch, &conn.config.srtp_profiles)?;
    let server_random: [u8; 32] = conn.rng.bytes();
    let secure_reneg = ch.extensions.renegotiation_info.is_some()
        || ch.cipher_suites.contains(&EMPTY_RENEGOTIATION_INFO_SCSV);
    let extensions = Extensions {
        renegotiation_info: secure_reneg.then(Vec::new),
        extended_master_secret: true,
        use_srtp: Some(vec![choice.profile.id()]),
        ec_point_formats: ch.extensions.ec_point_formats.as_ref().map(|_| vec![0]),
        ..Default::default()
    };
    conn.group = Some(choice.group);
    let share = KeyShare::generate(choice.group, &mut conn.rng)?;
    let params = ServerKeyExchange::params(choice.group, &share.public);
    let signature = conn
        .config
        .certificate
        .sign(&[&ch.random[..], &server_random, &params].concat())?;
    let messages = [
        Handshake::ServerHello(ServerHello {
            version: DTLS1_2,
            random: server_random,
            session_id: Vec::new(),
            cipher_suite: ECDHE_ECDSA_AES128_GCM,
            compression_method: 0,
            extensions,
        }),
        Handshake::Certificate(vec![conn.config.certificate.der().to_vec()]),
        Handshake::ServerKeyExchange(ServerKeyExchange {
            group: choice.group,
            public: share.public.clone(),
            scheme: ECDSA_P256_SHA256,
            signature,
        }),
        // WebRTC authenticates both ends (RFC 8827 §6.5): ask for the client's certificate.
        Handshake::CertificateRequest(CertificateRequest {
            certificate_types: vec![64, 1], // ecdsa_sign, rsa_sign
            signature_algorithms: SCHEMES.to_vec(),
            authorities: Vec::new(),
        }),
        Handshake::ServerHelloDone,
    ];
    let items = messages.iter().map(|msg| conn.message(0, msg)).collect();
    conn.send_flight(now, items, true);
    let secrets = Secrets {
        client_random: ch.random,
        server_random,
        profile: choice.profile,
        expected: conn.expected_fingerprint,
        peer: None,
        master: [0; 48],
    };
    Ok((secrets, share))
}
