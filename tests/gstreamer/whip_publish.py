#!/usr/bin/python3
"""Publishes GStreamer test sources to a WHIP endpoint with webrtcbin.

    python3 tests/gstreamer/whip_publish.py http://127.0.0.1:8080/whip/NAME --codec h264

Video is `videotestsrc` (a moving ball on a test pattern) encoded with VP8 (vp8enc) or
H.264 Constrained Baseline (openh264enc); audio is an `audiotestsrc` tone in Opus. The script
makes the offer with webrtcbin, POSTs it with urllib (RFC 9725 §4.2: `201`, `Location`,
the answer), sets the answer, publishes until `--seconds` have passed (forever by default) or
until SIGINT/SIGTERM, then DELETEs the session and prints one JSON line with what it sent.

Debian's `simple-whip-client` aborts at start with a libsoup2/libsoup3 clash, hence this.
Needs Debian's python3-gst-1.0, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-plugins-good,
gstreamer1.0-plugins-bad and gstreamer1.0-nice. It uses no STUN/TURN server.
"""
import argparse
import ipaddress
import json
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

# A keyframe every second, as a live publisher (OBS, browsers) sends them: a viewer or a
# recording never waits long for one. Keyframe requests (PLI/FIR) are honoured as well.
ENCODERS = {
    "vp8": "vp8enc name=enc deadline=1 cpu-used=8 keyframe-max-dist={gop} target-bitrate={bitrate} "
    "error-resilient=partitions ! rtpvp8pay name=pay pt=96 picture-id-mode=15-bit",
    "h264": "openh264enc name=enc gop-size={gop} bitrate={bitrate} usage-type=camera complexity=low "
    "! video/x-h264,profile=constrained-baseline ! h264parse "
    "! rtph264pay name=pay pt=102 config-interval=-1 aggregate-mode=zero-latency",
}

POST_TIMEOUT_S = 10


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip/NAME")
    p.add_argument("--codec", choices=sorted(ENCODERS), default="vp8")
    p.add_argument("--seconds", type=float, default=0, help="publish this long (0: until interrupted)")
    p.add_argument("--token", help="Bearer token")
    p.add_argument("--no-audio", action="store_true", help="video only")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--bitrate", type=int, default=1_000_000, help="video bits per second")
    p.add_argument(
        "--local-ip",
        help="gather ICE candidates on this address only (default: 127.0.0.1 when the URL's host "
        "is a loopback address, else every non-loopback interface, as libnice does)",
    )
    p.add_argument("--verbose", action="store_true", help="print the offer and the answer to stderr")
    return p.parse_args()


def log(msg):
    print(f"whip_publish: {msg}", file=sys.stderr, flush=True)


