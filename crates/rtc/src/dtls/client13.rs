//! The DTLS 1.3 client (RFC 9147 §5, RFC 8446 §4), taking over from the ClientHello that
//! [`super::client`] sent with both versions offered once the server chose 1.3.

use std::time::Instant;

use super::conn13::Conn13;
use super::error::DtlsError;
use super::ext::Extensions;
use super::flight::FlightItem;
use super::handshake13::{Secrets13, unexpected13};
use super::kx::ClientShare;
use super::msgs::{ClientHello, ServerHello, hs_type};
use super::msgs13::{
    DTLS1_3, HRR_RANDOM, Handshake13, TLS_AES_128_GCM_SHA256, message_hash, transcript_form,
};
use super::reassembly::Message;
use super::schedule::hash;
use crate::srtp::SrtpProfile;

/// Our ClientHello and the private halves of its key shares.
#[derive(Debug)]
pub struct Offer {
    /// The hello as sent (without cookie).
    pub ch: ClientHello,
    /// Its body as sent.
    pub body: Vec<u8>,
    /// Its message_seq.
    pub seq: u16,
    /// The shares offered, by group.
    pub shares: Vec<(u16, ClientShare)>,
    /// A HelloRetryRequest was answered already.
    pub retried: bool,
}

/// Client states; each accepts only the message that may come next.
#[derive(Debug)]
pub enum State {
    /// ServerHello or HelloRetryRequest next.
    AwaitServerHello(Box<Offer>),
    /// EncryptedExtensions next.
    AwaitEncryptedExtensions(Box<Secrets13>),
    /// CertificateRequest or Certificate next (`bool`: certificate requested).
    AwaitCertificate(Box<Secrets13>, bool),
    /// CertificateVerify next.
    AwaitCertificateVerify(Box<Secrets13>, bool),
    /// The server's Finished next.
    AwaitFinished(Box<Secrets13>, bool),
    /// Handshake complete.
    Done,
}

/// Takes over after the server answered `offer` with a 1.3 ServerHello or HelloRetryRequest
/// (`m`). The ClientHello stays our flight to repeat if the server's answer is lost.
pub fn start(conn: &mut Conn13, now: Instant, offer: Offer, m: Message) -> State {
    conn.add_to_transcript(hs_type::CLIENT_HELLO, &offer.body);
    let item = FlightItem::Handshake(0, hs_type::CLIENT_HELLO, offer.seq, offer.body.clone());
    conn.arm_flight(now, vec![item]);
    let mut state = State::AwaitServerHello(Box::new(offer));
    conn.reassembler.expect(m.seq.wrapping_add(1));
    if let Err(e) = handle(&mut state, conn, now, m) {
        conn.fail(e);
    }
    state
}

/// Handles one reassembled handshake message.
pub fn handle(
    state: &mut State,
    conn: &mut Conn13,
    now: Instant,
    m: Message,
) -> Result<(), DtlsError> {
    let msg = Handshake13::parse(m.msg_type, &m.body)?;
    let protected = !matches!(state, State::AwaitServerHello(_) | State::Done);
    if protected && m.epoch != 2 {
        return Err(DtlsError::UnexpectedMessage {
            expected: "a protected handshake message",
            got: msg.name(),
        });
    }
    *state = match (std::mem::replace(state, State::Done), msg) {
        (State::AwaitServerHello(offer), Handshake13::ServerHello(sh))
            if sh.random == HRR_RANDOM =>
        {
            retry(conn, now, offer, &sh, &m)?
        }
        (State::AwaitServerHello(offer), Handshake13::ServerHello(sh)) => {
            check_server_hello(&sh, &offer.ch)?;
            let (group, key) = sh
                .extensions
                .server_share
                .as_ref()
                .ok_or(DtlsError::IllegalParameter("ServerHello without key_share"))?;
            let (_, share) = offer.shares.iter().find(|(g, _)| g == group).ok_or(
                DtlsError::IllegalParameter("key share for a group we did not send"),
            )?;
            let shared = share.finish(key)?;
            conn.group = *group;
            conn.add_to_transcript(m.msg_type, &m.body);
            // The profile comes in EncryptedExtensions.
            let first = conn.config.srtp_profiles.first().copied();
            let profile = first.ok_or(DtlsError::Internal("no SRTP profiles"))?;
            let secrets = Secrets13::after_server_hello(conn, &shared, profile)?;
            State::AwaitEncryptedExtensions(Box::new(secrets))
        }
        (State::AwaitEncryptedExtensions(mut s), Handshake13::EncryptedExtensions(e)) => {
            s.profile = check_srtp(&e, &conn.config.srtp_profiles)?;
            conn.add_to_transcript(m.msg_type, &m.body);
            State::AwaitCertificate(s, false)
        }
        (State::AwaitCertificate(s, false), Handshake13::CertificateRequest { context, .. }) => {
            if !context.is_empty() {
                return Err(DtlsError::IllegalParameter("certificate_request_context"));
            }
            conn.add_to_transcript(m.msg_type, &m.body);
            State::AwaitCertificate(s, true)
        }
        (State::AwaitCertificate(mut s, req), msg @ Handshake13::Certificate { .. }) => {
            s.check_certificate(conn, &msg)?;
            conn.add_to_transcript(m.msg_type, &m.body);
            State::AwaitCertificateVerify(s, req)
        }
        (
            State::AwaitCertificateVerify(s, req),
            Handshake13::CertificateVerify { scheme, signature },
        ) => {
            s.check_certificate_verify(conn, scheme, &signature)?;
            conn.add_to_transcript(m.msg_type, &m.body);
            State::AwaitFinished(s, req)
        }
        (State::AwaitFinished(mut s, req), Handshake13::Finished(verify_data)) => {
            s.check_finished(conn, m.epoch, &verify_data)?;
            conn.add_to_transcript(m.msg_type, &m.body);
            conn.peer_flight_end = Some(m.seq);
            s.after_server_finished(conn)?;
            let mut items = Vec::new();
            if req {
                Secrets13::push_certificate(conn, &mut items)?;
            }
            let fin = Handshake13::Finished(s.finished(conn, true)?);
            items.push(conn.message(2, &fin));
            // Our last flight is repeated until the server ACKs it (RFC 9147 §7).
            conn.send_flight(now, items, true);
            s.connected(conn)?;
            State::Done
        }
        (State::Done, Handshake13::NewSessionTicket) => State::Done,
        (State::Done, Handshake13::KeyUpdate(_)) => {
            return Err(DtlsError::UnexpectedMessage {
                expected: "no KeyUpdate",
                got: "KeyUpdate",
            });
        }
        (s, msg) => return Err(unexpected13(expected_name(&s), &msg)),
    };
    Ok(())
}

