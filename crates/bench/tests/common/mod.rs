//! What the bench's integration tests share.

use std::path::PathBuf;

/// The `leanrtc` binary of this build (the workspace builds it next to our test binary's
/// `deps/`: `./test.sh`, `cargo build --workspace` and `cargo build -p leanrtc` do).
pub fn leanrtc_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join("leanrtc");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p leanrtc, or ./test.sh)",
        path.display()
    );
    path
}
