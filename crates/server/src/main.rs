//! The `leanrtc` binary.

use clap::Parser;

// The media thread will drive it; until it is wired, only its tests compile it.
#[cfg(test)]
mod udp;

/// leanrtc: a small WebRTC media server (WHIP/WHEP, file playback, recording, SFU).
#[derive(Debug, Parser)]
#[command(name = "leanrtc", version, about)]
struct Args {}

fn main() {
    let _args = Args::parse();
    eprintln!(
        "leanrtc {}: the media server is not wired up yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
