"""A minimal WHEP server with aiortc, to compare leanrtc's time to first frame against an
independent stack in the same run (tests/browser/first-frame.sh, `LEANRTC_BINS="… aiortc"`).

    tests/aiortc/.venv/bin/python tests/aiortc/whep_server.py --media-dir DIR [--http 127.0.0.1:0]

`POST /whep/{stream}` with an SDP offer (RFC 9725 §4.2) answers `201` with `Location` and the
answer SDP once ICE gathering is complete; the session plays `{media_dir}/{stream}.ivf`, video
only, looped, with aiortc's `MediaPlayer` — by default the IVF's frames sent unchanged
(`decode=False`, as leanrtc does; the setup of the aiortc figure in BROWSER-TESTING.md),
`--decode` to decode and re-encode them with libvpx instead. `DELETE` on the `Location` ends
the session. `GET /` is a blank page (the browser scripts open the server's own origin),
and every response carries leanrtc's CORS headers, `OPTIONS` answering preflights.

ICE: aioice gathers a host candidate on every address but 127.0.0.1; this server offers only
`--ice-host` (default: the HTTP address), so on `--http 127.0.0.1:…` its one candidate is
127.0.0.1 like leanrtc's `--udp 127.0.0.1:0`. No STUN/TURN (`iceServers=[]`).

HTTP is a small HTTP/1.1 server on asyncio streams (the stdlib only; keep-alive, Content-Length
bodies). On start it prints to stderr, as leanrtc does, a line with `ready: open` and
`http=HOST:PORT`. SIGINT/SIGTERM close every session and exit.
"""
import argparse
import asyncio
import os
import re
import signal
import sys
import uuid

import aioice.ice
import aiortc
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

MAX_BODY = 64 * 1024
MAX_HEADER_LINES = 100
# A client that sends nothing for this long loses its connection.
IDLE_TIMEOUT_S = 30

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After",
}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 413: "Content Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error"}
STREAM = re.compile(r"^/whep/([A-Za-z0-9._-]+)$")
SESSION = re.compile(r"^/whep/([A-Za-z0-9._-]+)/([0-9a-f]+)$")


class Server:
    def __init__(self, media_dir, decode):
        self.media_dir = media_dir
        self.decode = decode
        self.sessions = {}  # id -> RTCPeerConnection

    async def handle(self, method, path, headers, body):
        """Returns (status, headers, body) for one request."""
        path = path.split("?", 1)[0]
        if method == "OPTIONS":
            return 204, {"Allow": "GET, HEAD, POST, PATCH, DELETE, OPTIONS"}, b""
        if path == "/" and method in ("GET", "HEAD"):
            return 200, {"Content-Type": "text/html"}, b"<!doctype html><title>aiortc whep</title>"
        m = STREAM.match(path)
        if m:
            if method != "POST":
                return 405, {"Allow": "POST, OPTIONS"}, b""
            return await self.create(m.group(1), headers, body)
        m = SESSION.match(path)
        if m:
            if method != "DELETE":
                return 405, {"Allow": "DELETE, OPTIONS"}, b""
            pc = self.sessions.pop(m.group(2), None)
            if pc is None:
                return 404, {}, b"no such session\n"
            await pc.close()
            return 200, {}, b""
        return 404, {}, b"not found\n"

    async def create(self, stream, headers, body):
        if headers.get("content-type", "").split(";")[0].strip() != "application/sdp":
            return 415, {}, b"the offer must be application/sdp\n"
        path = os.path.join(self.media_dir, stream + ".ivf")
        if not os.path.isfile(path):
            return 404, {}, f"no {stream}.ivf in the media directory\n".encode()
        player = MediaPlayer(path, loop=True, decode=self.decode)
        if player.video is None:
            return 404, {}, f"{stream}.ivf has no VP8 video\n".encode()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            # The transceiver comes first: setRemoteDescription takes it for the offer's video
            # m-line and negotiates its codecs then (later preferences would not count). The
            # IVF's frames go out as they are, so only VP8 (and its RTX) may be negotiated.
            video = pc.addTransceiver(player.video, direction="sendonly")
            if not self.decode:
                video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                           if c.mimeType in ("video/VP8", "video/rtx")])
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="offer"))
            if video.mid is None:
                raise ValueError("the offer has no video m-line")
            # aiortc's setLocalDescription waits for ICE gathering to complete.
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # a bad offer: the client's fault, not ours
            await pc.close()
            return 400, {}, f"{e}\n".encode()
        session = uuid.uuid4().hex
        self.sessions[session] = pc

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed") and self.sessions.get(session) is pc:
                del self.sessions[session]
                await pc.close()

        return 201, {"Content-Type": "application/sdp",
                     "Location": f"/whep/{stream}/{session}"}, pc.localDescription.sdp.encode()

    async def close_all(self):
        pcs, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


