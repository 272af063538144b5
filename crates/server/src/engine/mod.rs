//! The media threads: the I/O shell around the sans-IO SFU core ([`crate::sfu::Shard`]).
//! Each thread owns one shard and drives it with what its poller reports: datagrams (shard 0
//! reads the one UDP socket), HTTP commands, other shards' messages and the time; it sends
//! what the shard queues. See docs/DESIGN.md, "The engine, sharded".

mod net;
mod shell;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::mpsc;
use std::time::Instant;

use mio::{Poll, Token, Waker};
use rtc::dtls::{DtlsCertificate, DtlsConfig};
use rtc::rand::Rng;

use self::shell::{Peer, Shell};
use crate::config::Config;
use crate::control::{EngineHandle, ShardHandle};
use crate::recorder::{Limits, Recorder};
use crate::sfu::{Outbox, PendingClients, Shard, ShardConfig, Sink};
use crate::sources;
use crate::udp::{SendBatch, UdpIo, UdpStats};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// ICE-TCP's listener (shard 0's poller); its connections take the tokens above it.
const TCP: usize = 2;
/// Commands HTTP may queue for a media thread; beyond that it answers 503 at once.
const COMMAND_QUEUE: usize = 256;
/// Messages one media thread may have waiting from the others (a round's media is one).
const INBOX: usize = 4096;

/// The started media threads.
#[derive(Debug)]
pub struct Engine {
    /// The handle HTTP uses.
    pub handle: EngineHandle,
    /// The UDP address actually bound (the port may have been 0).
    pub udp_addr: SocketAddr,
    /// The media threads; they end (finishing recordings) once every handle is dropped.
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The poller. (Each variant's message leaves its cause to the error chain, so the cause
    /// is printed once.)
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The media socket.
    #[error("cannot bind the UDP media socket to {addr} (--udp / LEANRTC_UDP)")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The ICE-TCP listener.
    #[error("cannot listen for ICE-TCP on {addr} (--tcp / LEANRTC_TCP; `--tcp off` turns it off)")]
    BindTcp {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A media file.
    #[error(transparent)]
    Media(#[from] sources::file::FileError),
    /// A shard.
    #[error(transparent)]
    Shard(#[from] crate::sfu::ShardError),
    /// Our DTLS certificate.
    #[error("cannot make the DTLS certificate")]
    Certificate(#[from] rtc::dtls::DtlsError),
}

/// Sends a shard's datagrams on its own handle of the media socket.
struct UdpSink(UdpIo);

impl Sink for UdpSink {
    fn flush(&mut self, batch: &mut SendBatch) {
        self.0.flush(batch);
    }

    fn stats(&self) -> UdpStats {
        self.0.stats()
    }
}

/// Loads the streams, binds the media socket and starts the media threads.
pub fn start(config: &Config) -> Result<Engine, StartError> {
    let files = match &config.media_dir {
        Some(dir) => sources::scan_media_dir(dir)?,
        None => sources::builtin_sample()?,
    };
    for (name, file) in &files {
        for track in [&file.video, &file.audio].into_iter().flatten() {
            let (w, h) = track.size;
            tracing::info!(
                stream = %name, codec = track.codec.name(), frames = track.frames(),
                seconds = track.duration().as_secs_f32(), size = %format!("{w}x{h}"), "file track"
            );
        }
    }
    let mut recorder = match &config.record_dir {
        Some(dir) => {
            Recorder::check_dir(dir)?;
            tracing::info!(dir = %dir.display(), "recording published tracks");
            Some(Recorder::spawn(dir.clone(), Limits::default())?)
        }
        None => None,
    };
    let socket = UdpIo::bind(config.udp).map_err(|source| StartError::Bind {
        addr: config.udp,
        source,
    })?;
    let udp_addr = socket.local_addr();
    let wildcard = udp_addr.ip().is_unspecified();
    let candidates = net::candidates(udp_addr, &config.public_ip);
    let mut rng = Rng::system();
    let certificate = DtlsCertificate::generate(&mut rng)?;
    let dtls = Arc::new(DtlsConfig::new(certificate, &mut rng).with_versions(config.dtls));
    let n = config.media_threads();
    tracing::info!(udp = %udp_addr, candidates = ?candidates, threads = n, "media port ready");
    // ICE-TCP (issue 13), by default on the UDP socket's own address and port number, read
    // and written by shard 0's thread.
    let mut tcp = None;
    let mut tcp_candidates = Vec::new();
    if let Some(addr) = config.tcp_addr(udp_addr) {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StartError::BindTcp { addr, source })?;
        let local = listener.local_addr()?;
        tcp_candidates = net::candidates(local, &config.public_ip);
        tracing::info!(tcp = %local, candidates = ?tcp_candidates, "ICE-TCP port ready");
        tcp = Some(listener);
    }

    let refused = Arc::new(AtomicU64::new(0));
    let pending_clients = PendingClients::default();
    let mut polls = Vec::with_capacity(n);
    let mut peers = Vec::with_capacity(n);
    let mut inboxes = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    let mut commands = Vec::with_capacity(n);
    for _ in 0..n {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::sync_channel(INBOX);
        peers.push(Peer {
            tx,
            waker: Arc::clone(&waker),
        });
        inboxes.push(rx);
        let (ctx, crx) = mpsc::sync_channel(COMMAND_QUEUE);
        let wake = Arc::new(move || drop(waker.wake())) as Arc<dyn Fn() + Send + Sync>;
        let load = Arc::new(AtomicUsize::new(0));
        handles.push(ShardHandle::new(ctx, wake, Arc::clone(&load)));
        commands.push((crx, load));
        polls.push(poll);
    }
    let peers: Arc<[Peer]> = peers.into();
    let now = Instant::now();
    let mut threads = Vec::with_capacity(n);
    let parts = polls.into_iter().zip(inboxes).zip(commands).enumerate();
    for (id, ((poll, inbox), (commands, load))) in parts {
        // Shard 0 reads the socket; every shard sends on a handle of its own.
        let receiving = if id == 0 {
            Some(socket.try_clone()?)
        } else {
            None
        };
        let tcp = match (id, tcp.take()) {
            (0, Some(listener)) => Some(crate::tcp::Tcp::new(listener, poll.registry(), TCP, now)?),
            _ => None,
        };
        let writable = socket.try_clone()?;
        let sink = UdpSink(socket.try_clone()?);
        let shard = Shard::new(
            ShardConfig {
                id,
                shards: n,
                candidates: candidates.clone(),
                tcp_candidates: tcp_candidates.clone(),
                dtls: Arc::clone(&dtls),
                congestion_feedback: !config.test_no_congestion_feedback,
                // Publishers live on shard 0, so their recordings are made there.
                recorder: if id == 0 { recorder.take() } else { None },
                files: files.clone(),
                commands_refused: Arc::clone(&refused),
                outbox: Outbox::new(Box::new(sink), wildcard, config.test_send_loss),
                pending_clients: pending_clients.clone(),
            },
            now,
            Rng::system(),
        )?;
        let shell = Shell::new(
            shard,
            poll,
            receiving,
            tcp,
            writable,
            commands,
            inbox,
            Arc::clone(&peers),
            load,
        )?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("media-{id}"))
                .spawn(move || shell.run())?,
        );
    }
    drop(socket);
    Ok(Engine {
        handle: EngineHandle::with_shards(handles).counting_refusals(refused),
        udp_addr,
        threads,
    })
}
