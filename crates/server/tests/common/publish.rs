//! Publishers for the WHIP tests: Chromium pages under `tests/browser/publish-play.js`
//! (publish and play in named pages of one browser), and the prerequisites of the Python
//! publishers (`tests/gstreamer/`, `tests/aiortc/`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::browser::NodeScript;
use super::repo_root;
use super::server::Server;

/// How long one browser step (launch, publish, play, stats) may take.
const STEP: Duration = Duration::from_secs(60);

/// One headless Chromium with named pages that publish (WHIP) and play (WHEP).
#[derive(Debug)]
pub struct Pages {
    node: NodeScript,
}

impl Pages {
    /// Launches Chromium for the server at `base` (`http://ADDR`); its fake camera runs at
    /// 30 fps.
    pub fn launch(base: &str) -> Pages {
        let mut node =
            NodeScript::start_interactive("chromium", "publish-play.js", &["chromium", base]);
        let ready = node.next_json(STEP);
        assert_eq!(ready["type"], "ready", "{ready}");
        Pages { node }
    }

    fn call(&mut self, command: Value, expect: &str) -> Value {
        let r = self.node.call(&command, STEP);
        assert_eq!(
            r["type"],
            expect,
            "{command} failed: {r}\nnode stderr:\n{}",
            self.node.stderr_text()
        );
        r
    }

    /// Publishes the fake camera and microphone as `stream` from `page` (`codec`: `vp8`,
    /// `h264`, or empty for the browser's choice); returns once connected.
    pub fn publish(&mut self, page: &str, stream: &str, codec: &str) -> Value {
        self.call(
            json!({"cmd": "publish", "page": page, "stream": stream, "codec": codec}),
            "published",
        )
    }

    /// Publishes as [`Pages::publish`] at `width` × `height`, the video as three simulcast
    /// layers (rids q, h, f at 1/4, 1/2 and full size).
    pub fn publish_simulcast(
        &mut self,
        page: &str,
        stream: &str,
        codec: &str,
        (width, height): (u32, u32),
    ) -> Value {
        self.call(
            json!({"cmd": "publish", "page": page, "stream": stream, "codec": codec,
                   "width": width, "height": height, "simulcast": true}),
            "published",
        )
    }

    /// Plays `stream` in `page` over WHEP; the page samples its stats from then on.
    pub fn play(&mut self, page: &str, stream: &str) -> Value {
        self.call(
            json!({"cmd": "play", "page": page, "stream": stream}),
            "playing",
        )
    }

    /// Plays `stream` in `page` from another server than the one the pages were launched for
    /// (`base`: `http://ADDR`).
    #[allow(dead_code)] // not every test binary uses it
    pub fn play_from(&mut self, page: &str, base: &str, stream: &str) -> Value {
        self.call(
            json!({"cmd": "play", "page": page, "stream": stream, "base": base}),
            "playing",
        )
    }

    /// The stats of every connection `page` made: `{posts, pcs: [..]}`.
    pub fn stats(&mut self, page: &str) -> Value {
        self.call(json!({"cmd": "stats", "page": page}), "stats")
    }

    /// The stats of `page`'s newest connection.
    pub fn last_pc(&mut self, page: &str) -> Value {
        let s = self.stats(page);
        s["pcs"]
            .as_array()
            .and_then(|a| a.last())
            .cloned()
            .unwrap_or_else(|| panic!("{page} has no connection: {s}"))
    }

    /// Closes `page`'s newest connection without DELETE.
    pub fn close(&mut self, page: &str) -> Value {
        self.call(json!({"cmd": "close", "page": page}), "closed")
    }

    /// DELETEs `page`'s newest session and closes its connection; returns the status.
    pub fn unpublish(&mut self, page: &str) -> Value {
        self.call(json!({"cmd": "unpublish", "page": page}), "unpublished")
    }

    /// Polls `page`'s newest connection until `done` holds or `timeout` passes; returns the
    /// last stats.
    pub fn poll_until(
        &mut self,
        page: &str,
        timeout: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let pc = self.last_pc(page);
            if done(&pc) || Instant::now() >= deadline {
                return pc;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Closes the browser cleanly (the guard kills it anyway when dropped).
    pub fn quit(mut self) {
        let r = self.node.call(&json!({"cmd": "quit"}), STEP);
        assert_eq!(r["type"], "bye", "{r}");
    }
}

/// A number from a JSON value, 0 when absent.
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Waits at most `timeout` until the server logs that a publisher of `stream` connected.
pub fn wait_publisher_connected(server: &Server, stream: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let needle = format!("stream={stream} role=Publish");
    loop {
        let log = server.log();
        if log
            .lines()
            .any(|l| l.contains(" connected ") && l.contains(&needle))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no publisher of {stream} connected within {timeout:?}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's Python with GStreamer's webrtcbin; fails (never skips) naming the packages.
pub fn gstreamer_python() -> PathBuf {
    const PACKAGES: &str = "python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gstreamer1.0-plugins-good \
                            gstreamer1.0-plugins-bad gstreamer1.0-nice";
    let python = PathBuf::from("/usr/bin/python3");
    let check = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); \
                 from gi.repository import Gst; Gst.init(None); \
                 missing = [e for e in ('webrtcbin', 'nicesrc', 'vp8enc', 'openh264enc', 'opusenc', \
                 'rtpvp8pay', 'rtph264pay', 'h264parse') if Gst.ElementFactory.find(e) is None]; \
                 print(' '.join(missing)); raise SystemExit(1 if missing else 0)";
    let out = Command::new(&python).args(["-c", check]).output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "GStreamer's webrtcbin from Python is missing ({}): install the Debian packages \
         `{PACKAGES}` (apt-get install -y {PACKAGES}); see docs/TESTING.md",
        out.map(|o| format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout).trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
        .unwrap_or_else(|e| format!("{}: {e}", python.display()))
    );
    python
}

/// The Python of `tests/aiortc/.venv` with aiortc installed; fails (never skips) saying how
/// to make it.
pub fn aiortc_python() -> PathBuf {
    let python = repo_root().join("tests/aiortc/.venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import aiortc"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "aiortc (PyPI) is missing: run `python3 -m venv tests/aiortc/.venv && \
         tests/aiortc/.venv/bin/pip install -r tests/aiortc/requirements.txt` (.ci/run does); \
         see docs/TESTING.md"
    );
    python
}