/// Answers a HelloRetryRequest (RFC 8446 §4.1.4): the transcript restarts with the hash of
/// ClientHello1, and ClientHello2 carries the cookie and a share for the group asked for.
fn retry(
    conn: &mut Conn13,
    now: Instant,
    mut offer: Box<Offer>,
    hrr: &ServerHello,
    m: &Message,
) -> Result<State, DtlsError> {
    if offer.retried {
        return Err(DtlsError::UnexpectedMessage {
            expected: "ServerHello",
            got: "a second HelloRetryRequest",
        });
    }
    check_server_hello(hrr, &offer.ch)?;
    let mut ch = offer.ch.clone();
    ch.extensions.cookie = hrr.extensions.cookie.clone();
    if let Some(group) = hrr.extensions.hrr_group {
        let offered = ch.extensions.supported_groups.as_deref().unwrap_or(&[]);
        if !offered.contains(&group) || offer.shares.iter().any(|(g, _)| *g == group) {
            return Err(DtlsError::IllegalParameter("HelloRetryRequest group"));
        }
        let (share, public) = ClientShare::generate(group, &mut conn.rng)?;
        ch.extensions.key_shares = Some(vec![(group, public)]);
        offer.shares = vec![(group, share)];
    } else if ch.extensions.cookie.is_none() {
        return Err(DtlsError::IllegalParameter(
            "HelloRetryRequest that changes nothing",
        ));
    }
    conn.transcript = message_hash(&hash(&conn.transcript));
    conn.transcript
        .extend_from_slice(&transcript_form(m.msg_type, &m.body));
    conn.peer_flight_end = Some(m.seq);
    let msg = Handshake13::ClientHello(ch.clone());
    let seq = conn.next_send_seq;
    let item = conn.message(0, &msg);
    conn.send_flight(now, vec![item], true);
    let mut body = Vec::new();
    msg.encode(&mut body);
    offer.ch = ch;
    offer.body = body;
    offer.seq = seq;
    offer.retried = true;
    Ok(State::AwaitServerHello(offer))
}

/// The parts of a ServerHello or HelloRetryRequest that must echo our offer.
fn check_server_hello(sh: &ServerHello, ch: &ClientHello) -> Result<(), DtlsError> {
    if sh.extensions.selected_version != Some(DTLS1_3) {
        return Err(DtlsError::IllegalParameter("supported_versions"));
    }
    if sh.cipher_suite != TLS_AES_128_GCM_SHA256 {
        return Err(DtlsError::IllegalParameter("cipher suite we did not offer"));
    }
    if sh.session_id != ch.session_id || sh.compression_method != 0 {
        return Err(DtlsError::IllegalParameter("legacy_session_id_echo"));
    }
    Ok(())
}

fn check_srtp(e: &Extensions, ours: &[SrtpProfile]) -> Result<SrtpProfile, DtlsError> {
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

fn expected_name(s: &State) -> &'static str {
    match s {
        State::AwaitServerHello(_) => "ServerHello",
        State::AwaitEncryptedExtensions(_) => "EncryptedExtensions",
        State::AwaitCertificate(..) => "Certificate",
        State::AwaitCertificateVerify(..) => "CertificateVerify",
        State::AwaitFinished(..) => "Finished",
        State::Done => "nothing",
    }
}
