// Publishes the browser's fake camera and microphone to a running leanrtc with WHIP and
// prints one JSON line with the browser's outbound getStats.
//   node whip-publish.js <chromium|firefox> <http://127.0.0.1:PORT> <stream> <seconds> [codec]
'use strict';

const { launch } = require('./lib');

async function main() {
  const [name = 'chromium', base = 'http://127.0.0.1:8080', stream = 'cam', seconds = '10', codec = ''] = process.argv.slice(2);
  const browser = await launch(name, base + '/');
  process.stderr.write(JSON.stringify({ pids: browser.pids }) + '\n');
  try {
    const result = await browser.page.evaluate(runInPage, { url: `${base}/whip/${stream}`, seconds: Number(seconds), codec });
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
  }
}

// Runs in the page: getUserMedia, WHIP, then samples outbound stats every 500 ms.
async function runInPage({ url, seconds, codec }) {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
  const pc = new RTCPeerConnection();
  const states = [];
  pc.onconnectionstatechange = () => states.push(pc.connectionState);
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly' });
    if (codec && track.kind === 'video' && t.setCodecPreferences) {
      const caps = RTCRtpSender.getCapabilities('video').codecs;
      const wanted = caps.filter((c) => c.mimeType.toLowerCase() === 'video/' + codec.toLowerCase());
      t.setCodecPreferences([...wanted, ...caps.filter((c) => !wanted.includes(c))]);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 1000);
  });
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) return { error: `POST ${res.status}: ${await res.text()}` };
  const location = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  const samples = [];
  const end = performance.now() + seconds * 1000;
  let v = {};
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    (await pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video') v = r; });
    samples.push({ t: Math.round(performance.now()), bytesSent: v.bytesSent, targetBitrate: v.targetBitrate });
  }
  const del = await fetch(new URL(location, url), { method: 'DELETE' });
  pc.close();
  media.getTracks().forEach((t) => t.stop());
  return {
    states, deleteStatus: del.status, samples,
    video: { packetsSent: v.packetsSent, framesEncoded: v.framesEncoded, targetBitrate: v.targetBitrate, nackCount: v.nackCount,
             pliCount: v.pliCount, bytesSent: v.bytesSent, frameWidth: v.frameWidth, encoderImplementation: v.encoderImplementation },
  };
}

main().catch((e) => { console.error(e); process.exit(1); });
