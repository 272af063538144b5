#!/usr/bin/env node
// Lets a test drive pages in one headless Chromium or Firefox, one JSON object per line:
//   <- {"type":"ready","blank":"http://127.0.0.1:P/"}   browser up; `blank` is an empty page
//                                                       on another origin than leanrtc's
//   -> {"cmd":"open","page":"a","url":"http://…/?play=sample"}       <- {"type":"ok"}
//   -> {"cmd":"click","page":"a","selector":"#publish"}             <- {"type":"ok"}
//   -> {"cmd":"fill","page":"a","selector":"#pubname","value":"cam"} <- {"type":"ok"}
//   -> {"cmd":"call","page":"a","fn":"pcSummary","args":{..}}  <- {"type":"ok","value":..}
//   -> {"cmd":"errors","page":"a"}   <- {"type":"ok","value":[uncaught errors, console errors,
//                                                            HTTP responses >= 400]}
//   -> {"cmd":"quit"}                    <- {"type":"bye"}, exit 0
// A failed step answers {"type":"error","error":".."}. The page functions `call` reaches are
// in page-fns.js; they run in every page before its own scripts, so they also see the pages'
// globals (leanrtc's page keeps `player` and `publisher`). The browser's pids go to stderr as
// {"pids":[..]} for the supervisor (crates/server/tests/common/web.rs), which kills them if
// this script dies. Closing stdin closes the browser.
// Usage: node page-driver.js <chromium|firefox>
'use strict';

const readline = require('readline');
const { startServer, launch, exitPlan } = require('./lib');
const { INIT_SCRIPT } = require('./page-fns');

const HARD_TIMEOUT_MS = 300000;

function send(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  const [name = 'chromium'] = process.argv.slice(2);
  const blankServer = await startServer();
  const blank = `http://127.0.0.1:${blankServer.address().port}/`;
  const { shutdown, setBrowser } = exitPlan('page-driver', blankServer, HARD_TIMEOUT_MS);

  // What each page reports by itself: uncaught exceptions and console errors.
  const problems = new Map();
  const onPage = (p) => {
    const list = [];
    problems.set(p, list);
    p.on('pageerror', (e) => list.push(`uncaught: ${e && e.message ? e.message : e}`));
    p.on('console', (m) => {
      if (m.type() !== 'error') return;
      const at = m.location && m.location() ? m.location().url : '';
      list.push(`console.error: ${m.text()}${at ? ` (${at})` : ''}`);
    });
    p.on('response', (r) => { if (r.status() >= 400) list.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`); });
    p.on('crash', () => list.push('the page crashed'));
    p.on('close', () => console.error('page-driver: a page closed'));
  };
  // A 30 fps fake camera (Chromium's default is 20 fps).
  const browser = await launch(name, blank, { fakeVideoFps: 30, initScript: INIT_SCRIPT, onPage });
  setBrowser(browser);
  process.stderr.write(`${JSON.stringify({ pids: browser.pids })}\n`);
  const pages = {};
  let spare = browser.page; // the page launch() opened, reused for the first `open`
  const page = (key) => {
    if (!pages[key]) throw new Error(`no page ${key}: open it first`);
    return pages[key];
  };
  send({ type: 'ready', blank });

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const msg = JSON.parse(line);
    try {
      if (msg.cmd === 'open') {
        if (pages[msg.page]) {
          await pages[msg.page].goto(msg.url);
        } else if (spare) {
          pages[msg.page] = spare;
          spare = null;
          await pages[msg.page].goto(msg.url);
        } else {
          pages[msg.page] = await browser.open(msg.url);
        }
        send({ type: 'ok' });
      } else if (msg.cmd === 'click') {
        await page(msg.page).click(msg.selector);
        send({ type: 'ok' });
      } else if (msg.cmd === 'fill') {
        await page(msg.page).evaluate(({ selector, value }) => {
          const el = document.querySelector(selector);
          el.value = value;
          el.dispatchEvent(new Event('input', { bubbles: true }));
        }, { selector: msg.selector, value: msg.value });
        send({ type: 'ok' });
      } else if (msg.cmd === 'call') {
        const value = await page(msg.page).evaluate(
          ({ fn, args }) => window.leanrtcTest[fn](args),
          { fn: msg.fn, args: msg.args || {} },
        );
        send({ type: 'ok', value: value === undefined ? null : value });
      } else if (msg.cmd === 'errors') {
        send({ type: 'ok', value: problems.get(page(msg.page)) || [] });
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
  // stdin closed (after every command it carried was answered): close the browser.
  await shutdown(4);
}

main().catch((e) => { console.error(e); process.exit(1); });
