//! The HTTP/1.1 accept loop, with the limits a public server needs: each connection is a file
//! descriptor, so a client that opens many and sends slowly (slowloris) must not be able to
//! hold them all.
//!
//! * headers must arrive within `header_timeout` of the connection opening or of the previous
//!   response (so an idle keep-alive connection is closed after it too);
//! * a request's body must arrive within `--http-body-timeout` (see `read_body` in `http`);
//! * a connection on which no byte moves either way for `idle_timeout` is closed (a client
//!   that stops reading its response);
//! * at most `max_per_address` connections per client IP and `max_connections` in all; the
//!   next one gets a `503` and is closed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower_service::Service;

use super::ratelog::RateLog;

/// The limits; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_address: usize,
}

/// How long shutdown waits for open requests to finish.
const DRAIN: Duration = Duration::from_secs(2);

/// Sent to a connection over a limit before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 32\r\n\r\ntoo many connections, try later\n";

/// Open connections, in all and per client address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in [`Counts`], given back when it is dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

/// Takes a slot for `ip`, or says which limit is reached.
fn admit(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &Limits) -> Result<Slot, &'static str> {
    let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
    if c.total >= limits.max_connections {
        return Err("the server's connection limit");
    }
    let n = c.by_ip.entry(ip).or_default();
    if *n >= limits.max_per_address {
        return Err("the per-address connection limit");
    }
    *n += 1;
    c.total += 1;
    Ok(Slot {
        counts: Arc::clone(counts),
        ip,
    })
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut refused_log = RateLog::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: the connections in hand will end (they all have
                    // timeouts); wait a little instead of spinning on the listener.
                    if let Some(skipped) = refused_log.allow(Instant::now()) {
                        tracing::warn!(skipped, "cannot accept an HTTP connection: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match admit(&counts, peer.ip(), &limits) {
            Ok(slot) => slot,
            Err(limit) => {
                if let Some(skipped) = refused_log.allow(Instant::now()) {
                    tracing::warn!(client = %peer, skipped, "HTTP connection refused: {limit} is reached");
                }
                // Best effort, without waiting: the socket buffer takes it or it is dropped.
                let _ = tcp.try_write(FULL);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            tcp,
            peer,
            app.clone(),
            limits,
            slot,
            stop_rx.clone(),
        ));
    }
    // Stop accepting; idle connections close now, busy ones after their response. One still
    // sending its headers is not waited for past DRAIN (the caller drops the runtime, which
    // ends it).
    drop((listener, stop_rx));
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN, stop_tx.closed()).await.is_err() {
        tracing::warn!(
            grace_s = DRAIN.as_secs(),
            "HTTP requests still open after the grace period; stopping without them"
        );
    }
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: tcp,
        start,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(req.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let last = start + Duration::from_millis(activity.load(Ordering::Relaxed));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer, "HTTP connection ended: {e}");
                }
                break;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(last + limits.idle_timeout) => {
                let now_last = start + Duration::from_millis(activity.load(Ordering::Relaxed));
                if now_last == last {
                    tracing::debug!(client = %peer, "HTTP connection idle for {:?}; closed", limits.idle_timeout);
                    break;
                }
            }
        }
    }
    drop(slot);
    // `stop` (a receiver) drops here too, which is what `serve` waits for at shutdown.
}

/// A TCP stream that notes when a byte last moved, in milliseconds after `start`.
struct Watched {
    inner: TcpStream,
    start: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_in_all_and_given_back() {
        let limits = Limits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_per_address: 2,
        };
        let counts = Arc::new(Mutex::new(Counts::default()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = admit(&counts, a, &limits).unwrap();
        let _a2 = admit(&counts, a, &limits).unwrap();
        assert!(admit(&counts, a, &limits).is_err(), "a third from a");
        let _b1 = admit(&counts, b, &limits).unwrap();
        assert!(admit(&counts, b, &limits).is_err(), "a fourth in all");
        drop(a1);
        let _b2 = admit(&counts, b, &limits).unwrap();
        drop((_a2, _b1, _b2));
        let c = counts.lock().unwrap();
        assert_eq!((c.total, c.by_ip.len()), (0, 0));
    }
}
