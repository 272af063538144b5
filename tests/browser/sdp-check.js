#!/usr/bin/env node
// Lets a test drive one real browser's SDP handling, one JSON object per line:
//   <- {"type":"ready","pids":[...]}            browser up (pids: process-group leaders)
//   -> {"cmd":"offer","kind":"whep"}            <- {"type":"offer","id":0,"sdp":"..."}
//   -> {"cmd":"answer","id":0,"sdp":"..."}      <- {"type":"result","ok":true,...}
//   -> {"cmd":"answer-offer","sdp":"..."}       <- {"type":"answer","ok":true,"sdp":"..."}
//   -> {"cmd":"quit"}                           <- {"type":"bye"}, exit 0
// Usage: node sdp-check.js chromium|firefox. Used by crates/rtc/tests/sdp_browser.rs.
// It closes the browser when its stdin closes or after a hard timeout.
'use strict';

const readline = require('readline');
const { startServer, launch, exitPlan, pageMakeOffer, pageApplyAnswer } = require('./lib');

const HARD_TIMEOUT_MS = 120000;

// Runs in the page: answers an offer made by leanrtc, as a receiving browser would.
async function pageAnswerOffer({ sdp }) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pcs = window.pcs || [];
  window.pcs.push(pc);
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    return { ok: true, sdp: pc.localDescription.sdp };
  } catch (e) {
    return { ok: false, error: `${e.name}: ${e.message}` };
  }
}

function send(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  const name = process.argv[2];
  const server = await startServer();
  const { shutdown, setBrowser } = exitPlan('sdp-check', server, HARD_TIMEOUT_MS);

  const browser = await launch(name, `http://127.0.0.1:${server.address().port}/`);
  setBrowser(browser);
  send({ type: 'ready', pids: browser.pids });

  const lines = readline.createInterface({ input: process.stdin });
  lines.on('close', () => shutdown(4));
  for await (const line of lines) {
    const msg = JSON.parse(line);
    if (msg.cmd === 'offer') {
      const offer = await browser.page.evaluate(pageMakeOffer, { kind: msg.kind, gather: false });
      send({ type: 'offer', ...offer });
    } else if (msg.cmd === 'answer') {
      send({ type: 'result', ...(await browser.page.evaluate(pageApplyAnswer, msg)) });
    } else if (msg.cmd === 'answer-offer') {
      send({ type: 'answer', ...(await browser.page.evaluate(pageAnswerOffer, msg)) });
    } else if (msg.cmd === 'quit') {
      send({ type: 'bye' });
      await shutdown(0);
    } else {
      throw new Error(`unknown command ${line}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
