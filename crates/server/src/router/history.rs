//! A track's recent packets, kept once for every viewer: NACKs are answered from it
//! (RFC 4585 §6.2.1) and a joining viewer starts from its latest keyframe (the GOP cache).

/// A ring of the last `capacity` packets of one track, numbered in arrival order.
#[derive(Debug)]
pub struct History {
    slots: Vec<Slot>,
    /// Number of packets pushed so far; the next one gets this index.
    next: u64,
    /// Index of the first packet of the latest keyframe.
    keyframe: Option<u64>,
}

#[derive(Debug, Default)]
struct Slot {
    index: u64,
    keyframe_start: bool,
    data: Vec<u8>,
}

impl History {
    /// A ring of `capacity` packets (rounded up to a power of two). Buffers are reused, so a
    /// full ring allocates nothing more.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.next_power_of_two().max(2);
        History {
            slots: (0..capacity)
                .map(|_| Slot {
                    index: u64::MAX,
                    ..Slot::default()
                })
                .collect(),
            next: 0,
            keyframe: None,
        }
    }

    fn slot(&self, index: u64) -> usize {
        (index as usize) & (self.slots.len() - 1)
    }

    /// Stores a packet and returns its index.
    pub fn push(&mut self, packet: &[u8], keyframe_start: bool) -> u64 {
        let index = self.next;
        let at = self.slot(index);
        if let Some(slot) = self.slots.get_mut(at) {
            slot.index = index;
            slot.keyframe_start = keyframe_start;
            slot.data.clear();
            slot.data.extend_from_slice(packet);
        }
        if keyframe_start {
            self.keyframe = Some(index);
        }
        self.next += 1;
        index
    }

    /// Marks packet `index` (still in the ring) as the start of the latest keyframe: a later
    /// packet of its frame showed the frame is one.
    pub fn mark_keyframe(&mut self, index: u64) {
        let at = self.slot(index);
        if let Some(slot) = self.slots.get_mut(at).filter(|s| s.index == index) {
            slot.keyframe_start = true;
            if self.keyframe.is_none_or(|k| k < index) {
                self.keyframe = Some(index);
            }
        }
    }

    /// The packet with this index, if it is still in the ring.
    pub fn get(&self, index: u64) -> Option<&[u8]> {
        let slot = self.slots.get(self.slot(index))?;
        (slot.index == index).then_some(slot.data.as_slice())
    }

    /// The index the next packet will get.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Where the latest keyframe starts, if it is still wholly in the ring.
    pub fn keyframe_start(&self) -> Option<u64> {
        self.keyframe
            .filter(|&k| self.next - k <= self.slots.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn keeps_the_last_packets_and_the_latest_keyframe() {
        let mut h = History::new(6); // rounds up to 8
        assert_eq!(h.keyframe_start(), None);
        for i in 0..10u8 {
            h.push(&[i; 3], i == 3 || i == 7);
        }
        assert_eq!(h.get(1), None, "overwritten");
        assert_eq!(h.get(2), Some(&[2u8; 3][..]));
        assert_eq!(h.get(9), Some(&[9u8; 3][..]));
        assert_eq!(h.get(10), None, "not yet");
        assert_eq!(h.keyframe_start(), Some(7));
        for i in 10..16u8 {
            h.push(&[i], false);
        }
        assert_eq!(h.keyframe_start(), None, "the keyframe left the ring");
        assert_eq!(h.next_index(), 16);
    }
}
