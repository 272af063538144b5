//! `GET /metrics`: counters in the Prometheus text format. Totals of ended sessions are kept
//! here; live sessions are summed when asked.

use std::fmt::Write as _;

use super::Shard;
use super::session::{Session, Side};
use crate::router::resend::ResendCounts;
use rtc::dtls::DtlsVersion;

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
    /// Simulcast layer switches made for viewers (each at a keyframe of the new layer).
    pub layer_switches: u64,
    /// DTLS handshakes completed, by version and key exchange group.
    pub dtls: DtlsCounts,
}

/// The key exchange groups counted, in the order of [`DtlsCounts::by`]'s second index.
const DTLS_GROUPS: [u16; 3] = [0x11ec, 0x001d, 0x0017];

/// Completed DTLS handshakes by version (1.2, 1.3) and group (those of `DTLS_GROUPS`, then
/// any other).
#[derive(Debug, Default, Clone, Copy)]
pub struct DtlsCounts {
    /// `[version][group]`.
    pub by: [[u64; DTLS_GROUPS.len() + 1]; 2],
}

impl DtlsCounts {
    /// Counts one handshake.
    pub fn count(&mut self, version: DtlsVersion, group: Option<u16>) {
        let v = usize::from(version == DtlsVersion::V13);
        let g = DTLS_GROUPS
            .iter()
            .position(|&x| Some(x) == group)
            .unwrap_or(DTLS_GROUPS.len());
        if let Some(n) = self.by.get_mut(v).and_then(|row| row.get_mut(g)) {
            *n += 1;
        }
    }

    /// Adds another shard's counts.
    pub fn add(&mut self, other: &DtlsCounts) {
        for (row, theirs) in self.by.iter_mut().zip(&other.by) {
            for (n, m) in row.iter_mut().zip(theirs) {
                *n += m;
            }
        }
    }

    /// Prometheus lines: one series per version and group seen.
    fn write(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP leanrtc_dtls_handshakes_total DTLS handshakes completed, by version and key exchange group.\n# TYPE leanrtc_dtls_handshakes_total counter"
        );
        for (v, row) in self.by.iter().enumerate() {
            let version = if v == 1 { "1.3" } else { "1.2" };
            for (g, n) in row.iter().enumerate() {
                let group = DTLS_GROUPS
                    .get(g)
                    .map_or("other", |&x| rtc::dtls::group_name(x));
                if *n > 0 || (g == 0 && v == 1) {
                    let _ = writeln!(
                        out,
                        "leanrtc_dtls_handshakes_total{{version=\"{version}\",group=\"{group}\"}} {n}"
                    );
                }
            }
        }
    }
}

impl Counters {
    /// Adds what one session counted.
    pub fn add_session(&mut self, session: &Session) {
        let peer = session.peer.stats();
        self.stun_rejected += peer.stun_rejected;
        self.unvalidated += peer.unvalidated;
        self.srtp_failed += peer.srtp_failed;
        self.unclassified += peer.unknown;
        match &session.side {
            Side::Viewer(v) => {
                self.nacks_received += session.nacks;
                self.keyframe_requests_received += session.keyframe_requests;
                let r = &v.resends.counts;
                self.resends.resent += r.resent;
                self.resends.resent_bytes += r.resent_bytes;
                self.resends.refused_repeat += r.refused_repeat;
                self.resends.refused_budget += r.refused_budget;
                self.resends.refused_fci += r.refused_fci;
                let layers = v.outputs.iter().filter_map(|o| o.layers.as_ref());
                self.layer_switches += layers.map(|l| l.switches).sum::<u64>();
            }
            Side::Publisher(p) => {
                self.nacks_sent += session.nacks;
                self.keyframe_requests_sent += session.keyframe_requests;
                self.rtx_unwrapped += p.rtx_unwrapped.1;
            }
        }
    }
}

/// One counter or gauge of one shard.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Its name, after `leanrtc_`.
    pub name: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Its value on this shard.
    pub value: u64,
}

/// What one shard reports to `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsPart {
    /// The shard's number.
    pub shard: usize,
    /// Its counters, in a fixed order (the same on every shard).
    pub values: Vec<Metric>,
    /// Sessions it owns.
    pub sessions: u64,
    /// Datagrams it handled and sent.
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Datagrams and media packets it handed to other shards, and messages refused.
    pub datagrams_handed_over: u64,
    pub media_handed_over: u64,
    pub messages_refused: u64,
    /// Wall time it spent working.
    pub busy: std::time::Duration,
    /// Its DTLS handshakes by version and group.
    pub dtls: DtlsCounts,
}

/// Metrics whose value is the same fact on every shard: shard 0's is the one.
const FROM_SHARD_0: [&str; 2] = ["streams", "commands_refused_total"];

