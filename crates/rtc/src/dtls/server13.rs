//! The DTLS 1.3 server (RFC 9147 §5, RFC 8446 §4): one flight of ServerHello,
//! EncryptedExtensions (use_srtp), CertificateRequest, Certificate, CertificateVerify and
//! Finished; then the client's Certificate, CertificateVerify and Finished, which we ACK.

use std::time::Instant;

use super::conn13::Conn13;
use super::crypto::SCHEMES;
use super::error::DtlsError;
use super::ext::Extensions;
use super::handshake::pick_srtp_profile;
use super::handshake13::{Secrets13, unexpected13};
use super::hello13::Upgrade13;
use super::kx;
use super::msgs::{DTLS1_2, ServerHello, hs_type};
use super::msgs13::{DTLS1_3, Handshake13, TLS_AES_128_GCM_SHA256};
use super::reassembly::Message;

/// Server states after the ServerHello; each accepts only the message that may come next.
#[derive(Debug)]
pub enum State {
    /// Our flight is out; the client's Certificate comes first.
    AwaitCertificate(Box<Secrets13>),
    /// Waiting for CertificateVerify.
    AwaitCertificateVerify(Box<Secrets13>),
    /// Waiting for the client's Finished.
    AwaitFinished(Box<Secrets13>),
    /// Handshake complete.
    Done,
}

/// Answers the ClientHello the stateless phase accepted with our whole flight.
pub fn start(conn: &mut Conn13, now: Instant, up: Upgrade13) -> Result<State, DtlsError> {
    let ch = &up.ch;
    conn.reassembler.expect(up.seq.wrapping_add(1));
    conn.next_send_seq = up.seq;
    conn.peer_flight_end = Some(up.seq);
    conn.transcript = up.transcript;
    // The hello as received: re-encoding could reorder extensions we do not parse.
    conn.add_to_transcript(hs_type::CLIENT_HELLO, &up.body);

    let profile = pick_srtp_profile(
        ch.extensions.use_srtp.as_deref(),
        &conn.config.srtp_profiles,
    )?;
    let share = ch
        .extensions
        .key_shares
        .as_ref()
        .and_then(|s| s.iter().find(|(g, _)| *g == up.group))
        .ok_or(DtlsError::IllegalParameter("key share"))?;
    let (our_share, shared) = kx::respond(up.group, &share.1, &mut conn.rng)?;
    conn.group = up.group;

    let sh = Handshake13::ServerHello(ServerHello {
        version: DTLS1_2,
        random: conn.rng.bytes(),
        session_id: ch.session_id.clone(),
        cipher_suite: TLS_AES_128_GCM_SHA256,
        compression_method: 0,
        extensions: Extensions {
            selected_version: Some(DTLS1_3),
            server_share: Some((up.group, our_share)),
            ..Default::default()
        },
    });
    let mut items = vec![conn.message(0, &sh)];
    let mut secrets = Secrets13::after_server_hello(conn, &shared, profile)?;
    let ee = Handshake13::EncryptedExtensions(Extensions {
        use_srtp: Some(vec![profile.id()]),
        srtp_mki: Vec::new(),
        ..Default::default()
    });
    items.push(conn.message(2, &ee));
    // WebRTC authenticates both ends (RFC 8827 §6.5). signature_algorithms is required; no
    // certificate_authorities: Chromium refuses an empty one.
    let cr = Handshake13::CertificateRequest {
        context: Vec::new(),
        extensions: Extensions {
            signature_algorithms: Some(SCHEMES.to_vec()),
            ..Default::default()
        },
    };
    items.push(conn.message(2, &cr));
    Secrets13::push_certificate(conn, &mut items)?;
    let fin = Handshake13::Finished(secrets.finished(conn, false)?);
    items.push(conn.message(2, &fin));
    secrets.after_server_finished(conn)?;
    conn.send_flight(now, items, true);
    Ok(State::AwaitCertificate(Box::new(secrets)))
}

/// Handles one reassembled handshake message.
pub fn handle(state: &mut State, conn: &mut Conn13, m: Message) -> Result<(), DtlsError> {
    let msg = Handshake13::parse(m.msg_type, &m.body)?;
    if m.epoch != 2 && !matches!(state, State::Done) {
        return Err(DtlsError::UnexpectedMessage {
            expected: "a protected handshake message",
            got: msg.name(),
        });
    }
    *state = match (std::mem::replace(state, State::Done), msg) {
        (State::AwaitCertificate(mut s), msg @ Handshake13::Certificate { .. }) => {
            s.check_certificate(conn, &msg)?;
            conn.add_to_transcript(m.msg_type, &m.body);
            State::AwaitCertificateVerify(s)
        }
        (
            State::AwaitCertificateVerify(s),
            Handshake13::CertificateVerify { scheme, signature },
        ) => {
            s.check_certificate_verify(conn, scheme, &signature)?;
            conn.add_to_transcript(m.msg_type, &m.body);
            State::AwaitFinished(s)
        }
        (State::AwaitFinished(s), Handshake13::Finished(verify_data)) => {
            s.check_finished(conn, m.epoch, &verify_data)?;
            conn.peer_flight_end = Some(m.seq);
            conn.drop_flight();
            s.connected(conn)?;
            // The client's flight is the last: it waits for our ACK (RFC 9147 §7, §5.8.1).
            conn.send_ack();
            State::Done
        }
        (State::Done, Handshake13::KeyUpdate(_)) => {
            // We never change keys after the handshake; a session ends long before AES-GCM's
            // limits. Refuse rather than silently desynchronize (RFC 9147 §8).
            return Err(DtlsError::UnexpectedMessage {
                expected: "no KeyUpdate",
                got: "KeyUpdate",
            });
        }
        (State::Done, Handshake13::NewSessionTicket) => State::Done,
        (s, msg) => return Err(unexpected13(expected_name(&s), &msg)),
    };
    Ok(())
}

fn expected_name(s: &State) -> &'static str {
    match s {
        State::AwaitCertificate(_) => "Certificate",
        State::AwaitCertificateVerify(_) => "CertificateVerify",
        State::AwaitFinished(_) => "Finished",
        State::Done => "nothing",
    }
}
