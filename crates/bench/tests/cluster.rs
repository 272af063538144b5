#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The cluster scenario (issue 11), small: an origin and two edges started with `--origin`,
//! real leanrtc processes on loopback, against one node. Asserts that it works — every
//! viewer of both runs receives media, the origin serves exactly one relay session per
//! edge, each edge serves its viewers from a relay, every probe gets media — never how
//! fast anything is.

use std::time::Duration;

use bench::load::cluster;
use bench::load::run::Options;
use bench::load::scenario::Scenario;
use bench::load::server::{ServerKind, ServerSpec};

mod common;
use common::leanrtc_binary;

#[test]
fn six_viewers_over_two_edges_against_one_node() {
    let scenario = Scenario {
        probes: 2,
        ..Scenario::cluster(6)
    };
    let opts = Options {
        warmup: Duration::from_millis(300),
        measure: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(15),
        publisher_settle: Duration::ZERO,
        ..Options::default()
    };
    let spec = ServerSpec::plain(ServerKind::Leanrtc);
    let rows = cluster::run(&scenario, &spec, &leanrtc_binary(), &opts).expect("the run");
    assert_eq!(rows.len(), 2);
    let (direct, relayed) = (&rows[0], &rows[1]);
    assert_eq!(direct.server, "leanrtc-direct");
    assert_eq!(relayed.server, "leanrtc-relayed");
    for r in &rows {
        assert_eq!(r.post_failures, 0, "{}: {:?}", r.server, r.errors);
        assert_eq!(r.receiving, 6, "{}: viewers receiving: {r:?}", r.server);
        assert!(r.loss_mean < 0.5, "{}: {r:?}", r.server);
        assert!(r.latency_samples > 0, "{}: no latency samples", r.server);
        assert!(r.server_cpu.is_some_and(|c| c > 0.0), "{}: CPU", r.server);
    }
    let c = relayed.cluster.as_ref().expect("the cluster's figures");
    assert!(direct.cluster.is_none());

    // The origin: the publisher's stream, with one WHEP session per edge.
    let origin = c.origin().expect("an origin");
    let at_origin = origin.stream.as_ref().expect("the stream at the origin");
    assert_eq!(
        (at_origin.kind.as_str(), at_origin.viewers, origin.viewers),
        ("live", 2, 0),
        "{c:?}"
    );
    // Each edge: a relay with its three viewers.
    let edges: Vec<_> = c.edges().collect();
    assert_eq!(edges.len(), 2, "{c:?}");
    for e in &edges {
        let s = e.stream.as_ref().expect("the stream at an edge");
        assert_eq!(
            (s.kind.as_str(), s.viewers, e.viewers),
            ("relay", 3, 3),
            "{c:?}"
        );
        assert!(
            e.cpu.is_some() && e.sent_per_s.is_some_and(|s| s > 0.0),
            "{c:?}"
        );
    }
    // The reference node has as many viewers as the cluster has edges.
    let reference = c.reference().expect("the reference node");
    let s = reference
        .stream
        .as_ref()
        .expect("the stream at the reference");
    assert_eq!((s.kind.as_str(), s.viewers), ("live", 2), "{c:?}");

    // Probes: at each edge 2 first viewers of a probe stream and 2 of the watched one; at the
    // one node, 4 of the watched one. Every one got media.
    assert_eq!((c.cold.len(), c.warm.len(), c.direct.len()), (4, 4, 4));
    for p in c.cold.iter().chain(&c.warm).chain(&c.direct) {
        assert!(p.error.is_none(), "{p:?}");
        let (answer, first) = (p.answer_ms.unwrap(), p.first_packet_ms.unwrap());
        assert!(answer > 0.0 && first >= answer, "{p:?}");
    }

    let tables = cluster::tables(&rows);
    assert!(
        tables.contains("| cluster-6 | leanrtc-relayed | A | origin | 0 | live 2 |"),
        "{tables}"
    );
    assert!(
        tables.contains("| edge, no relay yet | 4 | 4 |"),
        "{tables}"
    );
}
