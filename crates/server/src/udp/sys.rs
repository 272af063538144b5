//! The server's only platform code: Linux `recvmmsg`/`sendmmsg` with the control messages
//! IP_PKTINFO / IPV6_PKTINFO (which local address a datagram came to, or leaves from),
//! SCM_TIMESTAMPNS (when the kernel received it) and UDP_SEGMENT (GSO: one `sendmsg` header
//! carries several equal-sized datagrams).
//!
//! Everything here is plain data in, plain data out; the policy (batching, GSO grouping,
//! fallbacks, counters) lives in the safe code of `udp/mod.rs`.

// std has no batched socket calls and no control messages, so this file calls libc directly:
// it is the one place in the workspace that opts out of `deny(unsafe_code)`. Every block is
// small and says why it is sound; the headers it hands the kernel only ever point into this
// stack frame or into slices the caller lends for the duration of the call.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::RawFd;
use std::ptr;
use std::time::Duration;

/// Most messages (`mmsghdr`s) one `recvmmsg`/`sendmmsg` call takes.
pub(super) const MAX_MSGS: usize = 64;
/// Most datagrams (`iovec`s) one `sendmmsg` call carries over all its messages.
pub(super) const MAX_IOVS: usize = 512;
/// Room for the control messages of one datagram: IPV6_PKTINFO (40) + SCM_TIMESTAMPNS (32)
/// received, IPV6_PKTINFO + UDP_SEGMENT (24) sent.
const CMSG_BUF: usize = 80;

/// Control-message space, aligned for `cmsghdr` as the CMSG_* macros require.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Cmsgs([u8; CMSG_BUF]);

/// A socket address in the kernel's layout, built without `unsafe`.
#[repr(C)]
#[derive(Clone, Copy)]
union RawAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

/// What `recvmmsg` said about one datagram.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecvMeta {
    /// The sender.
    pub source: SocketAddr,
    /// The datagram's destination address (from IP_PKTINFO / IPV6_PKTINFO), if enabled.
    pub dst: Option<IpAddr>,
    /// Bytes written to the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (MSG_TRUNC): the bytes are incomplete.
    pub truncated: bool,
    /// When the kernel received it (SO_TIMESTAMPNS, if enabled): CLOCK_REALTIME, as time
    /// since the Unix epoch.
    pub stamp: Option<Duration>,
}

impl RecvMeta {
    pub(super) const EMPTY: Self = Self {
        source: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        dst: None,
        len: 0,
        truncated: true,
        stamp: None,
    };
}

/// One message for `sendmmsg`: the datagrams `iovs` (indices into the caller's `IoSlice`s),
/// all to `to`, from the local address `from` if given; `segment` > 0 asks for GSO with
/// that segment size (every datagram but the last exactly that long).
#[derive(Debug, Clone)]
pub(super) struct OutMsg {
    pub to: SocketAddr,
    pub from: Option<IpAddr>,
    pub iovs: Range<usize>,
    pub segment: u16,
}

impl OutMsg {
    pub(super) const EMPTY: Self = Self {
        to: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        from: None,
        iovs: 0..0,
        segment: 0,
    };
}

/// Receives up to `meta.len()` datagrams, the i-th into the i-th `slot`-sized chunk of
/// `storage`, with one `recvmmsg` call. Returns how many arrived.
pub(super) fn recv_mmsg(
    fd: RawFd,
    storage: &mut [u8],
    slot: usize,
    meta: &mut [RecvMeta],
) -> io::Result<usize> {
    let empty = libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    };
    let mut iovs = [empty; MAX_MSGS];
    let mut n = 0;
    for (iov, buf) in iovs
        .iter_mut()
        .zip(storage.chunks_exact_mut(slot).take(meta.len()))
    {
        *iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        n += 1;
    }
    // SAFETY: all-zero bytes are a valid value of these plain C structs (integers and null
    // pointers).
    let (mut names, mut hdrs) = unsafe {
        (
            std::mem::zeroed::<[libc::sockaddr_storage; MAX_MSGS]>(),
            std::mem::zeroed::<[libc::mmsghdr; MAX_MSGS]>(),
        )
    };
    let mut ctrls = [Cmsgs([0; CMSG_BUF]); MAX_MSGS];
    let (iov_p, name_p, ctrl_p) = (iovs.as_mut_ptr(), names.as_mut_ptr(), ctrls.as_mut_ptr());
    for (i, h) in hdrs.iter_mut().take(n).enumerate() {
        h.msg_hdr.msg_name = name_p.wrapping_add(i).cast();
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_hdr.msg_iov = iov_p.wrapping_add(i);
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = ctrl_p.wrapping_add(i).cast();
        h.msg_hdr.msg_controllen = CMSG_BUF as _;
    }
    // SAFETY: the first `n` headers point at `names`, `iovs` and `ctrls` of this frame and at
    // chunks of `storage`, each with its true length; all outlive the call.
    let got = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr(), n as _, 0, ptr::null_mut()) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = (got as usize).min(n);
    for ((m, h), name) in meta.iter_mut().zip(&hdrs).zip(&names).take(got) {
        let (dst, stamp) = recv_cmsgs(&h.msg_hdr);
        *m = RecvMeta {
            source: from_storage(name).unwrap_or(RecvMeta::EMPTY.source),
            dst,
            len: h.msg_len as usize,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            stamp,
        };
    }
    Ok(got)
}

