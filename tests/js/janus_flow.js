// Drives the official janus.js (Debian package libjs-janus-gateway, unmodified) under Node
// against a Janus-compatible server: create -> attach videoroom -> list -> join -> keepalives
// -> destroy. Prints one line `RESULT {...}` and exits 0 on success, non-zero otherwise.
//
// usage: node janus_flow.js <server-url> <path-to-janus.js> <wait-ms>
'use strict';

const [server, janusPath, waitMs] = process.argv.slice(2);
const wait = parseInt(waitMs || '3000', 10);

// The few browser globals janus.js touches when no media is used.
globalThis.window = globalThis;
window.addEventListener = () => {};
window.location = { origin: 'http://localhost' };
globalThis.navigator = { platform: 'Linux x86_64', userAgent: 'Node.js', mediaDevices: undefined };
window.RTCPeerConnection = function () {};
const adapter = { browserDetails: { browser: 'chrome', version: 120 } };

if (typeof WebSocket === 'undefined') {
  // Older Nodes: the `ws` package (tests/run.sh installs it there when needed).
  try {
    globalThis.WebSocket = require(require('path').join(__dirname, 'node_modules', 'ws'));
  } catch (e) {
    console.error('this Node has no WebSocket: run with --experimental-websocket, or npm install ws in tests/js');
    process.exit(3);
  }
}

// Count what janus.js sends, to prove it keeps the session alive by itself.
const sent = { keepalive: 0, longpoll: 0, requests: [] };
class CountingWebSocket extends WebSocket {
  send(data) {
    try {
      const m = JSON.parse(data);
      sent.requests.push(m.janus);
      if (m.janus === 'keepalive') sent.keepalive++;
    } catch (_) { /* not JSON */ }
    return super.send(data);
  }
}
const countingFetch = (url, opts) => {
  if (!opts || opts.method === 'GET') sent.longpoll++;
  else {
    try { sent.requests.push(JSON.parse(opts.body).janus); } catch (_) { /* ignore */ }
  }
  return fetch(url, opts);
};

const Janus = require(janusPath);
const fail = (why) => {
  console.log('RESULT ' + JSON.stringify({ ok: false, why: String(why), sent }));
  process.exit(1);
};
setTimeout(() => fail('timed out'), wait + 15000);

Janus.init({
  debug: process.env.JANUS_DEBUG ? 'all' : false,
  dependencies: Janus.useDefaultDependencies({ adapter, WebSocket: CountingWebSocket, fetch: countingFetch }),
  callback: () => {
    const result = { ok: false };
    const janus = new Janus({
      server,
      keepAlivePeriod: 500,
      longPollTimeout: 5000,
      error: (e) => fail('session error: ' + e),
      destroyed: () => {
        result.ok = true;
        result.sent = sent;
        console.log('RESULT ' + JSON.stringify(result));
        process.exit(0);
      },
      success: () => {
        result.session = janus.getSessionId();
        janus.attach({
          plugin: 'janus.plugin.videoroom',
          error: (e) => fail('attach error: ' + e),
          onmessage: (msg) => {
            if (msg.videoroom === 'joined') {
              result.joined = { room: msg.room, id: msg.id, description: msg.description };
              // Stay idle longer than the server's session timeout: janus.js keepalives (WS)
              // or long-polls (HTTP) must keep the session alive.
              setTimeout(() => {
                handle.send({
                  message: { request: 'listparticipants', room: 1234 },
                  success: (r) => {
                    result.participants = (r.participants || []).length;
                    janus.destroy({ success: () => { result.destroyRequested = true; } });
                  },
                  error: (e) => fail('listparticipants error: ' + e),
                });
              }, wait);
            }
          },
          success: (h) => {
            handle = h;
            result.handle = h.getId();
            h.send({
              message: { request: 'list' },
              success: (r) => {
                result.rooms = (r.list || []).map((x) => x.room);
                h.send({ message: { request: 'join', room: 1234, ptype: 'publisher', display: 'janus.js' } });
              },
              error: (e) => fail('list error: ' + e),
            });
          },
        });
      },
    });
    let handle = null;
  },
});
