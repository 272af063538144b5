//! `GET /metrics`: counters in the Prometheus text format. Totals of ended sessions are kept
//! here; live sessions are summed when asked.

use std::fmt::Write as _;

use super::MediaLoop;
use super::session::Session;
use crate::control::Role;
use crate::router::resend::ResendCounts;

/// Counters that outlive sessions.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// STUN datagrams the ICE agents refused.
    pub stun_rejected: u64,
    /// DTLS/SRTP datagrams from addresses ICE had not validated.
    pub unvalidated: u64,
    /// SRTP/SRTCP packets that failed to unprotect.
    pub srtp_failed: u64,
    /// Datagrams of no RFC 7983 class.
    pub unclassified: u64,
    /// Publisher RTP for no m-line (unknown SSRC and payload type) or a wrong payload type.
    pub unknown_ssrc: u64,
    /// NACKed sequence numbers received from viewers.
    pub nacks_received: u64,
    /// PLI/FIR received from viewers.
    pub keyframe_requests_received: u64,
    /// What viewers' NACKs made us resend, and what was refused.
    pub resends: ResendCounts,
    /// NACKed sequence numbers sent to publishers.
    pub nacks_sent: u64,
    /// PLIs sent to publishers.
    pub keyframe_requests_sent: u64,
    /// RTX packets from publishers unwrapped to their originals.
    pub rtx_unwrapped: u64,
}

impl Counters {
    /// Adds what one session counted.
    pub fn add_session(&mut self, session: &Session) {
        let peer = session.peer.stats();
        self.stun_rejected += peer.stun_rejected;
        self.unvalidated += peer.unvalidated;
        self.srtp_failed += peer.srtp_failed;
        self.unclassified += peer.unknown;
        match session.role {
            Role::Play => {
                self.nacks_received += session.nacks;
                self.keyframe_requests_received += session.keyframe_requests;
                let r = &session.resends.counts;
                self.resends.resent += r.resent;
                self.resends.resent_bytes += r.resent_bytes;
                self.resends.refused_repeat += r.refused_repeat;
                self.resends.refused_budget += r.refused_budget;
                self.resends.refused_fci += r.refused_fci;
            }
            Role::Publish => {
                self.nacks_sent += session.nacks;
                self.keyframe_requests_sent += session.keyframe_requests;
                self.rtx_unwrapped += session.rtx_unwrapped.1;
            }
        }
    }
}