async def read_request(reader):
    """One request: (method, path, headers with lower-case names, body), or None at EOF."""
    line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    headers = {}
    for _ in range(MAX_HEADER_LINES):
        h = (await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)).decode("latin-1")
        if h in ("\r\n", "\n", ""):
            break
        name, _, value = h.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many header lines")
    length = int(headers.get("content-length", "0"))
    if length < 0 or length > MAX_BODY:
        raise ValueError("body too large")
    body = await asyncio.wait_for(reader.readexactly(length), IDLE_TIMEOUT_S) if length else b""
    return parts[0].upper(), parts[1], headers, body


async def serve_connection(server, reader, writer):
    try:
        while True:
            try:
                req = await read_request(reader)
            except (ValueError, asyncio.IncompleteReadError):
                status, headers, body, req = 400, {"Connection": "close"}, b"bad request\n", None
            else:
                if req is None:
                    break
                try:
                    status, headers, body = await server.handle(*req)
                except Exception as e:
                    print(f"whep_server: {req[0]} {req[1]}: {e!r}", file=sys.stderr, flush=True)
                    status, headers, body = 500, {}, f"{e}\n".encode()
            head = [f"HTTP/1.1 {status} {REASONS.get(status, '')}", f"Content-Length: {len(body)}"]
            head += [f"{k}: {v}" for k, v in {**CORS, **headers}.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            if req is None or req[0] != "HEAD":
                writer.write(body)
            await writer.drain()
            if req is None or req[2].get("connection", "").lower() == "close":
                break
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media-dir", help="where {stream}.ivf files are (default: samples/)")
    ap.add_argument("--http", default="127.0.0.1:0", help="HTTP address (default 127.0.0.1:0)")
    ap.add_argument("--ice-host", help="the one ICE host address (default: the HTTP address)")
    ap.add_argument("--decode", action="store_true", help="decode and re-encode instead of sending the IVF unchanged")
    ap.add_argument("--version", action="store_true", help="print aiortc's version and exit")
    args = ap.parse_args()
    if args.version:
        print(f"aiortc {aiortc.__version__} whep_server.py")
        return
    media_dir = args.media_dir or os.path.join(os.path.dirname(__file__), "..", "..", "samples")
    host, _, port = args.http.rpartition(":")
    ice_host = args.ice_host or host
    # aioice reads its host addresses from this module function when it gathers.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [ice_host]

    server = Server(media_dir, args.decode)
    http = await asyncio.start_server(lambda r, w: serve_connection(server, r, w), host, int(port))
    addr = http.sockets[0].getsockname()
    print(f"aiortc {aiortc.__version__} whep_server ready: open http://{addr[0]}:{addr[1]}/ "
          f"http={addr[0]}:{addr[1]} ice={ice_host} media_dir={media_dir} decode={args.decode}",
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    http.close()
    await asyncio.wait_for(server.close_all(), 5)


if __name__ == "__main__":
    asyncio.run(main())
