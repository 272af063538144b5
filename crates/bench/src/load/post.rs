//! The signalling load: offers POSTed from a few threads at once (the HTTP client blocks),
//! each at its scheduled time (a join storm) or as soon as a thread is free, and the
//! sessions handed to the client thread that will drive them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::dtls::DtlsConfig;
use rtc::sdp::{Codec, H264Profile};

use crate::load::clients::{Command, Handle};
use crate::load::procfs;
use crate::{Kind, Offer, PublisherConfig};

/// One session to set up.
#[derive(Debug, Clone)]
pub struct Job {
    /// Publish or view.
    pub kind: Kind,
    /// The stream's name.
    pub stream: String,
    /// Not before this time.
    pub at: Option<Instant>,
    /// Which client thread drives it.
    pub thread: usize,
    /// A publisher's media.
    pub publisher: Option<PublisherConfig>,
    /// Over ICE-TCP from this address ([`Offer::over_tcp`]); None: over UDP.
    pub tcp_from: Option<IpAddr>,
}

/// What the POSTing threads did.
#[derive(Debug, Default)]
pub struct PostReport {
    /// Sessions answered with 201 and handed on.
    pub ok: usize,
    /// What went wrong (the first few, and a count of all).
    pub errors: Vec<String>,
    /// All errors.
    pub failed: usize,
    /// The CPU time the POSTing threads took.
    pub cpu: Duration,
}

/// POSTs every job from `concurrency` threads and returns when all are done.
pub fn post_all(
    jobs: Vec<Job>,
    http: SocketAddr,
    dtls: &Arc<DtlsConfig>,
    threads: &[Handle],
    concurrency: usize,
) -> PostReport {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let report = Arc::new(Mutex::new(PostReport::default()));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (jobs, next, report) = (Arc::clone(&jobs), Arc::clone(&next), Arc::clone(&report));
            let (dtls, threads) = (Arc::clone(dtls), threads.to_vec());
            std::thread::spawn(move || {
                let tid = procfs::current_tid();
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Some(at) = job.at {
                        std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    }
                    let result = post(job, http, &dtls, &threads);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    match result {
                        Ok(()) => r.ok += 1,
                        Err(e) => {
                            r.failed += 1;
                            if r.errors.len() < 5 {
                                r.errors.push(e);
                            }
                        }
                    }
                }
                let cpu = procfs::thread_cpu_time(tid).unwrap_or_default();
                report.lock().unwrap_or_else(|e| e.into_inner()).cpu += cpu;
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Arc::try_unwrap(report)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
}

/// What the load generator's clients offer: publishers VP8, viewers VP8, H.264 and Opus.
pub(crate) fn offer_codecs(kind: Kind) -> &'static [Codec] {
    match kind {
        Kind::Publish => &[Codec::Vp8],
        Kind::View => &[
            Codec::Vp8,
            Codec::H264(H264Profile::ConstrainedBaseline),
            Codec::Opus,
        ],
    }
}

fn post(
    job: &Job,
    http: SocketAddr,
    dtls: &Arc<DtlsConfig>,
    threads: &[Handle],
) -> Result<(), String> {
    let mut offer = Offer::new(
        job.kind,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        offer_codecs(job.kind),
        dtls,
    )
    .map_err(|e| e.to_string())?;
    if let Some(from) = job.tcp_from {
        offer = offer.over_tcp(from);
    }
    let session = offer
        .post(http, &job.stream, Arc::clone(dtls))
        .map_err(|e| format!("POST {}: {e}", job.kind.path(&job.stream)))?;
    let thread = threads
        .get(job.thread % threads.len().max(1))
        .ok_or("no client thread")?;
    let command = match &job.publisher {
        Some(config) => Command::Publish(Box::new(session), Box::new(config.clone())),
        None => Command::View(Box::new(session)),
    };
    if thread.send(command) {
        Ok(())
    } else {
        Err("the client thread is gone".into())
    }
}
