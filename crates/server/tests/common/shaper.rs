//! Shaping what the server sends to one browser: an htb class on loopback for the UDP port
//! a viewer receives on (`tc`, Debian's iproute2), and that port read from the server's log.
//! Only inside the test namespace (docs/TESTING.md): it replaces loopback's root qdisc.

use std::time::Duration;

use super::server::Server;

/// Shapes what the server sends to one local UDP port: an htb class on loopback (where the
/// server's packets to the browsers in this namespace go) with a 10 kB tail-drop queue
/// (200 ms at 400 kbit/s), the rest of loopback unshaped. Removed when dropped.
pub struct Shaper;

impl Shaper {
    fn tc(args: &str) {
        let out = std::process::Command::new("tc")
            .args(args.split_whitespace())
            .output()
            .expect("run tc (Debian package iproute2)");
        assert!(
            out.status.success(),
            "tc {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn new(port: u16, kbit: u32) -> Shaper {
        Self::tc("qdisc add dev lo root handle 1: htb default 10");
        Self::tc("class add dev lo parent 1: classid 1:10 htb rate 10gbit");
        Self::tc(&format!(
            "class add dev lo parent 1: classid 1:20 htb rate {kbit}kbit ceil {kbit}kbit burst 4k"
        ));
        Self::tc("qdisc add dev lo parent 1:20 handle 20: bfifo limit 10000");
        Self::tc(&format!(
            "filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff \
             match ip dport {port} 0xffff flowid 1:20"
        ));
        Shaper
    }

    pub fn set(&self, kbit: u32) {
        Self::tc(&format!(
            "class change dev lo parent 1: classid 1:20 htb rate {kbit}kbit ceil {kbit}kbit burst 4k"
        ));
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tc")
            .args(["qdisc", "del", "dev", "lo", "root"])
            .status();
    }
}

/// The UDP port the server saw session `id` connect from, per its log.
pub fn remote_port(server: &Server, id: &str) -> Option<u16> {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("connected") && l.contains(&format!("session={id}")))?;
    let addr = line.split("remote=Some(").nth(1)?.split(')').next()?;
    addr.rsplit(':').next()?.parse().ok()
}

/// [`remote_port`], waited for up to 10 s (the log line comes once ICE and DTLS are done).
pub fn wait_remote_port(server: &Server, id: &str) -> u16 {
    for _ in 0..100 {
        if let Some(port) = remote_port(server, id) {
            return port;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "session {id} did not connect within 10 s:\n{}",
        server.log()
    );
}
