#!/usr/bin/env node
// Lets a test drive one headless Chromium (or Firefox) that publishes with WHIP and plays with
// WHEP from a running leanrtc, in named pages, one JSON object per line:
//   <- {"type":"ready"}                                          browser up
//   -> {"cmd":"publish","page":"pub","stream":"cam","codec":"vp8","width":640,"height":360}
//      ("simulcast":true sends the video as RID layers q, h, f at 1/4, 1/2 and full size)
//                                   <- {"type":"published","status":201,"location":..,"connectedMs":..}
//   -> {"cmd":"play","page":"view","stream":"cam"}             <- {"type":"playing","status":201,..}
//      (publish and play take an optional "base": another server than the one named below)
//   -> {"cmd":"stats","page":"view"}                           <- {"type":"stats",..}
//   -> {"cmd":"close","page":"pub"}     RTCPeerConnection.close() without DELETE (a publisher
//                                       going away uncleanly)           <- {"type":"closed",..}
//   -> {"cmd":"unpublish","page":"pub"} last stats, then DELETE          <- {"type":"unpublished",..}
//   -> {"cmd":"quit"}                                          <- {"type":"bye"}, exit 0
// A failed step answers {"type":"error","error":".."}. The browser's pids go to stderr as
// {"pids":[..]} for the supervisor (crates/server/tests/common/browser.rs), which kills them
// if this script dies. The pages are served from another port than leanrtc's (CORS applies).
// Usage: node publish-play.js <chromium|firefox> <http://127.0.0.1:PORT>
'use strict';

const readline = require('readline');
const { startServer, launch, exitPlan } = require('./lib');

const HARD_TIMEOUT_MS = 300000;

// ---- In the page (injected as a script: see PAGE_SCRIPT). Each page keeps its connections
// in window.pcs, each with its samples in pc.rec; every page* function returns plain JSON.

// WHIP: camera + microphone, sendonly, optionally preferring one video codec; resolves once
// the connection is up (or with an error).
async function pagePublish({ url, codec, width, height, simulcast }) {
  window.pcs = window.pcs || [];
  window.posts = (window.posts || 0) + 1;
  if (!window.media) {
    window.media = await navigator.mediaDevices.getUserMedia({ video: { width, height, frameRate: 30 }, audio: true });
  }
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pcs.push(pc);
  const rec = { states: [], t0: performance.now() };
  pc.rec = rec;
  pc.onconnectionstatechange = () => rec.states.push(pc.connectionState);
  for (const track of window.media.getTracks()) {
    const init = { direction: 'sendonly', streams: [window.media] };
    if (simulcast && track.kind === 'video') {
      init.sendEncodings = [
        { rid: 'q', scaleResolutionDownBy: 4 }, { rid: 'h', scaleResolutionDownBy: 2 }, { rid: 'f' },
      ];
    }
    const t = pc.addTransceiver(track, init);
    if (codec && track.kind === 'video' && t.setCodecPreferences) {
      // Offer that codec alone (with the formats that only repair or protect it): a sender
      // uses the first codec of the *answer*, and leanrtc's answer keeps its own order
      // (VP8 before H.264), so a mere preference for H.264 would still send VP8.
      const caps = RTCRtpSender.getCapabilities('video').codecs;
      const mime = (c) => c.mimeType.toLowerCase();
      const wanted = caps.filter((c) => mime(c) === `video/${codec.toLowerCase()}`);
      if (wanted.length === 0) return { error: `the browser cannot send ${codec}` };
      const repair = caps.filter((c) => ['video/rtx', 'video/red', 'video/ulpfec'].includes(mime(c)));
      t.setCodecPreferences([...wanted, ...repair]);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) return { status: res.status, error: `POST ${res.status}: ${text}` };
  pc.location = new URL(res.headers.get('Location'), url).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  const connected = await new Promise((resolve) => {
    const check = () => {
      if (pc.connectionState === 'connected') resolve(true);
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') resolve(false);
    };
    pc.addEventListener('connectionstatechange', check);
    check();
    setTimeout(() => resolve(false), 10000);
  });
  if (!connected) return { status: res.status, error: `not connected within 10 s: ${rec.states}` };
  sample(pc, 'outbound');
  return { status: res.status, location: pc.location, connectedMs: Math.round(performance.now() - rec.t0) };
}

// WHEP: recvonly video + audio; samples inbound stats every 250 ms from then on.
async function pagePlay({ url }) {
  window.pcs = window.pcs || [];
  window.posts = (window.posts || 0) + 1;
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pcs.push(pc);
  const rec = { states: [], t0: performance.now(), negotiations: 0 };
  pc.rec = rec;
  pc.onconnectionstatechange = () => rec.states.push(pc.connectionState);
  // Anything that would make the viewer renegotiate shows here.
  pc.onnegotiationneeded = () => { rec.negotiations += 1; };
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  rec.t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) return { status: res.status, error: `POST ${res.status}: ${text}` };
  pc.location = new URL(res.headers.get('Location'), url).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  // Count only what would renegotiate after the answer (the first offer's event is not).
  await new Promise((r) => setTimeout(r, 0));
  rec.negotiations = 0;
  sample(pc, 'inbound');
  return { status: res.status, location: pc.location };
}

