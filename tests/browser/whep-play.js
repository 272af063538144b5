// Plays a stream from a running leanrtc with WHEP in a real headless browser and prints one
// JSON line with what the browser's getStats says. The browser's pids go to stderr as
// {"pids":[..]} so a supervisor (the Rust tests) can kill them if this script dies.
//   node whep-play.js <chromium|firefox> <http://127.0.0.1:PORT> <stream> <seconds>
'use strict';

const { launch } = require('./lib');

async function main() {
  const [name = 'chromium', base = 'http://127.0.0.1:8080', stream = 'sample', seconds = '10'] = process.argv.slice(2);
  // Never outlive a hung browser: launch, play and close take well under a minute more.
  setTimeout(() => { console.error('whep-play.js: hard timeout'); process.exit(2); }, (Number(seconds) + 90) * 1000).unref();
  const browser = await launch(name, base + '/');
  process.stderr.write(JSON.stringify({ pids: browser.pids }) + '\n');
  try {
    const result = await browser.page.evaluate(runInPage, { url: `${base}/whep/${stream}`, seconds: Number(seconds) });
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
  }
}

// Runs in the page: WHEP, then getStats every 10 ms until the first frame, then every 250 ms.
async function runInPage({ url, seconds }) {
  // Chromium: encoded frames as assembled from RTP (before the decoder), to see what a
  // joining viewer gets first; and the first decoded frame straight from the track, which
  // getStats reports only some tens of ms later (it caches its reports).
  const insertable = typeof RTCRtpReceiver !== 'undefined' && 'createEncodedStreams' in RTCRtpReceiver.prototype;
  const pc = new RTCPeerConnection(insertable ? { iceServers: [], encodedInsertableStreams: true } : { iceServers: [] });
  const states = [];
  const firstFrames = [];
  let firstFrameTrackMs = null;
  // The first frame presented on screen, as a user sees it (requestVideoFrameCallback).
  let firstPresentedMs = null;
  let t0 = performance.now();
  pc.ontrack = (e) => {
    const video = e.track.kind === 'video';
    if (insertable) {
      const { readable, writable } = e.receiver.createEncodedStreams();
      readable.pipeThrough(new TransformStream({
        transform(frame, out) {
          if (video && firstFrames.length < 5) {
            firstFrames.push({ ms: performance.now() - t0, type: frame.type, rtpTimestamp: frame.getMetadata().rtpTimestamp, bytes: frame.data.byteLength });
          }
          out.enqueue(frame);
        },
      })).pipeTo(writable);
    }
    if (video) {
      const el = document.createElement('video');
      el.muted = true;
      el.autoplay = true;
      el.playsInline = true;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
      if ('requestVideoFrameCallback' in el) {
        el.requestVideoFrameCallback(() => { firstPresentedMs = performance.now() - t0; });
      }
      el.play().catch(() => {});
    }
    if (video && typeof MediaStreamTrackProcessor !== 'undefined') {
      const probe = e.track.clone();
      new MediaStreamTrackProcessor({ track: probe }).readable.getReader().read().then(({ value }) => {
        firstFrameTrackMs = performance.now() - t0;
        if (value) value.close();
        probe.stop();
      });
    }
  };
  pc.onconnectionstatechange = () => states.push(pc.connectionState);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 1000);
  });
  t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) return { error: `POST ${res.status}: ${await res.text()}` };
  const location = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  const read = async () => {
    const out = { video: null, audio: null, transport: null };
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') out[r.kind] = r;
      if (r.type === 'transport') out.transport = r;
    });
    return out;
  };
  let firstFrameMs = null;
  let connectedMs = null;
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'connected' && connectedMs === null) connectedMs = performance.now() - t0;
  });
  const end = t0 + seconds * 1000;
  let s = await read();
  while (performance.now() < end) {
    s = await read();
    if (firstFrameMs === null && s.video && s.video.framesDecoded > 0) firstFrameMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, firstFrameMs === null ? 10 : 250));
  }
  const finalState = pc.connectionState;
  document.querySelectorAll('video').forEach((el) => { el.srcObject = null; el.remove(); });
  const del = await fetch(new URL(location, url), { method: 'DELETE' });
  pc.close();
  const v = s.video || {}, a = s.audio || {}, t = s.transport || {};
  return {
    firstFrameMs, firstFrameTrackMs, firstPresentedMs, connectedMs, firstFrames, states, finalState, deleteStatus: del.status,
    video: { framesDecoded: v.framesDecoded, frameWidth: v.frameWidth, frameHeight: v.frameHeight, packetsLost: v.packetsLost,
             packetsReceived: v.packetsReceived, nackCount: v.nackCount, pliCount: v.pliCount, framesDropped: v.framesDropped,
             retransmittedPacketsReceived: v.retransmittedPacketsReceived },
    audio: { bytesReceived: a.bytesReceived, packetsReceived: a.packetsReceived, totalSamplesReceived: a.totalSamplesReceived },
    transport: { dtlsState: t.dtlsState, srtpCipher: t.srtpCipher, tlsVersion: t.tlsVersion, dtlsCipher: t.dtlsCipher, tlsGroup: t.tlsGroup },
  };
}

module.exports = { runInPage };

if (require.main === module) main().catch((e) => { console.error(e); process.exit(1); });
