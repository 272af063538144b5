// Plays (WHEP) or publishes (WHIP, then plays that back) from a running leanrtc in a real
// headless browser and reports which transport ICE selected, for issue 13's restrictive
// network tests (crates/server/tests/restrictive_networks.rs). The page is served from
// 127.0.0.1 in the browser's own network namespace (a secure context); leanrtc is another
// origin (CORS). Prints one JSON line; pids go to stderr as {"pids":[..]}.
//   node ice-transport.js '{"browser":"chromium","base":"http://10.77.0.1:PORT","mode":"play",
//                           "stream":"sample","seconds":10,"relay":false}'
// With "relay": true the page asks the endpoint (OPTIONS) for its ICE servers — the Link
// headers of --ice-server — and sets iceTransportPolicy 'relay'.
'use strict';

const { startServer, launch, exitPlan } = require('./lib');

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const server = await startServer();
  const plan = exitPlan('ice-transport.js', server, (opts.seconds * 2 + 90) * 1000);
  const page = `http://127.0.0.1:${server.address().port}/`;
  const browser = await launch(opts.browser, page, { fakeVideoFps: 30 });
  plan.setBrowser(browser);
  process.stderr.write(JSON.stringify({ pids: browser.pids }) + '\n');
  browser.page.on('console', (m) => process.stderr.write(`page: ${m.text()}\n`));
  const result = await browser.page.evaluate(runInPage, opts);
  process.stdout.write(JSON.stringify(result) + '\n');
  await plan.shutdown(0);
}

// ---- In the page.
async function runInPage({ base, mode, stream, seconds, relay }) {
  const config = { iceServers: [] };
  if (relay) {
    // RFC 9725 §4.6: the endpoint names its STUN/TURN servers in Link headers.
    const res = await fetch(`${base}/${mode === 'play' ? 'whep' : 'whip'}/${stream}`, { method: 'OPTIONS' });
    const links = (res.headers.get('Link') || '').split(/,\s*(?=<)/).filter((l) => l.includes('rel="ice-server"'));
    for (const link of links) {
      const url = link.match(/^<([^>]+)>/)[1];
      const param = (name) => { const m = link.match(new RegExp(`;\\s*${name}="([^"]*)"`)); return m ? m[1] : undefined; };
      const server = { urls: url };
      if (param('username') !== undefined) { server.username = param('username'); server.credential = param('credential'); }
      config.iceServers.push(server);
    }
    if (config.iceServers.length === 0) return { error: 'no Link rel="ice-server" in the OPTIONS answer' };
    config.iceTransportPolicy = 'relay';
  }

  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });

  // Which candidates the selected pair joins (getStats: transport -> candidate-pair).
  const selectedPair = async (pc) => {
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId; });
    const pair = pairId && stats.get(pairId);
    if (!pair) return null;
    const c = (id) => { const x = stats.get(id) || {}; return { protocol: x.protocol, candidateType: x.candidateType, relayProtocol: x.relayProtocol, tcpType: x.tcpType, address: x.address, port: x.port }; };
    return { local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId), state: pair.state };
  };

  // WHEP for `seconds` from the POST: frames decoded, first frame, the selected pair.
  const play = async () => {
    const pc = new RTCPeerConnection(config);
    const states = [];
    pc.onconnectionstatechange = () => states.push(pc.connectionState);
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const t0 = performance.now();
    const res = await fetch(`${base}/whep/${stream}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (res.status !== 201) return { error: `WHEP POST ${res.status}: ${await res.text()}` };
    const location = new URL(res.headers.get('Location'), base).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    let video = {};
    let firstFrameMs = null;
    while (performance.now() - t0 < seconds * 1000) {
      (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') video = r; });
      if (firstFrameMs === null && video.framesDecoded > 0) firstFrameMs = performance.now() - t0;
      await new Promise((r) => setTimeout(r, firstFrameMs === null ? 10 : 250));
    }
    const pair = await selectedPair(pc);
    const finalState = pc.connectionState;
    await fetch(location, { method: 'DELETE' });
    pc.close();
    return { framesDecoded: video.framesDecoded || 0, frameWidth: video.frameWidth, frameHeight: video.frameHeight, packetsLost: video.packetsLost, firstFrameMs, states, finalState, pair };
  };

  if (mode === 'play') return { play: await play() };

  // WHIP: the fake camera and microphone; then play the stream back over the same kind of path.
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  const pub = new RTCPeerConnection(config);
  const pubStates = [];
  pub.onconnectionstatechange = () => pubStates.push(pub.connectionState);
  for (const track of media.getTracks()) pub.addTransceiver(track, { direction: 'sendonly', streams: [media] });
  await pub.setLocalDescription(await pub.createOffer());
  await gathered(pub);
  const res = await fetch(`${base}/whip/${stream}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pub.localDescription.sdp });
  if (res.status !== 201) return { error: `WHIP POST ${res.status}: ${await res.text()}` };
  const location = new URL(res.headers.get('Location'), base).href;
  await pub.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  const t0 = performance.now();
  while (pub.connectionState !== 'connected' && performance.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
  const connectedMs = pub.connectionState === 'connected' ? performance.now() - t0 : null;
  const played = await play();
  let sent = {};
  (await pub.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video') sent = r; });
  const publish = { connectedMs, states: pubStates, finalState: pub.connectionState, framesSent: sent.framesSent || 0, pair: await selectedPair(pub) };
  await fetch(location, { method: 'DELETE' });
  pub.close();
  media.getTracks().forEach((t) => t.stop());
  return { publish, play: played };
}

main().catch((e) => { console.error(e); process.exit(1); });
