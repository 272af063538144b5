#!/usr/bin/env node
// Captures real SDP offers from headless Chromium and Firefox into
// crates/rtc/tests/fixtures/sdp/{chromium,firefox}-<kind>.sdp. Run it inside a private
// network namespace (docs/TESTING.md) so the candidates are 127.0.0.1 and 10.99.0.1:
//   unshare -n bash -c 'ip link set lo up && ... && exec node tests/browser/capture-offers.js'
// KINDS=whip-simulcast,whep (comma-separated) captures only those kinds.
'use strict';

const fs = require('fs');
const path = require('path');
const { startServer, launch, OFFER_KINDS, pageMakeOffer, pageCloseAll } = require('./lib');

const OUT = path.join(__dirname, '..', '..', 'crates', 'rtc', 'tests', 'fixtures', 'sdp');

async function capture(name, url) {
  const browser = await launch(name, url);
  try {
    const kinds = process.env.KINDS ? process.env.KINDS.split(',') : OFFER_KINDS;
    for (const kind of kinds) {
      const { sdp } = await browser.page.evaluate(pageMakeOffer, { kind, gather: true });
      const file = path.join(OUT, `${name}-${kind}.sdp`);
      fs.writeFileSync(file, sdp);
      console.log(`wrote ${path.relative(process.cwd(), file)}`);
    }
    await browser.page.evaluate(pageCloseAll);
  } finally {
    await browser.close();
  }
}

async function main() {
  const names = process.argv.length > 2 ? process.argv.slice(2) : ['chromium', 'firefox'];
  fs.mkdirSync(OUT, { recursive: true });
  const server = await startServer();
  const url = `http://127.0.0.1:${server.address().port}/`;
  try {
    for (const name of names) await capture(name, url);
  } finally {
    server.close();
  }
}

setTimeout(() => { console.error('capture-offers: timed out'); process.exit(2); }, 120000).unref();
main().catch((e) => { console.error(e); process.exit(1); });
