//! The scenarios of issue 6: who publishes what, how many watch, how fast they join.

use std::time::Duration;

use crate::load::BenchError;

/// What the publishers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMedia {
    /// Synthetic VP8-shaped frames with a send stamp in every packet, from our publisher.
    Synthetic,
    /// The sample file: leanrtc's own file stream `sample` (VP8 + Opus); for a server
    /// without file streams, our publisher sends the same IVF file (video only) as `sample`.
    SampleFile,
    /// Nothing: a publisher that connects and sends no media (see [`Scenario::idle_storm`]).
    Silent,
}

/// One scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Its name in tables and file names (`a-500`, `b-50x4`, …).
    pub name: String,
    /// Streams, each with one publisher (or the file).
    pub rooms: usize,
    /// Viewers of each stream.
    pub viewers_per_room: usize,
    /// What is sent.
    pub media: StreamMedia,
    /// A join storm: every viewer's POST is spread evenly over this time.
    pub join_within: Option<Duration>,
    /// A join storm while the viewers watch (`c-storm-W+S`): after the window, this many
    /// more viewers of the first stream join as fast as the client can.
    pub joiners: usize,
    /// The cluster scenario (`cluster-N`, issue 11): the publisher on an origin node, the
    /// viewers spread over this many edge nodes that relay from it (0: one node).
    pub edges: usize,
    /// The cluster scenario: streams published to the origin besides the viewers' one, each
    /// first watched by one probe viewer per edge (a new viewer where the edge has no relay
    /// yet); as many probes join the viewers' stream where the relay exists.
    pub probes: usize,
}

impl Scenario {
    /// `rooms` publishers of synthetic media with `viewers_per_room` viewers each.
    pub fn synthetic(name: &str, rooms: usize, viewers_per_room: usize) -> Self {
        Scenario {
            name: name.to_owned(),
            rooms,
            viewers_per_room,
            media: StreamMedia::Synthetic,
            join_within: None,
            joiners: 0,
            edges: 0,
            probes: 0,
        }
    }

    /// All viewers.
    pub fn viewers(&self) -> usize {
        self.rooms * self.viewers_per_room
    }

    /// (a) one publisher to `n` viewers.
    pub fn fan_out(n: usize) -> Self {
        Self::synthetic(&format!("a-{n}"), 1, n)
    }

    /// (b) 50 rooms of one publisher and 4 viewers.
    pub fn rooms() -> Self {
        Self::synthetic("b-50x4", 50, 4)
    }

    /// (c) 500 viewers of one publisher, POSTed within one second.
    pub fn join_storm() -> Self {
        Scenario {
            join_within: Some(Duration::from_secs(1)),
            ..Self::synthetic("c-storm-500", 1, 500)
        }
    }

    /// (c) without media: `n` viewers POSTed as fast as the client can to a stream whose
    /// publisher is connected but silent, each done when its ICE and DTLS are up. What the
    /// server spends here is the cost of a connection alone: no forwarding to the viewers
    /// already up, no keyframe burst to each newcomer.
    pub fn idle_storm(n: usize) -> Self {
        Scenario {
            media: StreamMedia::Silent,
            ..Self::synthetic(&format!("c-idle-{n}"), 1, n)
        }
    }

    /// Viewers of (c) and of its idle variant.
    pub const STORM_VIEWERS: usize = 500;

    /// (c) as issue 16 asks for it: `watchers` viewers watch one publisher, then `joiners`
    /// more join as fast as the client can; the watchers' forwarding latency during the
    /// storm is compared with theirs in the window just before it.
    pub fn watched_storm(watchers: usize, joiners: usize) -> Self {
        Scenario {
            joiners,
            ..Self::synthetic(&format!("c-storm-{watchers}+{joiners}"), 1, watchers)
        }
    }

    /// (d) the sample file to 1000 viewers.
    pub fn sample_file() -> Self {
        Scenario {
            media: StreamMedia::SampleFile,
            ..Self::synthetic("d-sample-1000", 1, 1000)
        }
    }

    /// Issue 11's cluster scenario: one publisher on an origin node, `n` viewers spread over
    /// two edges that relay from it (`--origin`), against one node with the same `n`
    /// viewers in the same run; see [`crate::load::cluster`].
    pub fn cluster(n: usize) -> Self {
        Scenario {
            edges: 2,
            probes: Self::CLUSTER_PROBES,
            ..Self::synthetic(&format!("cluster-{n}"), 1, n)
        }
    }

    /// Streams the cluster scenario publishes for first-viewer probes (so 8 probes on
    /// two edges).
    pub const CLUSTER_PROBES: usize = 4;

    /// The viewer counts of (a) in the issue.
    pub const FAN_OUT_SIZES: [usize; 3] = [100, 500, 1000];

    /// Every scenario of the issue, in order, (a) with `fan_out` viewers.
    pub fn all(fan_out: &[usize]) -> Vec<Scenario> {
        let mut out: Vec<Scenario> = fan_out.iter().map(|&n| Self::fan_out(n)).collect();
        out.extend([
            Self::rooms(),
            Self::join_storm(),
            Self::idle_storm(Self::STORM_VIEWERS),
            Self::sample_file(),
        ]);
        out
    }

