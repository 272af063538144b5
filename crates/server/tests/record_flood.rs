//! A flood of WHIP POSTs that never send media, against a server with `--record-dir`: no
//! recording may open a file before its first keyframe, so the directory stays empty and the
//! server's open descriptors stay flat (before, each POST opened two files at once: 505
//! POSTs exhausted 1 024 descriptors).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http::request;
use common::recording::TempDir;
use common::server::Server;

/// POSTs sent; more than the files a default descriptor limit of 1 024 would allow at two
/// per POST is not needed to see the difference, which is per POST.
const POSTS: usize = 200;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

#[test]
fn whip_posts_without_media_open_no_recording_files() {
    let records = TempDir::new("record-flood");
    let mut server = Server::start(&["--record-dir", records.as_str()]);
    let offer = common::sdp_fixture("chromium-whip-vp8.sdp");
    let before = open_fds(server.pid());
    for i in 0..POSTS {
        let res = request(
            server.http,
            "POST",
            &format!("/whip/flood{i}"),
            &[("Content-Type", "application/sdp")],
            offer.as_bytes(),
        )
        .expect("POST");
        assert_eq!(res.status, 201, "POST {i}: {}", res.text());
    }
    server.assert_running();
    let after = open_fds(server.pid());
    let files: Vec<_> = std::fs::read_dir(&records.path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    eprintln!(
        "{POSTS} POSTs: descriptors {before} → {after}, files in the record dir: {}",
        files.len()
    );
    assert!(
        files.is_empty(),
        "{} files opened before any media, e.g. {:?}",
        files.len(),
        &files[..files.len().min(3)]
    );
    assert!(
        after <= before + 8,
        "descriptors grew from {before} to {after} over {POSTS} POSTs"
    );
}
