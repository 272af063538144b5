#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The load generator, small: one publisher to three viewers for about two seconds against
//! leanrtc and the str0m baseline in turn. Asserts only that it works — viewers got packets,
//! the table has a row for each server and their ratio — never how fast anything is.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bench::load::report::{self, RunResult};
use bench::load::run::{self, Options};
use bench::load::scenario::Scenario;
use bench::load::server::{Server, ServerKind, ServerSpec};

mod common;
use common::leanrtc_binary;

fn small() -> Options {
    Options {
        warmup: Duration::from_millis(300),
        measure: Duration::from_secs(2),
        viewer_threads: 1,
        connect_timeout: Duration::from_secs(15),
        publisher_settle: Duration::ZERO,
        ..Options::default()
    }
}

fn run_against(kind: ServerKind, binary: &std::path::Path) -> RunResult {
    let scenario = Scenario::synthetic("smoke-1x3", 1, 3);
    // The server is a child process, killed when `run` drops it (also on error).
    let server = Server::start(kind, binary).expect("the server starts");
    let mut result = run::run(&scenario, server, &small()).expect("the run completes");
    result.server = kind.name().to_owned();
    result
}

#[test]
fn one_publisher_to_three_viewers_on_both_servers() {
    let leanrtc = leanrtc_binary();
    let str0m = PathBuf::from(env!("CARGO_BIN_EXE_str0m-sfu"));
    let results = vec![
        run_against(ServerKind::Leanrtc, &leanrtc),
        run_against(ServerKind::Str0m, &str0m),
    ];
    for r in &results {
        assert_eq!(r.post_failures, 0, "{}: {:?}", r.server, r.errors);
        assert_eq!(r.receiving, 3, "{}: viewers receiving", r.server);
        // 1.5 Mbit/s of ~1200-byte packets is ~150 packets/s to each viewer.
        assert!(r.received_pps > 3.0 * 20.0, "{}: {r:?}", r.server);
        assert!(r.latency_samples > 0, "{}: no latency samples", r.server);
        assert!(
            r.server_cpu.is_some() && r.rss.is_some(),
            "{}: /proc",
            r.server
        );
    }
    let (a, b) = (ServerKind::Leanrtc.name(), ServerKind::Str0m.name());
    let table = report::table(&results, &[(a.to_owned(), b.to_owned())]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert!(rows[2].contains("| leanrtc |"), "{table}");
    assert!(rows[3].contains("| str0m-sfu |"), "{table}");
    assert!(rows[4].contains("*leanrtc/str0m-sfu*"), "{table}");
}

#[test]
fn the_binary_knows_its_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_leanrtc-bench"))
        .arg("--help")
        .output()
        .expect("leanrtc-bench runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--scenario",
        "--duration",
        "--viewers",
        "--server",
        "--leanrtc",
        "--str0m",
        "--viewer-transport",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// The join storm while viewers watch (issue 16), against the baseline with batched I/O: the
/// joiners all receive, the watchers' latency is measured before and during, and the
/// batched server forwards as the plain one does.
#[test]
fn a_watched_join_storm_against_the_batched_baseline() {
    let str0m = PathBuf::from(env!("CARGO_BIN_EXE_str0m-sfu"));
    let spec = ServerSpec::str0m_batched();
    let scenario = Scenario::watched_storm(3, 4);
    let server = Server::start_spec(&spec, &str0m).expect("str0m-sfu --batched starts");
    let mut r = run::run(&scenario, server, &small()).expect("the run completes");
    r.server = spec.name.clone();
    assert_eq!(r.post_failures, 0, "{:?}", r.errors);
    assert_eq!(r.receiving, 3, "watchers receiving during the storm: {r:?}");
    let storm = r.storm.clone().expect("storm figures");
    assert_eq!((storm.watchers, storm.joiners, storm.joined), (3, 4, 4));
    assert!(storm.before_ms.is_some() && r.latency_ms.is_some(), "{r:?}");
    assert!(storm.samples.0 > 0 && storm.samples.1 > 0, "{storm:?}");
    assert!(storm.seconds > 0.0 && r.connect_ms.is_some(), "{r:?}");
    let table = report::storms(&[r]);
    assert!(
        table
            .lines()
            .nth(2)
            .is_some_and(|l| l.contains("| str0m-sfu-batched |")),
        "{table}"
    );
}