impl MediaLoop {
    /// The counters as Prometheus text (version 0.0.4).
    pub(super) fn metrics(&self) -> String {
        let mut c = self.totals;
        for session in self.sessions.values() {
            c.add_session(session);
        }
        let udp = self.net.stats();
        let publishers = self
            .sessions
            .values()
            .filter(|s| s.role == Role::Publish)
            .count();
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP leanrtc_{name} {help}\n# TYPE leanrtc_{name} {kind}\nleanrtc_{name} {value}"
            );
        };
        put(
            "streams",
            "gauge",
            "Streams (files and live).",
            self.streams.len() as u64,
        );
        put("publishers", "gauge", "WHIP sessions.", publishers as u64);
        put(
            "viewers",
            "gauge",
            "WHEP sessions.",
            (self.sessions.len() - publishers) as u64,
        );
        put(
            "udp_datagrams_received_total",
            "counter",
            "Datagrams received on the media port.",
            udp.rx_datagrams,
        );
        put(
            "udp_bytes_received_total",
            "counter",
            "Bytes received on the media port.",
            udp.rx_bytes,
        );
        put(
            "udp_datagrams_sent_total",
            "counter",
            "Datagrams sent from the media port.",
            udp.tx_datagrams,
        );
        put(
            "udp_bytes_sent_total",
            "counter",
            "Bytes sent from the media port.",
            udp.tx_bytes,
        );
        put(
            "udp_send_calls_total",
            "counter",
            "sendmmsg messages (a GSO message carries several datagrams).",
            udp.tx_messages,
        );
        put(
            "udp_send_errors_total",
            "counter",
            "Datagrams the kernel refused.",
            udp.send_errors,
        );
        put(
            "udp_send_dropped_total",
            "counter",
            "Datagrams dropped because the send queue was full.",
            udp.dropped,
        );
        put(
            "datagrams_unroutable_total",
            "counter",
            "Datagrams from unknown addresses that no session's ufrag claimed.",
            self.dropped_unknown,
        );
        put(
            "stun_rejected_total",
            "counter",
            "STUN requests refused (credentials, integrity, format).",
            c.stun_rejected,
        );
        put(
            "datagrams_unvalidated_total",
            "counter",
            "DTLS/SRTP from addresses ICE had not validated.",
            c.unvalidated,
        );
        put(
            "datagrams_unclassified_total",
            "counter",
            "Datagrams that are neither STUN, DTLS, RTP nor RTCP.",
            c.unclassified,
        );
        put(
            "srtp_unprotect_failed_total",
            "counter",
            "SRTP/SRTCP packets failing authentication or replay checks.",
            c.srtp_failed,
        );
        put(
            "rtp_unknown_ssrc_total",
            "counter",
            "Publisher RTP matching no negotiated m-line.",
            c.unknown_ssrc + self.unknown_ssrc,
        );
        put(
            "rtcp_nacks_received_total",
            "counter",
            "Sequence numbers NACKed by viewers.",
            c.nacks_received,
        );
        put(
            "rtcp_keyframe_requests_received_total",
            "counter",
            "PLI/FIR received from viewers.",
            c.keyframe_requests_received,
        );
        put(
            "nack_resent_total",
            "counter",
            "Packets retransmitted to viewers for their NACKs.",
            c.resends.resent,
        );
        put(
            "nack_resent_bytes_total",
            "counter",
            "Bytes of RTP retransmitted to viewers for their NACKs.",
            c.resends.resent_bytes,
        );
        put(
            "nack_refused_repeat_total",
            "counter",
            "NACKed packets not resent: resent to that viewer less than an RTT before.",
            c.resends.refused_repeat,
        );
        put(
            "nack_refused_budget_total",
            "counter",
            "NACKed packets not resent: over the viewer's budget (a quarter of its send rate).",
            c.resends.refused_budget,
        );
        put(
            "nack_refused_fci_total",
            "counter",
            "NACKed sequence numbers not read: past the FCIs read per RTCP packet.",
            c.resends.refused_fci,
        );
        put(
            "rtx_unwrapped_total",
            "counter",
            "RTX retransmissions (RFC 4588) from publishers unwrapped to their originals.",
            c.rtx_unwrapped,
        );
        put(
            "nacks_sent_total",
            "counter",
            "Sequence numbers NACKed to publishers.",
            c.nacks_sent,
        );
        put(
            "keyframe_requests_sent_total",
            "counter",
            "PLIs sent to publishers.",
            c.keyframe_requests_sent,
        );
        self.limit_metrics(&mut put);
        // Issue 13: which transport sessions use, and what ICE-TCP counted.
        let tcp = self.net.tcp.as_ref();
        let on_tcp = (self.sessions.values())
            .filter_map(|s| s.peer.path())
            .filter(|(remote, _)| crate::tcp::transport(tcp, *remote) == "tcp")
            .count();
        crate::tcp::metrics(tcp, on_tcp as u64, self.sessions.len() as u64, &mut put);
        out
    }

    /// What the limits against hostile peers hold and turned away.
    fn limit_metrics(&self, put: &mut impl FnMut(&str, &str, &str, u64)) {
        let l = self.limits;
        put(
            "sessions_pending",
            "gauge",
            "Sessions without a valid ICE check yet.",
            self.pending.len() as u64,
        );
        put(
            "sessions_pending_expired_total",
            "counter",
            "Sessions ended for having no valid ICE check in time.",
            l.pending_expired,
        );
        put(
            "sessions_pending_evicted_total",
            "counter",
            "Sessions without a valid ICE check ended to make room for newer offers.",
            l.pending_evicted,
        );
        put(
            "sessions_refused_client_pending_total",
            "counter",
            "Offers refused because their client address had too many pending sessions.",
            l.pending_client_full,
        );
        put(
            "sessions_refused_full_total",
            "counter",
            "Offers refused because the connected sessions were at their bound.",
            l.sessions_full,
        );
        put(
            "commands_refused_total",
            "counter",
            "HTTP requests refused because the media thread's queue was full.",
            self.commands_refused
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        put(
            "stun_errors_suppressed_total",
            "counter",
            "STUN error responses not sent (rate limit per source and in total).",
            self.errors.suppressed,
        );
        put(
            "rounds_budget_exhausted_total",
            "counter",
            "Media thread rounds that stopped at their work budget with work left.",
            l.rounds_budget_exhausted,
        );
        put(
            "round_datagrams_max",
            "gauge",
            "Most datagrams the media thread handled in one round.",
            l.round_datagrams_max,
        );
        put(
            "routed_addresses",
            "gauge",
            "Peer addresses routed to sessions.",
            self.routes.addr_count() as u64,
        );
    }
}
