//! Helpers shared by leanrtc's integration tests: the server under test as a child process,
//! shorthands for the tiny HTTP/1.1 client (which lives in the `bench` crate) and `/metrics`,
//! a headless browser under node, other helper programs (Python publishers), an in-process
//! str0m viewer, the stage of the SFU tests (publishers and viewers of our own client,
//! `bench`), recordings checked with ffprobe, and readers for the sample files written from
//! their specs (not with our `media` crate).
//!
//! Every process a helper starts is owned by a guard that kills it when dropped, also when
//! a test fails.

// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

pub mod browser;
pub mod files;
pub mod http;
pub mod process;
pub mod publish;
pub mod recording;
pub mod server;
pub mod sfu;
pub mod shaper;
pub mod viewer;
pub mod web;

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A browser's offer captured by `tests/browser/capture-offers.js`, from the rtc crate's SDP
/// fixtures (`chromium-whep.sdp`, `chromium-whip-vp8.sdp`, …).
pub fn sdp_fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("crates/rtc/tests/fixtures/sdp").join(name))
        .unwrap_or_else(|e| panic!("read the SDP fixture {name}: {e}"))
}