function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 1000);
  });
}

// Samples pc's stats every 250 ms into pc.rec.samples (time in ms since the POST).
function sample(pc, direction) {
  const rec = pc.rec;
  rec.samples = [];
  const tick = async () => {
    if (pc.connectionState === 'closed') return;
    const s = await readStats(pc);
    const t = Math.round(performance.now() - rec.t0);
    if (direction === 'inbound') {
      const v = s.inboundVideo || {};
      // The jitter buffer's delay, averaged over the frames it released since the last sample.
      const prev = rec.prevJitter || { delay: 0, count: 0 };
      const cur = { delay: v.jitterBufferDelay || 0, count: v.jitterBufferEmittedCount || 0 };
      const jitterMs = cur.count > prev.count ? Math.round((1000 * (cur.delay - prev.delay)) / (cur.count - prev.count)) : null;
      rec.prevJitter = cur;
      rec.samples.push({
        t, framesDecoded: v.framesDecoded || 0, framesReceived: v.framesReceived || 0, keyFramesDecoded: v.keyFramesDecoded || 0,
        pliCount: v.pliCount || 0, jitterMs, targetMs: v.jitterBufferTargetDelay !== undefined && v.jitterBufferEmittedCount
          ? Math.round((1000 * v.jitterBufferTargetDelay) / v.jitterBufferEmittedCount) : null, state: pc.connectionState,
      });
      if (rec.t60 === undefined && v.framesDecoded >= 60) rec.t60 = t;
    } else {
      const v = s.outboundVideo || {};
      rec.samples.push({ t, framesSent: v.framesSent || 0, bytesSent: v.bytesSent || 0, targetBitrate: v.targetBitrate });
    }
    rec.last = s;
    setTimeout(tick, 250);
  };
  tick();
}

async function readStats(pc) {
  const out = {};
  const stats = await pc.getStats();
  stats.forEach((r) => {
    const kind = r.kind === 'video' ? 'Video' : 'Audio';
    // A copy with the codec's MIME type (getStats only links to it).
    const withCodec = () => ({ ...r, codec: r.codecId && stats.get(r.codecId) ? stats.get(r.codecId).mimeType : undefined });
    if (r.type === 'inbound-rtp') out[`inbound${kind}`] = withCodec();
    if (r.type === 'outbound-rtp') out[`outbound${kind}`] = withCodec();
    if (r.type === 'transport') out.transport = r;
  });
  return out;
}

function pick(r, fields) {
  const o = {};
  for (const f of fields) if (r && r[f] !== undefined) o[f] = r[f];
  return o;
}

