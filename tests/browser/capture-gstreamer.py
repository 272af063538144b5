#!/usr/bin/python3
"""Captures GStreamer webrtcbin offers (a WHIP publisher's: sendonly, max-bundle) into
crates/rtc/tests/fixtures/sdp/gstreamer-{vp8,h264}-offer.sdp.

Needs Debian's python3-gst-1.0, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-plugins-{good,bad}
and gstreamer1.0-nice. Run it in a private network namespace like capture-offers.js.
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstWebRTC  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "rtc", "tests", "fixtures", "sdp")

VIDEO = {
    "vp8": "videotestsrc is-live=true ! vp8enc deadline=1 ! rtpvp8pay pt=96",
    "h264": "videotestsrc is-live=true ! openh264enc ! h264parse ! rtph264pay pt=102 config-interval=-1",
}


def capture(name):
    pipeline = Gst.parse_launch(
        f"webrtcbin name=w bundle-policy=max-bundle "
        f"{VIDEO[name]} ! application/x-rtp,media=video ! w. "
        "audiotestsrc is-live=true ! opusenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio ! w."
    )
    webrtc = pipeline.get_by_name("w")
    loop = GLib.MainLoop()
    result = {}

    def gathered(*_):
        if webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            result["sdp"] = webrtc.get_property("local-description").sdp.as_text()
            loop.quit()

    def on_offer(promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            print(f"create-offer failed: {reply}", file=sys.stderr)
            loop.quit()
            return
        webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_negotiation_needed(_):
        for t in range(2):
            trans = webrtc.emit("get-transceiver", t)
            if trans is not None:
                trans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))

    webrtc.connect("on-negotiation-needed", on_negotiation_needed)
    webrtc.connect("notify::ice-gathering-state", gathered)
    pipeline.set_state(Gst.State.PLAYING)
    GLib.timeout_add_seconds(10, loop.quit)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    if "sdp" not in result:
        sys.exit(f"{name}: no offer within 10 s")
    path = os.path.join(OUT, f"gstreamer-{name}-offer.sdp")
    with open(path, "w", newline="") as f:
        f.write(result["sdp"])
    print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    Gst.init(None)
    for name in sys.argv[1:] or list(VIDEO):
        capture(name)
