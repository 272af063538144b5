// Publishes the browser's fake camera and microphone to a running leanrtc with WHIP and
// prints one JSON line with the browser's outbound getStats, sampled every 500 ms.
//   node whip-publish.js <chromium|firefox> <http://127.0.0.1:PORT> <stream> <seconds> [codec] [width] [height]
// Chromium's fake camera runs at 30 fps here (its default is 20). With LEANRTC_FAKE_VIDEO=FILE
// (a .y4m or .mjpeg), Chromium's camera plays that file instead of its test pattern. With
// LEANRTC_OFFER_NO_TWCC=1 the offer POSTed leaves out transport-wide CC (its header extension
// and rtcp-fb), so that it is not negotiated at all.
'use strict';

const { launch } = require('./lib');

async function main() {
  const [name = 'chromium', base = 'http://127.0.0.1:8080', stream = 'cam', seconds = '10', codec = '',
    width = '640', height = '360'] = process.argv.slice(2);
  setTimeout(() => { console.error('whip-publish.js: hard timeout'); process.exit(2); }, (Number(seconds) + 90) * 1000).unref();
  const browser = await launch(name, base + '/', { fakeVideoFps: 30, fakeVideoFile: process.env.LEANRTC_FAKE_VIDEO });
  process.stderr.write(JSON.stringify({ pids: browser.pids }) + '\n');
  try {
    const result = await browser.page.evaluate(runInPage, {
      url: `${base}/whip/${stream}`, seconds: Number(seconds), codec, width: Number(width), height: Number(height),
      noTwcc: process.env.LEANRTC_OFFER_NO_TWCC === '1',
    });
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
  }
}

// Runs in the page: getUserMedia, WHIP, then samples outbound stats every 500 ms.
async function runInPage({ url, seconds, codec, width, height, noTwcc }) {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width, height, frameRate: 30 }, audio: true });
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
  let offer = pc.localDescription.sdp;
  if (noTwcc) offer = offer.split('\r\n').filter((l) => !/transport-cc|transport-wide-cc/.test(l)).join('\r\n');
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
  if (res.status !== 201) return { error: `POST ${res.status}: ${await res.text()}` };
  const location = res.headers.get('Location');
  const answer = await res.text();
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  // What the answer negotiated for feedback, video m-line only.
  const videoPart = answer.split('m=video')[1] || '';
  const feedback = videoPart.split('m=')[0].split('\r\n').filter((l) => /^a=(rtcp-fb|extmap):/.test(l));
  const t0 = performance.now();
  const samples = [];
  const end = t0 + seconds * 1000;
  let v = {};
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    let pair = {};
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') v = r;
      if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
    });
    samples.push({
      t: Math.round(performance.now() - t0), bytesSent: v.bytesSent, targetBitrate: v.targetBitrate, framesSent: v.framesSent,
      frameWidth: v.frameWidth, frameHeight: v.frameHeight, qualityLimitationReason: v.qualityLimitationReason,
      availableOutgoingBitrate: pair.availableOutgoingBitrate, rtt: pair.currentRoundTripTime,
    });
  }
  const del = await fetch(new URL(location, url), { method: 'DELETE' });
  pc.close();
  media.getTracks().forEach((t) => t.stop());
  return {
    states, deleteStatus: del.status, samples, feedback,
    video: { packetsSent: v.packetsSent, framesEncoded: v.framesEncoded, framesSent: v.framesSent, targetBitrate: v.targetBitrate,
             nackCount: v.nackCount, pliCount: v.pliCount, bytesSent: v.bytesSent, frameWidth: v.frameWidth,
             frameHeight: v.frameHeight, encoderImplementation: v.encoderImplementation,
             qualityLimitationReason: v.qualityLimitationReason },
  };
}

main().catch((e) => { console.error(e); process.exit(1); });
