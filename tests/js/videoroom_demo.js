// Two headless Chromium pages run the official Janus VideoRoom demo (Debian janus-demos,
// unmodified, with the official janus.js) against the server the page's settings point at; each
// must see and decode the other's video. Prints one line `RESULT {...}`; exit 0 on success.
//
// usage: node videoroom_demo.js <demo-page-url> <playwright-core dir> [chromium path]
'use strict';

const [url, playwrightDir, chromiumPath] = process.argv.slice(2);
const { chromium } = require(playwrightDir);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const logs = [];
let browser = null;

async function main() {
  browser = await chromium.launch({
    executablePath: chromiumPath || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const join = async (name) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => logs.push(`${name}: ${m.text()}`.slice(0, 300)));
    page.on('pageerror', (e) => logs.push(`${name} error: ${e}`));
    await page.goto(url);
    await page.click('#start');
    await page.waitForSelector('#username', { state: 'visible', timeout: 20000 });
    await page.fill('#username', name);
    await page.click('#register');
    return page;
  };
  const framesDecoded = (page) => page.evaluate(async () => {
    const feed = (window.feeds || []).find((f) => f && f.webrtcStuff && f.webrtcStuff.pc);
    if (!feed) return -1;
    let decoded = 0;
    (await feed.webrtcStuff.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') decoded = r.framesDecoded || 0;
    });
    return decoded;
  });
  const pages = [await join('alice'), await join('bob')];
  const result = { ok: true, peers: [] };
  for (const page of pages) {
    await page.waitForFunction(() => {
      const v = document.querySelector('#videoremote1 video');
      return v && v.videoWidth > 0;
    }, null, { timeout: 30000 });
    const width = await page.evaluate(() => document.querySelector('#videoremote1 video').videoWidth);
    const first = await framesDecoded(page);
    await sleep(2000);
    const later = await framesDecoded(page);
    const peer = { width, framesDecoded: [first, later] };
    result.peers.push(peer);
    if (!(width > 0 && later > first && first >= 0)) result.ok = false;
    if (url.includes('simulcast=true')) {
      // The demo shows its layer buttons on the first `substream` event and marks the layer in
      // use; pick the lowest ("SL 0") and check it is what is decoded then.
      await page.waitForSelector('#simulcast1', { timeout: 15000 });
      const layer = () => page.evaluate(() =>
        [0, 1, 2].find((i) => document.querySelector('#sl1-' + i).classList.contains('btn-success')));
      const startLayer = await layer();
      await page.click('#sl1-0');
      await page.waitForFunction(() => document.querySelector('#sl1-0').classList.contains('btn-success'),
        null, { timeout: 15000 });
      await sleep(1500);
      const lowWidth = await page.evaluate(() => document.querySelector('#videoremote1 video').videoWidth);
      const f0 = await framesDecoded(page);
      // Decoding goes on (on a loaded two-core machine a frame may take a while).
      let f1 = f0;
      for (let i = 0; i < 20 && f1 <= f0; i++) {
        await sleep(500);
        f1 = await framesDecoded(page);
      }
      const lowLayer = await layer();
      // Then the highest ("SL 2"): bigger frames once the browser sends that layer.
      await page.click('#sl1-2');
      await page.waitForFunction((w) => document.querySelector('#videoremote1 video').videoWidth > w,
        lowWidth, { timeout: 20000 }).catch(() => {});
      const highWidth = await page.evaluate(() => document.querySelector('#videoremote1 video').videoWidth);
      peer.simulcast = { startLayer, lowWidth, framesDecoded: [f0, f1], lowLayer, highWidth, highLayer: await layer() };
      if (!(f1 > f0 && lowWidth > 0)) result.ok = false;
    }
  }
  return result;
}

const finish = async (r) => {
  // Always close Chromium, also when a step failed, so no browser process outlives the test.
  if (browser) await browser.close().catch(() => {});
  console.log('RESULT ' + JSON.stringify(r));
  if (!r.ok) console.error(logs.slice(-80).join('\n'));
  process.exit(r.ok ? 0 : 1);
};

main().then(finish).catch((e) => finish({ ok: false, why: String(e) }));