/// Sends `msgs` with one `sendmmsg` call; `v6` says the socket is AF_INET6 (IPv4
/// destinations are then written as v4-mapped). Returns how many messages the kernel took:
/// fewer than asked means the next one would fail (the caller retries to see why).
pub(super) fn send_mmsg(
    fd: RawFd,
    v6: bool,
    iovs: &[IoSlice<'_>],
    msgs: &[OutMsg],
) -> io::Result<usize> {
    let n = msgs.len().min(MAX_MSGS);
    let mut names = [to_raw(SocketAddr::from(([0, 0, 0, 0], 0)), false); MAX_MSGS];
    let mut ctrls = [(Cmsgs([0; CMSG_BUF]), 0); MAX_MSGS];
    for ((msg, name), (ctrl, used)) in msgs.iter().zip(&mut names).zip(&mut ctrls) {
        if msg.iovs.start > msg.iovs.end || msg.iovs.end > iovs.len() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        *name = to_raw(msg.to, v6);
        *used = put_cmsgs(ctrl, msg.from, msg.segment);
    }
    // SAFETY: all-zero bytes are a valid value of this plain C struct.
    let mut hdrs = unsafe { std::mem::zeroed::<[libc::mmsghdr; MAX_MSGS]>() };
    for ((msg, h), ((name, name_len), (ctrl, used))) in msgs
        .iter()
        .zip(&mut hdrs)
        .zip(names.iter_mut().zip(ctrls.iter_mut()))
    {
        let data = iovs.get(msg.iovs.clone()).unwrap_or(&[]);
        h.msg_hdr.msg_name = ptr::from_mut(name).cast();
        h.msg_hdr.msg_namelen = *name_len;
        // `IoSlice` is documented to be ABI-compatible with `iovec` on Unix; the kernel only
        // reads send buffers, so the `*mut` it asks for is never written through.
        h.msg_hdr.msg_iov = data.as_ptr().cast::<libc::iovec>().cast_mut();
        h.msg_hdr.msg_iovlen = data.len();
        if *used > 0 {
            h.msg_hdr.msg_control = ptr::from_mut(ctrl).cast();
            h.msg_hdr.msg_controllen = *used as _;
        }
    }
    // SAFETY: the first `n` headers point at `names` and `ctrls` of this frame (with their
    // used lengths) and at `iovs`, which the caller lends for the call; all outlive it.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Writes the send-side control messages; returns the bytes used (0: none).
fn put_cmsgs(buf: &mut Cmsgs, from: Option<IpAddr>, segment: u16) -> usize {
    let mut off = 0;
    match from {
        Some(IpAddr::V4(ip)) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(ip.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            put_cmsg(buf, &mut off, libc::IPPROTO_IP, libc::IP_PKTINFO, info);
        }
        Some(IpAddr::V6(ip)) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: ip.octets(),
                },
                ipi6_ifindex: 0,
            };
            put_cmsg(buf, &mut off, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info);
        }
        None => {}
    }
    if segment > 0 {
        put_cmsg(buf, &mut off, libc::SOL_UDP, libc::UDP_SEGMENT, segment);
    }
    off
}

