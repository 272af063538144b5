#![no_main]
//! Handshake fragment reassembly against a model: fragments of four messages, in any order,
//! overlapping, repeated, tiny, with lengths that disagree. Whatever the reassembler hands
//! out must be the message's true bytes, in message_seq order; a message whose every byte
//! arrived in accepted fragments must come out; and the bookkeeping stays within what the
//! accepted fragments allow (a range not touching either end of a message is at least
//! MIN_FRAGMENT long) and within the connection's fragment budget.
//!
//! Input: one byte of flags (bit 0: a server before the cookie exchange), 8 bytes of message
//! lengths, then 6 bytes per fragment: seq, offset (2), length (2), flags.

use rtc::dtls::msgs::HandshakeHeader;
use rtc::dtls::reassembly::{Inserted, MAX_FRAGMENTS, MIN_FRAGMENT, Reassembler};

const MESSAGES: usize = 4;

fn byte(seq: usize, i: usize) -> u8 {
    (i.wrapping_mul(7) as u8) ^ (seq as u8).wrapping_mul(0x35)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((lens, ops)) = rest.split_at_checked(2 * MESSAGES) else { return };
    let lens: Vec<usize> = lens
        .chunks_exact(2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])) % 3000)
        .collect();
    let any_seq = mode & 1 == 1;
    let mut re = Reassembler::new(any_seq);
    let mut covered: Vec<Vec<bool>> = lens.iter().map(|&n| vec![false; n]).collect();
    // A message that saw a fragment with a wrong length may be stuck with that length.
    let mut tainted = [false; MESSAGES];
    let mut delivered = [false; MESSAGES];
    let mut accepted = 0usize;
    let mut next = 0usize;
    for op in ops.chunks_exact(6) {
        let seq = usize::from(op[0]) % MESSAGES;
        let len = lens[seq];
        let offset = usize::from(u16::from_be_bytes([op[1], op[2]])) % (len + 1);
        let flen = usize::from(u16::from_be_bytes([op[3], op[4]])) % (len - offset + 1);
        let wrong_len = op[5] & 1 == 1;
        let claimed = if wrong_len { len + 1 } else { len };
        let body: Vec<u8> = (offset..offset + flen).map(|i| byte(seq, i)).collect();
        let h = HandshakeHeader {
            msg_type: 11,
            length: claimed as u32,
            message_seq: seq as u16,
            fragment_offset: offset as u32,
            fragment_length: flen as u32,
        };
        let r = re.insert(0, &h, &body);
        if r == Inserted::Buffered {
            accepted += 1;
            let middle = offset != 0 && offset + flen < claimed;
            assert!(!middle || flen >= MIN_FRAGMENT, "a tiny middle fragment was taken");
            if wrong_len {
                tainted[seq] = true;
            } else {
                covered[seq][offset..offset + flen].iter_mut().for_each(|c| *c = true);
            }
        }
        assert!(re.fragments_taken() <= MAX_FRAGMENTS);
        while let Some(m) = re.pop() {
            let s = usize::from(m.seq);
            assert!(s < MESSAGES && !delivered[s], "seq {s} delivered twice or invented");
            for (i, b) in m.body.iter().enumerate() {
                assert_eq!(*b, byte(s, i), "seq {s} byte {i}");
            }
            assert!(m.body.len() == lens[s] || tainted[s], "seq {s} has the wrong length");
            if any_seq {
                // Before the cookie a ClientHello may come again: it starts from nothing.
                covered[s].iter_mut().for_each(|c| *c = false);
                tainted[s] = false;
            } else {
                assert_eq!(s, next, "out of order");
                next += 1;
                delivered[s] = true;
            }
        }
        // Every message that is complete by the model, and due, came out.
        for s in 0..MESSAGES {
            let due = any_seq || s == next;
            let full = lens[s] > 0 && covered[s].iter().all(|&c| c);
            if due && full && !tainted[s] && !delivered[s] {
                panic!("seq {s} is complete but was not delivered");
            }
        }
        let bound: usize = (0..MESSAGES)
            .filter(|&s| !delivered[s])
            .map(|s| (lens[s] + 1) / MIN_FRAGMENT + 2)
            .sum();
        assert!(re.ranges_kept() <= bound.min(accepted), "{} ranges", re.ranges_kept());
    }
});
