//! No allocation per packet: once an SSRC is known, protect and unprotect of SRTP and SRTCP
//! allocate nothing on the Rust heap, for both profiles. (aws-lc's own C allocations do not go
//! through Rust's allocator; running this binary under valgrind with `SRTP_ALLOC_ITERS` set to
//! two different counts shows the same total of heap allocations, so they are per session.)

use rtc::srtp::{SrtpProfile, SrtpSession};

fn iterations() -> u16 {
    std::env::var("SRTP_ALLOC_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn rtp(seq: u16) -> [u8; 1212] {
    let mut p = [0x5au8; 1212];
    p[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0, 1, 0, 0, 0, 42]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p
}

#[test]
fn per_packet_path_does_not_allocate() {
    let rtcp_plain = [0x81, 201, 0, 1, 0, 0, 0, 42];
    for profile in [SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes128Gcm] {
        let key = [7u8; 16];
        let salt = vec![9u8; profile.salt_len()];
        let mut tx = SrtpSession::new(profile, &key, &salt).unwrap();
        let mut rx = SrtpSession::new(profile, &key, &salt).unwrap();
        let mut buf = [0u8; 1300];
        // The first packet of an SSRC may allocate its state entry.
        let mut send = |tx: &mut SrtpSession, rx: &mut SrtpSession, seq: u16| {
            buf[..1212].copy_from_slice(&rtp(seq));
            let n = tx.protect_rtp(&mut buf, 1212).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]).unwrap(), 1212);
            buf[..8].copy_from_slice(&rtcp_plain);
            let n = tx.protect_rtcp(&mut buf, 8).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]).unwrap(), 8);
        };
        send(&mut tx, &mut rx, 0);
        let last = iterations();
        let info = allocation_counter::measure(|| {
            for seq in 1..=last {
                send(&mut tx, &mut rx, seq);
            }
        });
        assert_eq!(info.count_total, 0, "{profile:?}: {info:?}");
    }
}
