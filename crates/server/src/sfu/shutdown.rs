//! Stopping the server (SIGTERM, Ctrl-C): every session is told, so browsers learn at once
//! that it is over — and can reconnect — instead of seeing a silent connection for the ~30 s
//! consent freshness takes to expire (RFC 7675 §5.1).

use std::time::Instant;

use super::Shard;
use super::media::{self, Tx};

/// The reason the logs give for every session ended by a shutdown.
pub const REASON: &str = "server shutting down";

impl Shard {
    /// Ends every session: an RTCP BYE for the SSRCs it sends from (RFC 3550 §6.6), then the
    /// DTLS close_notify (RFC 5246 §7.2.1), each logged as ended, all queued for the shell
    /// to send.
    pub fn shutdown(&mut self, now: Instant) {
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        keys.extend(self.sessions.keys().copied());
        if !keys.is_empty() {
            tracing::info!(
                sessions = keys.len(),
                "closing every session: RTCP BYE and DTLS close_notify"
            );
        }
        for &key in &keys {
            self.close_with_bye(now, key, REASON, REASON.as_bytes());
        }
        self.keys = keys;
        self.remove_ended(now);
        // Ending a live stream queues its viewers again; they are gone already.
        self.ended.clear();
        // The shell sends what this queued, waiting a little for room in the socket.
    }

    /// Ends session `key` for `reason` (logged) from our side: an RTCP BYE for the SSRCs it
    /// sends from with `bye` as its reason text, then the DTLS close_notify, both queued. The reason is recorded first, so the log
    /// names it rather than the local close it causes.
    pub(super) fn close_with_bye(&mut self, now: Instant, key: u64, reason: &str, bye: &[u8]) {
        self.ended.push((key, reason.into()));
        if let Some(session) = self.sessions.get_mut(&key) {
            media::send_bye(
                session,
                bye,
                &mut Tx {
                    now,
                    out: &mut self.out,
                    net: &mut self.net,
                },
            );
            session.peer.close(now);
        }
        // Queues the close_notify.
        self.after_io(now, key);
    }
}
