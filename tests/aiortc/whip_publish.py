"""Publishes a synthetic VP8 video track (and an Opus tone) to a WHIP endpoint with aiortc.

    tests/aiortc/.venv/bin/python tests/aiortc/whip_publish.py http://127.0.0.1:8080/whip/NAME --seconds 10

aiortc (PyPI: OpenSSL DTLS, libsrtp, libvpx through PyAV) is an independent WebRTC stack; it
has no WHIP client, so this script POSTs the offer itself (RFC 9725 §4.2: `201`, `Location`,
the answer), publishes until `--seconds` have passed or SIGINT/SIGTERM, DELETEs the session
and prints one JSON line with what it sent. Install: `python3 -m venv tests/aiortc/.venv &&
tests/aiortc/.venv/bin/pip install -r tests/aiortc/requirements.txt`.

No STUN/TURN server: `RTCConfiguration(iceServers=[])` (aiortc's default is a public one).
"""
import argparse
import asyncio
import fractions
import json
import math
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AUDIO_PTIME, VIDEO_CLOCK_RATE, VIDEO_PTIME
import av

HTTP_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 20


class Counter:
    """Frames handed to aiortc's encoders once the PeerConnection is connected: what a
    receiver can get (aiortc sends nothing before DTLS is up)."""

    def __init__(self):
        self.connected = False
        self.video_frames = 0
        self.audio_frames = 0


class PatternTrack(MediaStreamTrack):
    """Moving colour bars at `fps`: every frame differs, so every frame costs bits."""

    kind = "video"

    def __init__(self, counter, width, height, fps):
        super().__init__()
        self.counter, self.width, self.height, self.fps = counter, width, height, fps
        self.index = 0
        self.start = None
        # One luma row of a ramp, twice as wide as the frame, to slide across it.
        self.ramp = bytes((x * 255 // width) & 0xFF for x in range(2 * width))

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.index / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        shift = (self.index * 8) % self.width
        row = self.ramp[shift : shift + self.width]
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(row * self.height)
        chroma = (self.width // 2) * (self.height // 2)
        frame.planes[1].update(bytes([(self.index * 3) & 0xFF]) * chroma)
        frame.planes[2].update(bytes([(255 - self.index * 5) & 0xFF]) * chroma)
        frame.pts = self.index * VIDEO_CLOCK_RATE // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.index += 1
        if self.counter.connected:
            self.counter.video_frames += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 440 Hz tone, 48 kHz mono, in 20 ms frames."""

    kind = "audio"
    RATE = 48000

    def __init__(self, counter):
        super().__init__()
        self.counter = counter
        self.samples = int(AUDIO_PTIME * self.RATE)
        self.sent = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.sent / self.RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        pcm = bytearray()
        for i in range(self.samples):
            v = int(6000 * math.sin(2 * math.pi * 440 * (self.sent + i) / self.RATE))
            pcm += v.to_bytes(2, "little", signed=True)
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(bytes(pcm))
        frame.sample_rate = self.RATE
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, self.RATE)
        self.sent += self.samples
        if self.counter.connected:
            self.counter.audio_frames += 1
        return frame


def http(method, url, body=None, token=None):
    """One HTTP request; returns (status, headers, body)."""
    headers = {"Content-Type": "application/sdp"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as res:
            return res.status, res.headers, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


def prefer_vp8(transceiver):
    codecs = RTCRtpSender.getCapabilities("video").codecs
    vp8 = [c for c in codecs if c.mimeType.lower() == "video/vp8"]
    rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(vp8 + rtx)


async def publish(args):
    counter = Counter()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connected = asyncio.Event()
    failed = asyncio.Event()
    states = []

    @pc.on("connectionstatechange")
    def on_state():
        states.append(pc.connectionState)
        print(f"whip_publish: connection {pc.connectionState}", file=sys.stderr, flush=True)
        if pc.connectionState == "connected":
            counter.connected = True
            connected.set()
        elif pc.connectionState in ("failed", "closed"):
            counter.connected = False
            failed.set()

    video = pc.addTransceiver(PatternTrack(counter, args.width, args.height, args.fps), direction="sendonly")
    prefer_vp8(video)
    if not args.no_audio:
        pc.addTransceiver(ToneTrack(counter), direction="sendonly")

    result = {"error": None, "states": states}
    location = None
    try:
        # aiortc gathers every candidate in setLocalDescription: the offer is complete.
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        if args.verbose:
            print(f"whip_publish: offer:\n{offer}", file=sys.stderr, flush=True)
        status, headers, answer = await asyncio.to_thread(http, "POST", args.url, offer.encode(), args.token)
        if status != 201 or not headers.get("Location"):
            result["error"] = f"POST {args.url}: {status} {answer}"
            return result
        location = urllib.parse.urljoin(args.url, headers["Location"])
        if args.verbose:
            print(f"whip_publish: answer:\n{answer}", file=sys.stderr, flush=True)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        try:
            await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            result["error"] = f"not connected within {CONNECT_TIMEOUT_S} s"
            return result
        started = time.monotonic()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(failed.wait())]
        await asyncio.wait(waits, timeout=args.seconds or None, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if failed.is_set():
            result["error"] = f"connection {pc.connectionState}"
        result["connectedSeconds"] = round(time.monotonic() - started, 3)
        counter.connected = False
        stats = await pc.getStats()
        for s in stats.values():
            if s.type == "outbound-rtp":
                result[f"{s.kind}PacketsSent"] = s.packetsSent
                result[f"{s.kind}BytesSent"] = s.bytesSent
        result["videoFramesAfterConnected"] = counter.video_frames
        result["audioFramesAfterConnected"] = counter.audio_frames
        return result
    finally:
        if location:
            status, _, _ = await asyncio.to_thread(http, "DELETE", location, None, args.token)
            result["deleteStatus"] = status
            result["location"] = location
        await pc.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip/NAME")
    p.add_argument("--seconds", type=float, default=0, help="publish this long once connected (0: until interrupted)")
    p.add_argument("--token", help="Bearer token")
    p.add_argument("--no-audio", action="store_true", help="video only")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=round(1 / VIDEO_PTIME))
    p.add_argument("--verbose", action="store_true", help="print the offer and the answer to stderr")
    args = p.parse_args()
    result = asyncio.run(publish(args))
    print(json.dumps(result), flush=True)
    sys.exit(1 if result["error"] else 0)


if __name__ == "__main__":
    main()
