// Plays a media file (a leanrtc recording) in a <video> element of headless Chromium, served
// from a tiny loopback HTTP server (with Range requests, as a browser's media loader uses),
// then seeks to 2 s before its end and plays on for 1 s; prints one JSON line: the element's
// duration, size, how far it played, where it was after the seek, the bytes its audio and
// video decoders took, and any error. The browser's pids go to stderr as
// {"pids":[..]} so a supervisor (the Rust tests) can kill them if this script dies.
//   node play-file.js <file> <content-type> [seconds-to-play=3]
'use strict';

const fs = require('fs');
const http = require('http');
const { launch } = require('./lib');

function serve(file, type) {
  const server = http.createServer((req, res) => {
    if (req.url !== '/file') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>play</title>');
      return;
    }
    const size = fs.statSync(file).size;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
    if (range) {
      const start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
      const end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), size - 1) : size - 1;
      res.writeHead(206, {
        'Content-Type': type, 'Accept-Ranges': 'bytes',
        'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1,
      });
      fs.createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Length': size });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Runs in the page: loads the file, plays it muted for `seconds`, reports.
async function pagePlay({ seconds }) {
  const v = document.createElement('video');
  v.muted = true;
  v.preload = 'auto';
  document.body.appendChild(v);
  const loaded = new Promise((resolve, reject) => {
    v.addEventListener('loadedmetadata', resolve);
    v.addEventListener('error', () => reject(new Error(`media error ${v.error && v.error.code}: ${v.error && v.error.message}`)));
  });
  v.src = '/file';
  try {
    await loaded;
    await v.play();
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) await new Promise((r) => setTimeout(r, 100));
  } catch (e) {
    return { error: String(e) };
  }
  const currentTime = v.currentTime;
  // Then a seek near the end (the file's Cues say where), and a second of play from there.
  const seekTarget = Math.max(0, v.duration - 2);
  const seeked = new Promise((r) => v.addEventListener('seeked', r, { once: true }));
  v.currentTime = seekTarget;
  await Promise.race([seeked, new Promise((r) => setTimeout(r, 5000))]);
  await new Promise((r) => setTimeout(r, 1000));
  return {
    duration: v.duration,
    videoWidth: v.videoWidth,
    videoHeight: v.videoHeight,
    currentTime,
    seekTarget,
    afterSeek: v.currentTime,
    paused: v.paused,
    audioBytes: v.webkitAudioDecodedByteCount,
    videoBytes: v.webkitVideoDecodedByteCount,
    error: v.error ? `media error ${v.error.code}: ${v.error.message}` : null,
  };
}

async function main() {
  const [file, type = 'video/webm', seconds = '3'] = process.argv.slice(2);
  setTimeout(() => { console.error('play-file.js: hard timeout'); process.exit(2); }, (Number(seconds) + 60) * 1000).unref();
  const server = await serve(file, type);
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch('chromium', base + '/');
  process.stderr.write(JSON.stringify({ pids: browser.pids }) + '\n');
  try {
    const result = await browser.page.evaluate(pagePlay, { seconds: Number(seconds) });
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
