//! Real pages in a headless browser, driven from a test: `tests/browser/page-driver.js` opens
//! named pages at any URL (leanrtc's own page, or a blank page on another origin), clicks,
//! fills inputs and calls the page helpers of `tests/browser/page-fns.js` (getStats of the
//! page's `player` / `publisher`, WHIP/WHEP sessions that keep their ETag, ICE restarts).
//! The browser lives in a [`NodeScript`] guard: dropping [`WebBrowser`] kills it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::browser::NodeScript;

/// How long one driver step (launch, open, click, call) may take.
const STEP: Duration = Duration::from_secs(60);

/// One headless Chromium or Firefox with named pages.
#[derive(Debug)]
pub struct WebBrowser {
    node: NodeScript,
    /// Which browser (`chromium` or `firefox`), for messages.
    pub name: String,
    /// A blank page on an origin other than leanrtc's (for CORS and `getUserMedia`).
    pub blank: String,
}

impl WebBrowser {
    /// Launches `browser` (`chromium` or `firefox`) with fake camera and microphone.
    pub fn launch(browser: &str) -> WebBrowser {
        let mut node = NodeScript::start_interactive(browser, "page-driver.js", &[browser]);
        let ready = node.next_json(STEP);
        assert_eq!(
            ready["type"],
            "ready",
            "{browser}: {ready}\n{}",
            node.stderr_text()
        );
        let blank = ready["blank"].as_str().expect("blank page URL").to_owned();
        WebBrowser {
            node,
            name: browser.to_owned(),
            blank,
        }
    }

    fn step(&mut self, command: Value) -> Value {
        let r = self.node.call(&command, STEP);
        assert_eq!(
            r["type"],
            "ok",
            "{}: {command} failed: {r}\nnode stderr:\n{}",
            self.name,
            self.node.stderr_text()
        );
        r["value"].clone()
    }

    /// Opens (or navigates) page `page` at `url`.
    pub fn open(&mut self, page: &str, url: &str) {
        self.step(json!({"cmd": "open", "page": page, "url": url}));
    }

    /// Clicks the element `selector` in `page` as a user would (the driver's mouse).
    pub fn click(&mut self, page: &str, selector: &str) {
        self.step(json!({"cmd": "click", "page": page, "selector": selector}));
    }

    /// Sets the input `selector` of `page` to `value`.
    pub fn fill(&mut self, page: &str, selector: &str, value: &str) {
        self.step(json!({"cmd": "fill", "page": page, "selector": selector, "value": value}));
    }

    /// Calls `window.leanrtcTest[function](args)` in `page`; returns its JSON result.
    pub fn call(&mut self, page: &str, function: &str, args: Value) -> Value {
        self.step(json!({"cmd": "call", "page": page, "fn": function, "args": args}))
    }

    /// Uncaught exceptions and console errors `page` reported so far.
    pub fn errors(&mut self, page: &str) -> Vec<String> {
        let v = self.step(json!({"cmd": "errors", "page": page}));
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `page` shows (leanrtc's page): status, overlay, stream list, sessions.
    pub fn view(&mut self, page: &str) -> Value {
        self.call(page, "view", json!({}))
    }

    /// getStats of leanrtc's page's `player` or `publisher` connection.
    pub fn page_stats(&mut self, page: &str, which: &str) -> Value {
        self.call(page, "pageStats", json!({ "which": which }))
    }

    /// Calls `function(args)` in `page` every 200 ms until `done` holds for its result or
    /// `timeout` passes; returns the last result and whether `done` held.
    pub fn poll(
        &mut self,
        page: &str,
        function: &str,
        args: Value,
        timeout: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> (Value, bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.call(page, function, args.clone());
            if done(&v) {
                return (v, true);
            }
            if Instant::now() >= deadline {
                return (v, false);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Closes the browser cleanly (the guard kills it anyway when dropped).
    pub fn quit(mut self) {
        let r = self.node.call(&json!({"cmd": "quit"}), STEP);
        assert_eq!(r["type"], "bye", "{r}");
    }
}

/// `v[key]` as a number, 0 when absent.
pub fn n(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

/// Inbound video frames decoded, from a stats summary.
pub fn frames(stats: &Value) -> f64 {
    n(&stats["inboundVideo"], "framesDecoded")
}

/// The connection states a stats summary recorded, without their times.
pub fn states(stats: &Value) -> Vec<String> {
    stats["states"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s[1].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
