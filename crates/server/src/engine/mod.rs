//! The media thread: owns the UDP socket, every peer and the router. HTTP talks to it only
//! through [`Command`]s; nothing on the packet path takes a lock.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::Config;
use crate::control::{Command, EngineError, EngineHandle};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// A started media thread.
#[derive(Debug)]
pub struct Engine {
    /// The handle HTTP uses.
    pub handle: EngineHandle,
    /// The UDP address actually bound (the port may have been 0).
    pub udp_addr: SocketAddr,
    /// The thread itself; it ends when every handle is dropped.
    pub thread: std::thread::JoinHandle<()>,
}

/// Binds the media socket and starts the media thread.
pub fn start(config: &Config) -> io::Result<Engine> {
    let poll = Poll::new()?;
    let mut socket = UdpSocket::bind(config.udp)?;
    let udp_addr = socket.local_addr()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel();
    let wake = {
        let waker = Arc::clone(&waker);
        // A failed wake only delays the command until the next packet or timer.
        Arc::new(move || drop(waker.wake())) as Arc<dyn Fn() + Send + Sync>
    };
    let mut state = MediaLoop {
        poll,
        socket,
        commands: rx,
    };
    let thread = std::thread::Builder::new()
        .name("media".into())
        .spawn(move || state.run())?;
    Ok(Engine {
        handle: EngineHandle::new(tx, wake),
        udp_addr,
        thread,
    })
}

struct MediaLoop {
    poll: Poll,
    socket: UdpSocket,
    commands: Receiver<Command>,
}

impl MediaLoop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = Some(Duration::from_millis(100));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("media thread: poll failed: {e}");
                    return;
                }
            }
            let now = Instant::now();
            loop {
                match self.socket.recv_from(&mut buf) {
                    Ok((len, from)) => self.handle_datagram(now, from, &buf[..len]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::warn!("media socket: {e}");
                        break;
                    }
                }
            }
            loop {
                match self.commands.try_recv() {
                    Ok(cmd) => self.handle_command(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
        }
    }

    fn handle_datagram(&mut self, _now: Instant, from: SocketAddr, bytes: &[u8]) {
        tracing::trace!(%from, len = bytes.len(), "datagram");
    }

    fn handle_command(&mut self, cmd: Command) {
        // Replies go to an HTTP task that may have given up; a closed channel is fine.
        match cmd {
            Command::Create { stream, reply, .. } => {
                drop(reply.send(Err(EngineError::UnknownStream(stream))))
            }
            Command::Patch { session, reply, .. } => {
                drop(reply.send(Err(EngineError::UnknownSession(session))))
            }
            Command::Delete { session, reply } => {
                drop(reply.send(Err(EngineError::UnknownSession(session))))
            }
            Command::Streams { reply } => drop(reply.send(Vec::new())),
        }
    }
}
