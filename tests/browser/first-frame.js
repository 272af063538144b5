// Measures leanrtc with headless Chromium (not a test: it prints figures).
//  1. Time from the WHEP POST to the first decoded frame, N plays one after another (each a
//     fresh RTCPeerConnection in one browser): as getStats shows it (polled every 10 ms, the
//     harness the aiortc figure in the shared BROWSER-TESTING.md came from; Chromium caches
//     reports, so this lags), as the first VideoFrame out of the track, and as the first
//     frame a <video> element presents (requestVideoFrameCallback: what a user sees).
//  2. The server's CPU time (utime + stime from /proc/PID/stat) over W seconds with no
//     viewer, then with K Chromium viewers playing at once (skipped with K = 0).
//   node first-frame.js <http://127.0.0.1:PORT> <server-pid> [N=10] [K=10] [W=10] [stream=sample]
// Run it through first-frame.sh, which builds a release server and uses a network namespace.
'use strict';

const fs = require('fs');
const { launch } = require('./lib');
const { runInPage } = require('./whep-play');

// CPU time of a process in seconds: the sum of its threads' run time in
// /proc/PID/task/TID/schedstat (nanoseconds), and utime + stime from /proc/PID/stat (clock
// ticks of 1/100 s on Linux) as a cross-check.
function cpuSeconds(pid) {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  }
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { schedstat: ns / 1e9, stat: (Number(fields[11]) + Number(fields[12])) / 100 }; // fields 14 and 15
}

async function cpuOver(pid, seconds) {
  const c0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = cpuSeconds(pid);
  // Shares of one core.
  return { schedstat: (c1.schedstat - c0.schedstat) / wall, stat: (c1.stat - c0.stat) / wall };
}

// Runs in the page: K WHEP viewers at once; resolves when every one has decoded a frame.
async function pageOpenViewers({ url, k }) {
  window.viewers = [];
  const open = async () => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error(`POST ${res.status}: ${await res.text()}`);
    const location = new URL(res.headers.get('Location'), url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    window.viewers.push({ pc, location });
    for (let i = 0; i < 1000; i++) {
      let frames = 0;
      (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded; });
      if (frames > 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('a viewer decoded no frame in 20 s');
  };
  await Promise.all(Array.from({ length: k }, open));
}

// Runs in the page: each viewer's decoded frames; then DELETE and close them all.
async function pageCloseViewers() {
  const out = [];
  for (const { pc, location } of window.viewers) {
    let frames = 0;
    (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded; });
    out.push({ frames, state: pc.connectionState, deleteStatus: (await fetch(location, { method: 'DELETE' })).status });
    pc.close();
  }
  window.viewers = [];
  return out;
}

const fmt = (v) => (v === null || v === undefined ? '-' : v.toFixed(1));

function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1] };
}

async function main() {
  const [base, pid, n = '10', k = '10', w = '10', stream = 'sample'] = process.argv.slice(2);
  if (!base || !pid) throw new Error('usage: first-frame.js <base-url> <server-pid> [N] [K] [W] [stream]');
  const url = `${base}/whep/${stream}`;
  setTimeout(() => { console.error('first-frame.js: hard timeout'); process.exit(2); }, (Number(n) * 3 + Number(w) * 2 + 120) * 1000).unref();
  const browser = await launch('chromium', base + '/');
  process.stderr.write(JSON.stringify({ pids: browser.pids }) + '\n');
  try {
    const plays = [];
    for (let i = 0; i < Number(n); i++) {
      const r = await browser.page.evaluate(runInPage, { url, seconds: 1.5 });
      if (r.error || r.firstFrameMs === null) throw new Error(`play ${i}: ${JSON.stringify(r)}`);
      plays.push(r);
      const got = r.firstFrames.map((f) => `${f.type[0]}@${f.ms.toFixed(0)}`).join(' ');
      console.log(`play ${i + 1}: first frame ${r.firstFrameMs.toFixed(1)} ms (getStats), ${fmt(r.firstFrameTrackMs)} ms (track), ${fmt(r.firstPresentedMs)} ms (presented); connected ${r.connectedMs.toFixed(1)} ms; first encoded frames ${got}`);
    }
    const first = summary(plays.map((p) => p.firstFrameMs));
    const connected = summary(plays.map((p) => p.connectedMs));
    const track = plays.every((p) => p.firstFrameTrackMs !== null) ? summary(plays.map((p) => p.firstFrameTrackMs)) : null;
    const presented = plays.every((p) => p.firstPresentedMs !== null) ? summary(plays.map((p) => p.firstPresentedMs)) : null;
    console.log(`POST → first decoded frame, ${n} plays: median ${first.median.toFixed(1)} ms, min ${first.min.toFixed(1)}, max ${first.max.toFixed(1)}`);
    if (track) console.log(`POST → first frame out of the track:  median ${track.median.toFixed(1)} ms, min ${track.min.toFixed(1)}, max ${track.max.toFixed(1)}`);
    if (presented) console.log(`POST → first frame presented:         median ${presented.median.toFixed(1)} ms, min ${presented.min.toFixed(1)}, max ${presented.max.toFixed(1)}`);
    console.log(`POST → connectionState connected:     median ${connected.median.toFixed(1)} ms, min ${connected.min.toFixed(1)}, max ${connected.max.toFixed(1)}`);

    if (Number(k) === 0) {
      console.log(JSON.stringify({ firstFrameMs: first, firstFrameTrackMs: track, firstPresentedMs: presented, connectedMs: connected, plays: plays.map((p) => p.firstFrameMs) }));
      return;
    }
    const idle = await cpuOver(pid, Number(w));
    await browser.page.evaluate(pageOpenViewers, { url, k: Number(k) });
    const busy = await cpuOver(pid, Number(w));
    const viewers = await browser.page.evaluate(pageCloseViewers);
    const perViewer = (busy.schedstat - idle.schedstat) / Number(k);
    const pct = (v) => `${(v * 100).toFixed(2)} %`;
    console.log(`server CPU over ${w} s (schedstat; /proc/PID/stat utime+stime in brackets): 0 viewers ${pct(idle.schedstat)} [${pct(idle.stat)}], ${k} Chromium viewers ${pct(busy.schedstat)} [${pct(busy.stat)}] of a core → ${(perViewer * 100).toFixed(3)} % per viewer [${((busy.stat - idle.stat) * 100 / Number(k)).toFixed(3)} %]`);
    console.log(`viewers' decoded frames at the end: ${viewers.map((v) => v.frames).join(' ')}; states ${[...new Set(viewers.map((v) => v.state))]}; DELETE ${[...new Set(viewers.map((v) => v.deleteStatus))]}`);
    console.log(JSON.stringify({ firstFrameMs: first, firstFrameTrackMs: track, firstPresentedMs: presented, connectedMs: connected, plays: plays.map((p) => p.firstFrameMs), cpu: { idle, busy, viewers: Number(k), perViewer } }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