/// Every shard's part as one Prometheus text (version 0.0.4): totals summed (a `_max`
/// gauge is the largest, a server-wide fact is shard 0's), then each shard's own load.
pub fn render_metrics(parts: &[MetricsPart]) -> String {
    let mut out = String::new();
    let Some(first) = parts.first() else {
        return out;
    };
    for (i, m) in first.values.iter().enumerate() {
        let values = parts.iter().filter_map(|p| p.values.get(i));
        let value = if FROM_SHARD_0.contains(&m.name) {
            m.value
        } else if m.name.ends_with("_max") {
            values.map(|v| v.value).max().unwrap_or(0)
        } else {
            values.map(|v| v.value).sum()
        };
        let _ = writeln!(
            out,
            "# HELP leanrtc_{0} {1}\n# TYPE leanrtc_{0} {2}\nleanrtc_{0} {value}",
            m.name, m.help, m.kind
        );
    }
    let mut dtls = DtlsCounts::default();
    for p in parts {
        dtls.add(&p.dtls);
    }
    dtls.write(&mut out);
    let mut per_shard =
        |name: &str, kind: &str, help: &str, value: &dyn Fn(&MetricsPart) -> String| {
            let _ = writeln!(
                out,
                "# HELP leanrtc_shard_{name} {help}\n# TYPE leanrtc_shard_{name} {kind}"
            );
            for p in parts {
                let _ = writeln!(
                    out,
                    "leanrtc_shard_{name}{{shard=\"{}\"}} {}",
                    p.shard,
                    value(p)
                );
            }
        };
    per_shard(
        "sessions",
        "gauge",
        "Sessions each media thread owns.",
        &|p| p.sessions.to_string(),
    );
    per_shard(
        "datagrams_received_total",
        "counter",
        "Datagrams each media thread handled (its own sessions').",
        &|p| p.datagrams_received.to_string(),
    );
    per_shard(
        "datagrams_sent_total",
        "counter",
        "Datagrams each media thread sent.",
        &|p| p.datagrams_sent.to_string(),
    );
    per_shard(
        "busy_seconds_total",
        "counter",
        "Wall time each media thread spent working rather than waiting.",
        &|p| format!("{:.6}", p.busy.as_secs_f64()),
    );
    per_shard(
        "datagrams_handed_over_total",
        "counter",
        "Datagrams the receiving thread handed to the thread owning their session.",
        &|p| p.datagrams_handed_over.to_string(),
    );
    per_shard(
        "media_handed_over_total",
        "counter",
        "Packets of streams published here handed to the other media threads (once each).",
        &|p| p.media_handed_over.to_string(),
    );
    per_shard(
        "messages_refused_total",
        "counter",
        "Messages another media thread's full queue refused.",
        &|p| p.messages_refused.to_string(),
    );
    out
}

impl Shard {
    /// This shard's counters.
    pub(super) fn metrics(&self) -> MetricsPart {
        let mut c = self.totals;
        for session in self.sessions.values() {
            c.add_session(session);
        }
        let udp = self.net.stats();
        let publishers = self
            .sessions
            .values()
            .filter(|s| s.publisher().is_some())
            .count();
        let mut values = Vec::with_capacity(48);
        let mut put = |name: &'static str, kind: &'static str, help: &'static str, value: u64| {
            values.push(Metric {
                name,
                kind,
                help,
                value,
            });
        };
        put(
            "streams",
            "gauge",
            "Streams (files and live).",
            self.streams.len() as u64,
        );
        put(
            "publishers",
            "gauge",
            "WHIP sessions (and relay sessions, which publish here what they pull).",
            publishers as u64,
        );
        let relays = (self.sessions.values())
            .filter(|s| {
                s.publisher()
                    .is_some_and(|p| p.relay && p.closed_at.is_none())
            })
            .count();
        put(
            "relays",
            "gauge",
            "Relay sessions pulling streams from other nodes (--origin).",
            relays as u64,
        );
        put(
            "relay_packets_received_total",
            "counter",
            "Media packets relays brought from other nodes.",
            self.relay_packets,
        );
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
            self.counters.socket_received,
        );
        put(
            "udp_bytes_received_total",
            "counter",
            "Bytes received on the media port.",
            self.counters.socket_bytes,
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
        let viewers = self.sessions.values().filter_map(Session::viewer);
        let (mut estimated, mut estimate_sum, mut paused, mut below_top) = (0, 0, 0, 0);
        for v in viewers {
            if let Some(cc) = &v.cc {
                estimated += 1;
                estimate_sum += cc.bwe.estimate();
            }
            for o in &v.outputs {
                let Some(l) = &o.layers else { continue };
                paused += u64::from(l.paused);
                below_top += u64::from(!l.paused && l.below_top);
            }
        }
        put(
            "layer_switches_total",
            "counter",
            "Layer switches made for viewers, and resumes after a pause, each at a keyframe.",
            c.layer_switches,
        );
        put(
            "viewers_estimated",
            "gauge",
            "Viewers with a bandwidth estimate (they negotiated transport-wide CC).",
            estimated,
        );
        put(
            "viewer_estimate_bps_sum",
            "gauge",
            "Sum of those viewers' bandwidth estimates, bit/s (divide by viewers_estimated).",
            estimate_sum,
        );
        put(
            "viewers_video_paused",
            "gauge",
            "Video outputs paused: not even the lowest layer (or the only one) fits the viewer's estimate.",
            paused,
        );
        put(
            "viewers_below_top_layer",
            "gauge",
            "Simulcast outputs forwarding a layer below the top one received.",
            below_top,
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
        // Issue 13: which transport sessions use, and what ICE-TCP counted (shard 0's
        // shell owns the connections; the other shards add zeros).
        let on_tcp = (self.sessions.values())
            .filter_map(|s| s.peer.path())
            .filter(|(remote, _)| self.net.is_tcp(*remote))
            .count();
        let (tcp, open) = self.tcp_stats;
        crate::tcp::metrics(
            tcp,
            open,
            on_tcp as u64,
            self.sessions.len() as u64,
            &mut put,
        );
        let k = &self.counters;
        MetricsPart {
            shard: self.id,
            values,
            sessions: self.sessions.len() as u64,
            datagrams_received: k.datagrams_received,
            datagrams_sent: udp.tx_datagrams,
            datagrams_handed_over: k.datagrams_handed_over,
            media_handed_over: k.media_handed_over,
            messages_refused: k.messages_refused,
            busy: k.busy,
            dtls: c.dtls,
        }
    }

    /// What the limits against hostile peers hold and turned away.
    fn limit_metrics(&self, put: &mut impl FnMut(&'static str, &'static str, &'static str, u64)) {
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
            (self.routes.addr_count() + self.dispatch.addr_count()) as u64,
        );
    }
}
