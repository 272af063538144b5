//! A connection once DTLS 1.3 is chosen: the records of each datagram to the state machine of
//! its role. [`super::Dtls`] switches to this when the server reads a 1.3 ClientHello it will
//! answer, or the client reads a 1.3 ServerHello or HelloRetryRequest.

use std::time::Instant;

use super::conn13::Conn13;
use super::error::DtlsError;
use super::reassembly::Message;
use super::{client13, server13};

#[derive(Debug)]
pub enum Role13 {
    Server(server13::State),
    Client(client13::State),
}

/// A DTLS 1.3 connection of either role.
#[derive(Debug)]
pub struct V13 {
    pub conn: Conn13,
    pub role: Role13,
}

impl V13 {
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let messages = self.conn.read_datagram(datagram);
        self.handle_messages(now, messages);
        // Records that came before their keys (the peer's flight overtook our ServerHello's
        // answer) get their turn once the keys exist.
        while self.conn.has_read_keys() && self.conn.has_early() && self.conn.active() {
            let messages = self.conn.replay_early();
            self.handle_messages(now, messages);
        }
    }

    fn handle_messages(&mut self, now: Instant, messages: Vec<Message>) {
        for m in messages {
            if !self.conn.active() {
                return;
            }
            let result: Result<(), DtlsError> = match &mut self.role {
                Role13::Server(s) => server13::handle(s, &mut self.conn, m),
                Role13::Client(s) => client13::handle(s, &mut self.conn, now, m),
            };
            if let Err(e) = result {
                self.conn.fail(e);
            }
        }
    }
}