class Publisher:
    def __init__(self, args):
        self.args = args
        video = (
            f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},"
            f"framerate={args.fps}/1 ! videoconvert ! queue max-size-buffers=2 leaky=downstream ! "
            + ENCODERS[args.codec].format(gop=args.fps, bitrate=args.bitrate)
            + " ! application/x-rtp,media=video ! w."
        )
        audio = (
            "audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! audioconvert ! audioresample ! "
            "opusenc name=aenc ! rtpopuspay pt=111 ! application/x-rtp,media=audio ! w."
        )
        description = "webrtcbin name=w bundle-policy=max-bundle " + video
        if not args.no_audio:
            description += " " + audio
        self.pipeline = Gst.parse_launch(description)
        self.webrtc = self.pipeline.get_by_name("w")
        self.configure_ice()
        self.loop = GLib.MainLoop()
        self.location = None
        self.error = None
        self.connected_at = None
        self.started_at = None
        # Frames out of the encoder: all, and those after the peer connection was up (what a
        # receiver can get; webrtcbin drops what it encodes before DTLS is done).
        self.frames_encoded = 0
        self.frames_connected = 0
        self.keyframes_connected = 0
        self.audio_buffers_connected = 0
        enc_src = self.pipeline.get_by_name("enc").get_static_pad("src")
        enc_src.add_probe(Gst.PadProbeType.BUFFER, self.on_video_frame)
        if not args.no_audio:
            aenc_src = self.pipeline.get_by_name("aenc").get_static_pad("src")
            aenc_src.add_probe(Gst.PadProbeType.BUFFER, self.on_audio_buffer)
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::connection-state", self.on_connection_state)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)
        self.offer_sent = False

    def configure_ice(self):
        # Keep our reference for the pipeline's life: webrtcbin (1.22) leaves the agent's
        # reference floating, so the binding sinks it and would free the agent with its wrapper.
        self.ice = ice = self.webrtc.get_property("ice-agent")
        # UDP candidates only, and no UPnP discovery (SSDP multicast) by libnice.
        ice.set_property("ice-tcp", False)
        self.agent = ice.get_property("agent")
        if self.agent is not None and self.agent.find_property("upnp") is not None:
            self.agent.set_property("upnp", False)
        local_ip = self.args.local_ip
        if local_ip is None and is_loopback(urllib.parse.urlsplit(self.args.url).hostname):
            # libnice skips loopback interfaces, and pins its sockets to their interface, so a
            # check from another local address could never reach a server on 127.0.0.1.
            local_ip = "127.0.0.1"
        if local_ip and not ice.emit("add-local-ip-address", local_ip):
            raise SystemExit(f"whip_publish: cannot use local address {local_ip}")

    # --- media counters (streaming threads) ---
    def on_video_frame(self, _pad, info):
        self.frames_encoded += 1
        if self.connected_at is not None:
            self.frames_connected += 1
            buf = info.get_buffer()
            if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                self.keyframes_connected += 1
        return Gst.PadProbeReturn.OK

    def on_audio_buffer(self, _pad, _info):
        if self.connected_at is not None:
            self.audio_buffers_connected += 1
        return Gst.PadProbeReturn.OK

    # --- signalling (main loop) ---
    def on_error(self, _bus, msg):
        err, debug = msg.parse_error()
        self.fail(f"pipeline error: {err.message} ({debug})")

    def fail(self, why):
        if self.error is None:
            self.error = why
        log(why)
        self.loop.quit()

    def on_negotiation_needed(self, _element):
        for i in range(2):
            t = self.webrtc.emit("get-transceiver", i)
            if t is not None:
                t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _data):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            GLib.idle_add(self.fail, f"create-offer failed: {reply}")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        # The server does not trickle; send the offer once gathering is complete, or after
        # 2 s with what we have (ICE-lite servers learn our address from our checks).
        GLib.timeout_add(2000, self.post_offer)

    def on_gathering(self, *_):
        state = self.webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self.post_offer)

    def on_connection_state(self, *_):
        state = self.webrtc.get_property("connection-state")
        log(f"connection state {state.value_nick}")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and self.connected_at is None:
            self.connected_at = time.monotonic()
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            GLib.idle_add(self.fail, "connection failed")

    def headers(self, content_type=None):
        h = {}
        if content_type:
            h["Content-Type"] = content_type
        if self.args.token:
            h["Authorization"] = f"Bearer {self.args.token}"
        return h

    def post_offer(self):
        if self.offer_sent:
            return False
        self.offer_sent = True
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        if self.args.verbose:
            log(f"offer:\n{sdp}")
        req = urllib.request.Request(
            self.args.url, data=sdp.encode(), method="POST", headers=self.headers("application/sdp")
        )
        try:
            with urllib.request.urlopen(req, timeout=POST_TIMEOUT_S) as res:
                status, location, answer = res.status, res.headers.get("Location"), res.read().decode()
        except urllib.error.HTTPError as e:
            self.fail(f"POST {self.args.url}: {e.code} {e.read().decode(errors='replace')}")
            return False
        except OSError as e:
            self.fail(f"POST {self.args.url}: {e}")
            return False
        if status != 201 or not location:
            self.fail(f"POST {self.args.url}: status {status}, Location {location!r}")
            return False
        self.location = urllib.parse.urljoin(self.args.url, location)
        log(f"published: {self.location}")
        if self.args.verbose:
            log(f"answer:\n{answer}")
        ok, msg = GstSdp.SDPMessage.new_from_text(answer)
        if ok != GstSdp.SDPResult.OK:
            self.fail(f"cannot parse the answer:\n{answer}")
            return False
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", desc, Gst.Promise.new())
        self.started_at = time.monotonic()
        if self.args.seconds > 0:
            GLib.timeout_add(int(self.args.seconds * 1000), self.loop.quit)
        return False

    def delete(self):
        if not self.location:
            return None
        req = urllib.request.Request(self.location, method="DELETE", headers=self.headers())
        try:
            with urllib.request.urlopen(req, timeout=POST_TIMEOUT_S) as res:
                return res.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError as e:
            log(f"DELETE {self.location}: {e}")
            return None

    def run(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.stop_on_signal)
        # Nothing connects within 20 s: give up rather than hang.
        GLib.timeout_add(20_000, self.check_connected)
        self.loop.run()
        ended = time.monotonic()
        delete_status = self.delete()
        self.pipeline.set_state(Gst.State.NULL)
        connected_s = ended - self.connected_at if self.connected_at else 0
        return {
            "error": self.error,
            "codec": self.args.codec,
            "location": self.location,
            "deleteStatus": delete_status,
            "connectedSeconds": round(connected_s, 3),
            "framesEncoded": self.frames_encoded,
            "framesAfterConnected": self.frames_connected,
            "keyframesAfterConnected": self.keyframes_connected,
            "audioPacketsAfterConnected": self.audio_buffers_connected,
        }

    def stop_on_signal(self):
        log("signal: stopping")
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def check_connected(self):
        if self.connected_at is None:
            self.fail("not connected within 20 s")
        return False


def is_loopback(host):
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main():
    args = parse_args()
    Gst.init(None)
    for element in ("webrtcbin", "nicesrc", "vp8enc", "openh264enc", "opusenc", "videotestsrc"):
        if Gst.ElementFactory.find(element) is None:
            sys.exit(
                f"whip_publish: GStreamer element {element} is missing: apt-get install -y python3-gst-1.0 "
                "gir1.2-gst-plugins-bad-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice"
            )
    result = Publisher(args).run()
    print(json.dumps(result), flush=True)
    sys.exit(1 if result["error"] else 0)


if __name__ == "__main__":
    main()