// The latest stats of every connection this page made, oldest first.
async function pageStats() {
  const all = [];
  for (const pc of window.pcs || []) {
    const s = pc.connectionState === 'closed' ? (pc.rec.last || {}) : await readStats(pc);
    all.push({
      connectionState: pc.connectionState,
      signalingState: pc.signalingState,
      states: pc.rec.states,
      negotiations: pc.rec.negotiations,
      t60: pc.rec.t60,
      samples: pc.rec.samples,
      inboundVideo: pick(s.inboundVideo, ['framesDecoded', 'framesReceived', 'framesDropped', 'frameWidth', 'frameHeight',
        'packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount', 'keyFramesDecoded', 'codec', 'totalFreezesDuration',
        'freezeCount', 'bytesReceived']),
      inboundAudio: pick(s.inboundAudio, ['packetsReceived', 'bytesReceived', 'totalSamplesReceived']),
      outboundVideo: pick(s.outboundVideo, ['framesEncoded', 'framesSent', 'keyFramesEncoded', 'packetsSent', 'bytesSent',
        'targetBitrate', 'frameWidth', 'frameHeight', 'nackCount', 'pliCount', 'firCount', 'qualityLimitationReason',
        'encoderImplementation', 'codec']),
      outboundAudio: pick(s.outboundAudio, ['packetsSent', 'bytesSent']),
      transport: pick(s.transport, ['dtlsState', 'tlsVersion', 'tlsGroup', 'srtpCipher']),
    });
  }
  return { posts: window.posts || 0, pcs: all };
}

// Closes the newest connection without DELETE.
async function pageClose() {
  const pc = window.pcs[window.pcs.length - 1];
  pc.rec.last = await readStats(pc);
  pc.close();
  return { location: pc.location };
}

// Final stats of the newest connection, then DELETE and close it.
async function pageUnpublish() {
  const pc = window.pcs[window.pcs.length - 1];
  pc.rec.last = await readStats(pc);
  const del = await fetch(pc.location, { method: 'DELETE' });
  pc.close();
  return { deleteStatus: del.status };
}

// ---- In node.

const PAGE_SCRIPT = [pagePublish, pagePlay, gathered, sample, readStats, pick, pageStats, pageClose, pageUnpublish]
  .map((f) => f.toString()).join('\n');

// Calls page function `fn` (by name) with `args` in page `p`.
function call(p, fn, args) {
  return p.evaluate(({ fn, args }) => window[fn](args), { fn, args });
}

function send(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  const [name = 'chromium', base = 'http://127.0.0.1:8080'] = process.argv.slice(2);
  const pageServer = await startServer();
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/`;
  const { shutdown, setBrowser } = exitPlan('publish-play', pageServer, HARD_TIMEOUT_MS);

  // A 30 fps camera, as the tests expect (Chromium's fake one runs at 20 fps by default).
  const browser = await launch(name, pageUrl, { fakeVideoFps: 30 });
  setBrowser(browser);
  process.stderr.write(`${JSON.stringify({ pids: browser.pids })}\n`);
  const pages = { first: browser.page };
  let firstUsed = false;
  const page = async (key) => {
    if (!pages[key]) {
      if (!firstUsed) { pages[key] = pages.first; firstUsed = true; } else pages[key] = await browser.newPage();
      await pages[key].addScriptTag({ content: PAGE_SCRIPT });
    }
    return pages[key];
  };
  send({ type: 'ready' });

  const lines = readline.createInterface({ input: process.stdin });
  lines.on('close', () => shutdown(4));
  for await (const line of lines) {
    const msg = JSON.parse(line);
    try {
      if (msg.cmd === 'publish') {
        const r = await call(await page(msg.page), 'pagePublish', {
          url: `${msg.base || base}/whip/${msg.stream}`, codec: msg.codec || '', width: msg.width || 640, height: msg.height || 360,
          simulcast: !!msg.simulcast,
        });
        send(r.error ? { type: 'error', ...r } : { type: 'published', ...r });
      } else if (msg.cmd === 'play') {
        const r = await call(await page(msg.page), 'pagePlay', { url: `${msg.base || base}/whep/${msg.stream}` });
        send(r.error ? { type: 'error', ...r } : { type: 'playing', ...r });
      } else if (msg.cmd === 'stats') {
        send({ type: 'stats', ...(await call(await page(msg.page), 'pageStats', {})) });
      } else if (msg.cmd === 'close') {
        send({ type: 'closed', ...(await call(await page(msg.page), 'pageClose', {})) });
      } else if (msg.cmd === 'unpublish') {
        send({ type: 'unpublished', ...(await call(await page(msg.page), 'pageUnpublish', {})) });
      } else if (msg.cmd === 'quit') {
        send({ type: 'bye' });
        await shutdown(0);
      } else {
        send({ type: 'error', error: `unknown command ${line}` });
      }
    } catch (e) {
      send({ type: 'error', error: `${e.name}: ${e.message}` });
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
