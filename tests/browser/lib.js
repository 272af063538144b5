// Shared helpers for leanrtc's browser scripts: launch Debian's Chromium (playwright-core)
// or Firefox ESR (puppeteer-core) headless with fake media, serve a blank page from
// 127.0.0.1 (getUserMedia needs a secure context; localhost is one), and drive
// RTCPeerConnections in it. See docs/TESTING.md.
'use strict';

const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const CHROMIUM = '/usr/bin/chromium';
const FIREFOX = '/usr/bin/firefox-esr';

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
];

const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.peerconnection.ice.loopback': true,
};

// A tiny static server for the blank page the browsers run in.
function startServer() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>leanrtc</title>');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// Launches `name` ('chromium' | 'firefox'); returns { page, pids, newPage, close }. `pids` are the
// browser processes, which the drivers start in their own process groups: the caller
// reports them so a supervisor can kill the groups if this script dies.
// Chromium only: `opts.fakeVideoFps` is the fake camera's frame rate (its default is 20 fps),
// `opts.fakeVideoFile` a .y4m/.mjpeg file the fake camera plays instead of its test pattern.
// Both browsers: `opts.initScript` (source text) runs in every page before the page's own
// scripts, `opts.onPage(page)` sees every page before it loads, and `open(url)` opens
// another page at `url`.
async function launch(name, url, opts = {}) {
  if (name === 'chromium') {
    const { chromium } = require('playwright-core');
    let args = opts.fakeVideoFps
      ? CHROMIUM_ARGS.map((a) => (a === '--use-fake-device-for-media-stream' ? `${a}=fps=${opts.fakeVideoFps}` : a))
      : CHROMIUM_ARGS;
    if (opts.fakeVideoFile) args = [...args, `--use-file-for-fake-video-capture=${opts.fakeVideoFile}`];
    const server = await chromium.launchServer({
      executablePath: CHROMIUM, headless: true, args,
    });
    const pids = [server.process().pid];
    const browser = await chromium.connect(server.wsEndpoint());
    const open = async (to) => {
      const p = await browser.newPage();
      if (opts.initScript) await p.addInitScript(opts.initScript);
      if (opts.onPage) opts.onPage(p);
      await p.goto(to);
      return p;
    };
    const page = await open(url);
    const newPage = () => open(url);
    return { page, pids, newPage, open, close: async () => { await browser.close(); await server.close(); } };
  }
  if (name === 'firefox') {
    const puppeteer = require('puppeteer-core');
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'leanrtc-firefox-'));
    // Whatever way node ends (a hard timeout, SIGTERM, an error), the profile goes with it.
    process.on('exit', () => fs.rmSync(profile, { recursive: true, force: true }));
    const browser = await puppeteer.launch({
      browser: 'firefox', executablePath: FIREFOX, headless: true,
      userDataDir: profile, extraPrefsFirefox: FIREFOX_PREFS,
    });
    const pids = [browser.process().pid];
    const open = async (to) => {
      const p = await browser.newPage();
      if (opts.initScript) await p.evaluateOnNewDocument(opts.initScript);
      if (opts.onPage) opts.onPage(p);
      await p.goto(to);
      return p;
    };
    const page = await open(url);
    const newPage = () => open(url);
    const close = async () => {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    };
    return { page, pids, newPage, open, close };
  }
  throw new Error(`unknown browser ${name} (chromium or firefox)`);
}

// The offers we capture and answer, one per WHIP/WHEP use.
// `sendrecv` is a plain addTrack() offer, which WHIP allows (RFC 9725 §4.2).
// `whip-simulcast` sends its video as three RID layers (RFC 8853): sendEncodings q, h, f at
// 1/4, 1/2 and full resolution, as a simulcast publisher page does.
const OFFER_KINDS = ['whep', 'whip-vp8', 'whip-h264', 'datachannel', 'sendrecv', 'whip-simulcast'];

// Runs in the page: builds an RTCPeerConnection for `kind`, sets its offer as the local
// description and returns { id, sdp }. With `gather`, waits (up to 3 s) for ICE gathering
// so the offer carries the browser's candidates.
async function pageMakeOffer({ kind, gather }) {
  window.pcs = window.pcs || [];
  const pc = new RTCPeerConnection({ iceServers: [] });
  const id = window.pcs.push(pc) - 1;
  const recv = () => {
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
  };
  if (kind === 'whep') recv();
  if (kind === 'datachannel') { recv(); pc.createDataChannel('chat'); }
  if (kind.startsWith('whip') || kind === 'sendrecv') {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    for (const track of stream.getTracks()) {
      if (kind === 'sendrecv') { pc.addTrack(track, stream); continue; }
      const init = { direction: 'sendonly', streams: [stream] };
      if (kind === 'whip-simulcast' && track.kind === 'video') {
        init.sendEncodings = [
          { rid: 'q', scaleResolutionDownBy: 4 },
          { rid: 'h', scaleResolutionDownBy: 2 },
          { rid: 'f' },
        ];
      }
      const t = pc.addTransceiver(track, init);
      if (kind === 'whip-h264' && track.kind === 'video') {
        const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
        const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264');
        t.setCodecPreferences([...h264, ...codecs.filter((c) => !h264.includes(c))]);
      }
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  if (gather && pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
      });
    });
  }
  return { id, sdp: pc.localDescription.sdp };
}

// Runs in the page: applies `sdp` as the answer to offer `id`; returns whether the browser
// took it, and what it made of it.
async function pageApplyAnswer({ id, sdp }) {
  const pc = window.pcs[id];
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp });
  } catch (e) {
    return { ok: false, error: `${e.name}: ${e.message}` };
  }
  const transceivers = pc.getTransceivers().map((t) => ({
    mid: t.mid, kind: t.receiver.track.kind, currentDirection: t.currentDirection,
    stopped: t.currentDirection === 'stopped',
    // The simulcast layers the sender kept: a browser drops those the answer did not take.
    rids: t.sender.getParameters().encodings.map((e) => e.rid).filter(Boolean),
  }));
  return { ok: true, signalingState: pc.signalingState, transceivers, sctp: pc.sctp !== null };
}

// Runs in the page: closes and forgets every connection.
function pageCloseAll() {
  for (const pc of window.pcs || []) pc.close();
  window.pcs = [];
}

// One way out for a driver script: closes the browser (once `setBrowser` gave it) and the page
// server, then exits with `code`; also on SIGTERM (3) and after `hardTimeoutMs` (2), so a test
// that dies or hangs leaves no browser behind. Later calls return the first one's promise.
function exitPlan(label, server, hardTimeoutMs) {
  let browser = null;
  let closing = null;
  const shutdown = (code) => {
    if (!closing) {
      closing = (async () => {
        try { if (browser) await browser.close(); } catch (e) { console.error(e); }
        server.close();
        process.exit(code);
      })();
    }
    return closing;
  };
  setTimeout(() => { console.error(`${label}: hard timeout`); shutdown(2); }, hardTimeoutMs).unref();
  process.on('SIGTERM', () => shutdown(3));
  return { shutdown, setBrowser: (b) => { browser = b; } };
}

module.exports = {
  startServer, launch, exitPlan, OFFER_KINDS, pageMakeOffer, pageApplyAnswer, pageCloseAll,
};
