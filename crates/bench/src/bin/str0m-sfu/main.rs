//! `str0m-sfu`: the baseline leanrtc is measured against — a minimal SFU on
//! [str0m](https://crates.io/crates/str0m) with leanrtc's design: `POST /whip/{name}` and
//! `POST /whep/{name}` (application/sdp → 201 + Location + answer), every session on one UDP
//! port and one media thread, each publisher's RTP forwarded to the viewers of its name.
//!
//! ```text
//! str0m-sfu [--http 127.0.0.1:8080] [--udp 127.0.0.1:8189] [--batched]
//! ```
//!
//! `--batched` reads and sends in batches through quinn-udp (recvmmsg, UDP GSO: see
//! `io.rs`) instead of one datagram per syscall, so a comparison with leanrtc, which
//! batches its own I/O, can tell the stack's cost from the syscalls'.
//!
//! It prints `str0m-sfu ready: open http=ADDR udp=ADDR` on stderr once it listens (port 0
//! picks a free port), as leanrtc does. Not a product: no auth, no limits, no audio mixing of
//! names; enough to forward the load generator's streams honestly (release build, str0m's RTP
//! mode, one decryption per packet, the payload shared between viewers).

mod http;
mod io;
mod sfu;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use clap::Parser;
use mio::Poll;

/// Kernel socket buffers, as leanrtc asks for its media socket.
const SOCKET_BUFFER: usize = 4 << 20;

/// A minimal str0m SFU answering WHIP and WHEP (the leanrtc benchmark's baseline).
#[derive(Debug, Parser)]
#[command(name = "str0m-sfu", version, about)]
struct Args {
    /// HTTP address for WHIP/WHEP and /metrics.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The one UDP address all media uses.
    #[arg(long, default_value = "127.0.0.1:8189")]
    udp: SocketAddr,
    /// Batched UDP I/O (recvmmsg, UDP GSO through quinn-udp) instead of one datagram per
    /// syscall.
    #[arg(long)]
    batched: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let cert = (crypto.dtls_provider.generate_certificate())
        .ok_or("cannot generate a DTLS certificate")?;
    let socket = std::net::UdpSocket::bind(args.udp)?;
    socket.set_nonblocking(true)?;
    {
        use nix::sys::socket::{setsockopt, sockopt};
        setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER)?;
        setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER)?;
    }
    let udp = socket.local_addr()?;
    let listener = std::net::TcpListener::bind(args.http)?;
    let http_addr = listener.local_addr()?;

    let poll = Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), sfu::WAKE)?);
    let (commands_tx, commands_rx) = std::sync::mpsc::channel();
    let counters = Arc::new(sfu::Counters::default());
    let mut media = sfu::Sfu::new(
        io::Io::new(mio::net::UdpSocket::from_std(socket), args.batched)?,
        poll,
        commands_rx,
        Arc::clone(&counters),
    )?;
    let signalling = Arc::new(http::Signalling {
        udp,
        cert,
        crypto,
        commands: commands_tx,
        waker,
        counters,
        next_id: AtomicU64::new(1),
    });
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || http::serve(listener, signalling))?;
    eprintln!("str0m-sfu ready: open http={http_addr} udp={udp}");
    media.run()?;
    Ok(())
}