    /// Scenarios by name: `all`, `a` (one per size in `fan_out`), `a-N` (any N), `b`, `c`,
    /// `c-idle` (500 viewers), `c-idle-N`, `c-storm` (500 join while 500 watch),
    /// `c-storm-W+S`, `d`, `cluster` (1000 viewers over two edges, and on one node),
    /// `cluster-N`, or `custom-MxN` (M publishers with N viewers each); comma-separated.
    pub fn parse_list(list: &str, fan_out: &[usize]) -> Result<Vec<Scenario>, BenchError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => out.extend(Self::all(fan_out)),
                "a" => out.extend(fan_out.iter().map(|&n| Self::fan_out(n))),
                "b" | "b-50x4" => out.push(Self::rooms()),
                "c" | "c-storm-500" => out.push(Self::join_storm()),
                "c-idle" => out.push(Self::idle_storm(Self::STORM_VIEWERS)),
                "c-storm" => out.push(Self::watched_storm(
                    Self::STORM_VIEWERS,
                    Self::STORM_VIEWERS,
                )),
                "d" | "d-sample-1000" => out.push(Self::sample_file()),
                "cluster" => out.push(Self::cluster(1000)),
                _ => out.push(Self::parse_sized(name)?),
            }
        }
        if out.is_empty() {
            return Err(BenchError::Usage("no scenario given".into()));
        }
        Ok(out)
    }

    fn parse_sized(name: &str) -> Result<Scenario, BenchError> {
        let bad = || BenchError::Usage(format!("unknown scenario {name:?}"));
        if let Some(n) = name.strip_prefix("a-") {
            return Ok(Self::fan_out(n.parse().map_err(|_| bad())?));
        }
        if let Some(n) = name.strip_prefix("cluster-") {
            let n: usize = n.parse().map_err(|_| bad())?;
            // Each edge needs a viewer.
            if n < 2 {
                return Err(bad());
            }
            return Ok(Self::cluster(n));
        }
        if let Some(n) = name.strip_prefix("c-idle-") {
            return Ok(Self::idle_storm(n.parse().map_err(|_| bad())?));
        }
        if let Some((w, s)) = (name.strip_prefix("c-storm-")).and_then(|n| n.split_once('+')) {
            let (w, s) = (w.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?);
            if w == 0 || s == 0 {
                return Err(bad());
            }
            return Ok(Self::watched_storm(w, s));
        }
        let (m, n) = (name.strip_prefix("custom-"))
            .and_then(|s| s.split_once('x'))
            .ok_or_else(bad)?;
        let (m, n) = (m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        Ok(Self::synthetic(name, m, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        let sizes = Scenario::FAN_OUT_SIZES;
        assert_eq!(Scenario::parse_list("all", &sizes).unwrap().len(), 7);
        assert_eq!(Scenario::parse_list("a", &[3]).unwrap()[0].name, "a-3");
        let list = Scenario::parse_list("a-7, c,custom-2x3", &sizes).unwrap();
        assert_eq!(list[0].viewers(), 7);
        assert_eq!(list[1].join_within, Some(Duration::from_secs(1)));
        assert_eq!((list[2].rooms, list[2].viewers_per_room), (2, 3));
        let idle = Scenario::parse_list("c-idle,c-idle-20", &sizes).unwrap();
        assert_eq!(
            (idle[0].name.as_str(), idle[0].viewers()),
            ("c-idle-500", 500)
        );
        assert_eq!(
            (idle[1].media, idle[1].viewers()),
            (StreamMedia::Silent, 20)
        );
        let storms = Scenario::parse_list("c-storm,c-storm-20+30,c-storm-500", &sizes).unwrap();
        assert_eq!(
            (
                storms[0].name.as_str(),
                storms[0].viewers(),
                storms[0].joiners
            ),
            ("c-storm-500+500", 500, 500)
        );
        assert_eq!((storms[1].viewers(), storms[1].joiners), (20, 30));
        assert_eq!(storms[1].media, StreamMedia::Synthetic);
        // The storm of issue 6 (500 POSTs within 1 s) keeps its name.
        assert_eq!(
            (storms[2].joiners, storms[2].join_within),
            (0, Some(Duration::from_secs(1)))
        );
        assert!(
            Scenario::parse_list("all", &sizes)
                .unwrap()
                .iter()
                .all(|s| s.joiners == 0)
        );
        for bad in [
            "c-storm-5",
            "c-storm-0+5",
            "c-storm-5+0",
            "c-storm-x+1",
            "c-storm-+",
        ] {
            assert!(Scenario::parse_list(bad, &sizes).is_err(), "{bad}");
        }
        let cluster = Scenario::parse_list("cluster,cluster-200", &sizes).unwrap();
        assert_eq!(
            (
                cluster[0].name.as_str(),
                cluster[0].viewers(),
                cluster[0].edges
            ),
            ("cluster-1000", 1000, 2)
        );
        assert_eq!((cluster[1].viewers(), cluster[1].rooms), (200, 1));
        assert!(cluster[1].probes > 0);
        assert!(
            Scenario::parse_list("all", &sizes)
                .unwrap()
                .iter()
                .all(|s| s.edges == 0)
        );
        for bad in ["cluster-1", "cluster-x", "cluster-"] {
            assert!(Scenario::parse_list(bad, &sizes).is_err(), "{bad}");
        }
        assert!(Scenario::parse_list("e", &sizes).is_err());
        assert!(Scenario::parse_list("", &sizes).is_err());
    }
}