/// Appends one control message at `*off` (a multiple of the cmsg alignment) if it fits.
fn put_cmsg<T: Copy>(buf: &mut Cmsgs, off: &mut usize, level: i32, kind: i32, value: T) {
    // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on their argument.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<T>() as u32) as usize,
            libc::CMSG_LEN(size_of::<T>() as u32) as usize,
        )
    };
    if *off + space > CMSG_BUF {
        return; // Cannot happen with the sizes above; a missing cmsg only loses an option.
    }
    let hdr = buf
        .0
        .as_mut_ptr()
        .wrapping_add(*off)
        .cast::<libc::cmsghdr>();
    // SAFETY: `hdr..hdr + space` lies inside `buf`, which is 8-aligned, and `off` is a
    // multiple of CMSG_ALIGN, so `hdr` is aligned for `cmsghdr`; the value is written
    // unaligned right after the header, within `space`.
    unsafe {
        (*hdr).cmsg_len = len as _;
        (*hdr).cmsg_level = level;
        (*hdr).cmsg_type = kind;
        libc::CMSG_DATA(hdr).cast::<T>().write_unaligned(value);
    }
    *off += space;
}

/// The destination address of a received datagram, from its IP_PKTINFO / IPV6_PKTINFO, and
/// its kernel receive time, from SCM_TIMESTAMPNS.
fn recv_cmsgs(hdr: &libc::msghdr) -> (Option<IpAddr>, Option<Duration>) {
    let (mut dst, mut stamp) = (None, None);
    // SAFETY: `hdr` came back from `recvmmsg`: `msg_control` points at a live `Cmsgs` and
    // `msg_controllen` is what the kernel wrote there, which bounds every CMSG_* step; each
    // payload is read unaligned only after checking its length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            let len = (*c).cmsg_len as usize;
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if len >= libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize =>
                {
                    let info = data.cast::<libc::in_pktinfo>().read_unaligned();
                    dst = Some(Ipv4Addr::from(info.ipi_addr.s_addr.to_ne_bytes()).into());
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if len >= libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize =>
                {
                    let info = data.cast::<libc::in6_pktinfo>().read_unaligned();
                    dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr).into());
                }
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                    if len >= libc::CMSG_LEN(size_of::<libc::timespec>() as u32) as usize =>
                {
                    let ts = data.cast::<libc::timespec>().read_unaligned();
                    stamp = match (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
                        (Ok(s), Ok(ns)) if ns < 1_000_000_000 => Some(Duration::new(s, ns)),
                        _ => None,
                    };
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    (dst, stamp)
}

/// A kernel socket address; IPv4 is written v4-mapped for an AF_INET6 socket.
fn to_raw(addr: SocketAddr, v6_socket: bool) -> (RawAddr, libc::socklen_t) {
    let addr = match addr {
        SocketAddr::V4(a) if v6_socket => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        a => a,
    };
    match addr {
        SocketAddr::V4(a) => (
            RawAddr {
                v4: libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                },
            },
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ),
        SocketAddr::V6(a) => (
            RawAddr {
                v6: libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                },
            },
            size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        ),
    }
}

/// The sender's address as the kernel wrote it.
fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a `sockaddr_in` (its family says so); `sockaddr_storage`
            // is larger and at least as aligned.
            let a = unsafe { &*ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let a = unsafe { &*ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `setsockopt` with an `int` value.
pub(super) fn set_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: passes a pointer to a live `c_int` and its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            ptr::from_ref(&value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `getsockopt` of an `int` value.
pub(super) fn get_opt(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: passes a pointer to a live `c_int` and its exact size, which the kernel updates.
    let r =
        unsafe { libc::getsockopt(fd, level, name, ptr::from_mut(&mut value).cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// Raises the soft limit on open files to the hard limit (each HTTP connection is a file
/// descriptor; distributions start processes at 1024). Returns (old soft, new soft).
pub(crate) fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: passes a pointer to a live `rlimit`, which the kernel fills.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let old = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: passes a pointer to a live, initialised `rlimit`, which the kernel reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((old, lim.rlim_cur))
}

/// Hands the allocator's free memory back to the kernel (glibc `malloc_trim`). After a
/// flood of sessions ends, glibc keeps their freed memory in its arenas: the process's
/// resident size would stay at its peak. Not a socket call, but this is the one file that
/// may call libc.
pub(crate) fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and shrinks the allocator's own arenas (taking their
    // locks); it takes no pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
