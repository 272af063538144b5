// Page-side helpers for page-driver.js. `install` runs in every page before the page's own
// scripts (INIT_SCRIPT is its source) and defines `window.leanrtcTest`, whose functions the
// driver's `call` command reaches by name; each takes one plain object and returns plain JSON.
//
// It also records every RTCPeerConnection the page makes (its connection and ICE states over
// time), by a subclass that only adds listeners: leanrtc's page is otherwise untouched. The
// page's own sessions are in its globals `player` and `publisher` ({ pc, name, location });
// `sessions` below are WHIP/WHEP sessions these helpers make themselves, keeping what the
// ICE-restart tests need (the answer, the ETag from the 201).
'use strict';

function install() {
  const T = {};
  window.leanrtcTest = T;
  const Native = window.RTCPeerConnection;
  const all = [];
  if (Native) {
    class Recorded extends Native {
      constructor(...args) {
        super(...args);
        const rec = { states: [], ice: [], t0: performance.now() };
        this.leanrtcRec = rec;
        all.push(this);
        const at = () => Math.round(performance.now() - rec.t0);
        this.addEventListener('connectionstatechange', () => rec.states.push([at(), this.connectionState]));
        this.addEventListener('iceconnectionstatechange', () => rec.ice.push([at(), this.iceConnectionState]));
      }
    }
    window.RTCPeerConnection = Recorded;
  }

  const pick = (r, fields) => {
    const o = {};
    for (const f of fields) if (r && r[f] !== undefined) o[f] = r[f];
    return o;
  };

  // What getStats says about `pc`, as plain JSON.
  async function summarize(pc) {
    const stats = await pc.getStats();
    const codec = (r) => (r.codecId && stats.get(r.codecId) ? stats.get(r.codecId).mimeType : undefined);
    const out = {
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      signalingState: pc.signalingState,
      states: pc.leanrtcRec ? pc.leanrtcRec.states : [],
      ice: pc.leanrtcRec ? pc.leanrtcRec.ice : [],
    };
    const pairs = [];
    stats.forEach((r) => {
      const kind = r.kind === 'video' ? 'Video' : 'Audio';
      if (r.type === 'inbound-rtp') {
        out[`inbound${kind}`] = {
          ...pick(r, ['framesDecoded', 'framesReceived', 'framesDropped', 'frameWidth', 'frameHeight', 'packetsReceived',
            'packetsLost', 'bytesReceived', 'nackCount', 'pliCount', 'keyFramesDecoded', 'totalSamplesReceived']),
          codec: codec(r),
        };
      }
      if (r.type === 'outbound-rtp') {
        out[`outbound${kind}`] = {
          ...pick(r, ['framesEncoded', 'framesSent', 'packetsSent', 'bytesSent', 'frameWidth', 'frameHeight', 'nackCount',
            'pliCount', 'targetBitrate']),
          codec: codec(r),
        };
      }
      if (r.type === 'transport') {
        out.transport = pick(r, ['dtlsState', 'dtlsCipher', 'srtpCipher', 'tlsVersion', 'tlsGroup', 'iceState', 'dtlsRole',
          'iceLocalUsernameFragment', 'selectedCandidatePairId', 'selectedCandidatePairChanges']);
      }
      if (r.type === 'candidate-pair') pairs.push(r);
    });
    // The pair in use: the transport names it (Chromium); Firefox marks it `selected`.
    const chosen = pairs.find((p) => out.transport && p.id === out.transport.selectedCandidatePairId)
      || pairs.find((p) => p.selected)
      || pairs.find((p) => p.nominated && p.state === 'succeeded');
    if (chosen) {
      const cand = (id) => pick(stats.get(id), ['address', 'port', 'protocol', 'candidateType', 'usernameFragment']);
      out.pair = {
        ...pick(chosen, ['id', 'state', 'nominated', 'requestsSent', 'responsesReceived', 'requestsReceived',
          'responsesSent', 'bytesReceived', 'bytesSent', 'currentRoundTripTime']),
        local: cand(chosen.localCandidateId),
        remote: cand(chosen.remoteCandidateId),
      };
    }
    return out;
  }

  // ---- leanrtc's own page.

  // The page's globals (`let` at the top of its script: visible here by name, not on window).
  const pageSession = (which) => {
    // eslint-disable-next-line no-undef
    if (which === 'player') return typeof player === 'undefined' ? null : player;
    // eslint-disable-next-line no-undef
    if (which === 'publisher') return typeof publisher === 'undefined' ? null : publisher;
    throw new Error(`no page session ${which}`);
  };

  const text = (sel) => {
    const el = document.querySelector(sel);
    return el ? el.textContent : null;
  };

  // What a user sees: the status line, the overlay, the stream list, the publish button, and
  // the page's sessions.
  T.view = () => {
    const session = (which) => {
      const s = pageSession(which);
      return s ? { name: s.name, location: s.location, connectionState: s.pc ? s.pc.connectionState : null } : null;
    };
    return {
      status: text('#status'),
      overlay: text('#overlay'),
      publishButton: text('#publish'),
      // The publish form's simulcast checkbox (null if the page has none).
      simulcast: (() => {
        const box = document.querySelector('#simulcast');
        return box ? box.checked : null;
      })(),
      streams: [...document.querySelectorAll('#streams button')].map((b) => ({
        name: b.dataset.name, text: b.textContent, on: b.classList.contains('on'),
      })),
      listText: text('#streams'),
      player: session('player'),
      publisher: session('publisher'),
      videoPlaying: (() => {
        const v = document.querySelector('#video');
        return v ? { width: v.videoWidth, height: v.videoHeight, paused: v.paused, currentTime: v.currentTime } : null;
      })(),
      // The publisher's local preview of its camera.
      preview: (() => {
        const v = document.querySelector('#preview');
        return v ? {
          hidden: v.hidden, muted: v.muted, width: v.videoWidth, height: v.videoHeight, paused: v.paused,
          currentTime: v.currentTime, live: !!v.srcObject,
        } : null;
      })(),
    };
  };

  // getStats of the page's `player` or `publisher` connection, with the page's view of it.
  T.pageStats = async ({ which }) => {
    const s = pageSession(which);
    if (!s || !s.pc) return { missing: which };
    return { name: s.name, location: s.location, ...(await summarize(s.pc)) };
  };

  // Every connection the page made, oldest first (closed ones too).
  T.allStats = async () => Promise.all(all.map(async (pc) => (
    pc.connectionState === 'closed'
      ? { connectionState: 'closed', states: pc.leanrtcRec.states, ice: pc.leanrtcRec.ice }
      : summarize(pc)
  )));

  // ---- Sessions of our own (WHIP/WHEP with the ETag kept), for the ICE-restart tests.

  const sessions = [];
  T.sessions = sessions;

  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 1000);
  });

  const auth = (token) => (token ? { Authorization: `Bearer ${token}` } : {});

  async function post(pc, url, token) {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await fetch(url, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp', ...auth(token) }, body: pc.localDescription.sdp,
    });
    const body = await res.text();
    if (res.status !== 201) return { status: res.status, error: `POST ${res.status}: ${body}` };
    const s = {
      pc, token, location: new URL(res.headers.get('Location'), url).href, etag: res.headers.get('ETag'),
      answer: body, offer: pc.localDescription.sdp,
    };
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    const id = sessions.push(s) - 1;
    return { id, status: res.status, location: s.location, etag: s.etag };
  }

  // WHEP: recvonly video + audio.
  T.whep = async ({ url, token }) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    return post(pc, url, token);
  };

  // WHIP: the fake camera (640x360, 30 fps) and microphone, sendonly, VP8 first.
  T.whip = async ({ url, token }) => {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of media.getTracks()) {
      const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video' && t.setCodecPreferences && RTCRtpSender.getCapabilities) {
        const caps = RTCRtpSender.getCapabilities('video').codecs;
        const vp8 = caps.filter((c) => c.mimeType.toLowerCase() === 'video/vp8');
        t.setCodecPreferences([...vp8, ...caps.filter((c) => !vp8.includes(c))]);
      }
    }
    return post(pc, url, token);
  };

  T.stats = async ({ id }) => summarize(sessions[id].pc);

  // The ICE part of an offer as an sdpfrag (RFC 8840 §4; RFC 9725 §4.3.2: the first, offerer-
  // tagged m= section of the BUNDLE group): a=ice-options (if any), the BUNDLE group, the
  // first m= line and its mid, then the new a=ice-ufrag / a=ice-pwd.
  function iceFragment(sdp) {
    const lines = sdp.split(/\r?\n/).filter((l) => l.length);
    const first = (prefix, from = 0) => lines.slice(from).find((l) => l.startsWith(prefix));
    const m = lines.findIndex((l) => l.startsWith('m='));
    const out = [];
    const options = first('a=ice-options:');
    if (options) out.push(options);
    const group = first('a=group:BUNDLE');
    if (group) out.push(group);
    out.push(lines[m], first('a=mid:', m), first('a=ice-ufrag:', m), first('a=ice-pwd:', m));
    return `${out.join('\r\n')}\r\n`;
  }

  const attr = (text, name) => {
    const l = text.split(/\r?\n/).find((x) => x.startsWith(`a=${name}:`));
    return l ? l.slice(name.length + 3).trim() : null;
  };

  // The previous answer with the ICE credentials and candidates of the restart's answer
  // substituted in every m= section (RFC 8839 §4.4.1.1: everything else stays as negotiated).
  function restartedAnswer(answer, fragment) {
    const ufrag = attr(fragment, 'ice-ufrag');
    const pwd = attr(fragment, 'ice-pwd');
    const candidates = fragment.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
    const out = [];
    let inMedia = false;
    const flushCandidates = () => { if (inMedia) out.push(...candidates, 'a=end-of-candidates'); };
    for (const l of answer.split(/\r?\n/)) {
      if (!l.length) continue;
      if (l.startsWith('m=')) { flushCandidates(); inMedia = true; }
      if (l.startsWith('a=candidate:') || l === 'a=end-of-candidates') continue;
      if (l.startsWith('a=ice-ufrag:')) out.push(`a=ice-ufrag:${ufrag}`);
      else if (l.startsWith('a=ice-pwd:')) out.push(`a=ice-pwd:${pwd}`);
      else out.push(l);
    }
    flushCandidates();
    return `${out.join('\r\n')}\r\n`;
  }

  // A raw PATCH of session `id`; `ifMatch` null sends no If-Match.
  T.patch = async ({ id, body, ifMatch }) => {
    const s = sessions[id];
    const headers = { 'Content-Type': 'application/trickle-ice-sdpfrag', ...auth(s.token) };
    if (ifMatch !== null && ifMatch !== undefined) headers['If-Match'] = ifMatch;
    const res = await fetch(s.location, { method: 'PATCH', headers, body });
    return { status: res.status, etag: res.headers.get('ETag'), contentType: res.headers.get('Content-Type'), body: await res.text() };
  };

  // An ICE restart as a WHIP/WHEP client does it: restartIce(), a new offer as the local
  // description, its ICE credentials PATCHed with `If-Match: ifMatch`; on 200 the previous
  // answer with the returned credentials and candidates becomes the remote description, on
  // anything else the offer is rolled back (the session keeps its current ICE session).
  T.restart = async ({ id, ifMatch }) => {
    const s = sessions[id];
    const before = await summarize(s.pc);
    s.pc.restartIce();
    const offer = await s.pc.createOffer();
    await s.pc.setLocalDescription(offer);
    const fragment = iceFragment(offer.sdp);
    const res = await T.patch({ id, body: fragment, ifMatch });
    const out = {
      status: res.status, etag: res.etag, contentType: res.contentType, body: res.body, sent: fragment,
      localUfrag: attr(offer.sdp, 'ice-ufrag'), previousLocalUfrag: attr(s.offer, 'ice-ufrag'),
      before: { pair: before.pair, transport: before.transport },
    };
    if (res.status !== 200) {
      await s.pc.setLocalDescription({ type: 'rollback' });
      out.signalingState = s.pc.signalingState;
      return out;
    }
    const answer = restartedAnswer(s.answer, res.body);
    try {
      await s.pc.setRemoteDescription({ type: 'answer', sdp: answer });
    } catch (e) {
      return { ...out, error: `setRemoteDescription: ${e.name}: ${e.message}`, answer };
    }
    s.answer = answer;
    s.offer = offer.sdp;
    s.etag = res.etag;
    out.remoteUfrag = attr(res.body, 'ice-ufrag');
    out.signalingState = s.pc.signalingState;
    return out;
  };

  // Ends session `id`; with `del`, DELETEs it first (closing first would let the server end
  // the session on the DTLS close_notify before the DELETE arrives, which then gets 404).
  T.close = async ({ id, del }) => {
    const s = sessions[id];
    const res = del ? await fetch(s.location, { method: 'DELETE', headers: auth(s.token) }) : null;
    s.pc.close();
    return res ? { deleteStatus: res.status } : { closed: true };
  };
}

const INIT_SCRIPT = `(${install.toString()})();`;

module.exports = { INIT_SCRIPT };
