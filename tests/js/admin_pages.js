// Headless Chromium on Portunus's admin pages. Prints one line `RESULT {...}`; exit 0 on success.
//
//   node admin_pages.js dashboard <dashboard-url> <admin-secret> <screenshot.png> <playwright-core dir> [chromium]
//     Logs in to /dashboard and waits until it shows a publisher with a bitrate and a subscriber;
//     reports what the page shows (nodes, rooms, streams) and keeps a screenshot.
//   node admin_pages.js janus-admin <admin.html-url> <admin-secret> <session> <handle> <playwright-core dir> [chromium]
//     The official Janus admin demo page (unmodified): enters the secret in its prompt, opens the
//     Handles tab, the session, the handle, and reports the handle's info as the page shows it.
'use strict';

const [mode, url, secret, ...rest] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function launch(playwrightDir, chromiumPath) {
  const { chromium } = require(playwrightDir);
  return chromium.launch({
    executablePath: chromiumPath || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

async function dashboard(page, shot) {
  await page.goto(url);
  await page.fill('#secret', secret);
  await page.click('#connect');
  // Two refreshes give a bitrate (it is the change between them).
  await page.waitForFunction(() => {
    const rates = [...document.querySelectorAll('.publisher .stream .bitrate')].map((e) => Number(e.dataset.kbps || 0));
    return rates.length >= 2 && rates.every((r) => r > 0) && document.querySelector('.subscriber .stream');
  }, null, { timeout: 20000 });
  const shown = await page.evaluate(() => ({
    nodes: [...document.querySelectorAll('#nodes tr')].map((r) => ({ node: r.dataset.node, state: r.dataset.state })),
    rooms: [...document.querySelectorAll('.room')].map((r) => ({
      room: Number(r.dataset.room),
      node: r.dataset.node,
      publishers: [...r.querySelectorAll('.publisher')].map((p) => ({
        feed: Number(p.dataset.feed),
        streams: [...p.querySelectorAll('.stream')].map((s) => ({
          mid: s.dataset.mid, type: s.dataset.type, kbps: Number(s.querySelector('.bitrate').dataset.kbps || 0),
          loss: s.querySelector('.loss').textContent })),
      })),
      subscribers: [...r.querySelectorAll('.subscriber')].map((s) => ({
        streams: [...s.querySelectorAll('.stream')].map((x) => ({ mid: x.dataset.mid, kbps: Number(x.querySelector('.bitrate').dataset.kbps || 0) })),
      })),
    })),
    summary: document.querySelector('#summary').textContent.replace(/\s+/g, ' ').trim(),
  }));
  await page.screenshot({ path: shot, fullPage: true });
  return shown;
}

async function janusAdmin(page, session, handle) {
  await page.goto(url);
  await page.waitForSelector('.bootbox #secret', { timeout: 10000 });
  await page.fill('.bootbox #secret', secret);
  await page.click('.bootbox .modal-footer button');
  await page.waitForSelector('#admintabs li:not(.disabled) a[href="#handlesinfo"]', { timeout: 10000 });
  const serverName = await page.evaluate(() => document.querySelector('#server-details').textContent.replace(/\s+/g, ' '));
  await page.click('a[href="#handlesinfo"]');
  await page.waitForSelector(`#session-${session}`, { timeout: 10000 });
  const sessions = await page.$$eval('#sessions-list a', (as) => as.map((a) => a.textContent.trim()));
  await page.click(`#session-${session}`);
  await page.waitForSelector(`#handle-${handle}`, { timeout: 10000 });
  const handles = await page.$$eval('#handles-list a', (as) => as.map((a) => a.textContent.trim()));
  await page.click(`#handle-${handle}`);
  // The page shows the info as raw JSON first; its "Prettify" box turns it into tables.
  await page.waitForSelector('#handle-info pre', { timeout: 10000 });
  const raw = JSON.parse(await page.textContent('#handle-info pre'));
  await page.check('#prettify');
  await page.waitForSelector('#plugin-specific tr', { timeout: 10000 });
  const pluginSpecific = await page.$$eval('#plugin-specific tr', (rs) => rs.map((r) => r.textContent.replace(/\s+/g, ' ').trim()));
  const info = await page.evaluate(() => document.querySelector('#handle-info').textContent.replace(/\s+/g, ' '));
  return { serverName, sessions, handles, raw, pluginSpecific, info };
}

async function main() {
  let browser = null;
  try {
    if (mode === 'dashboard') {
      const [shot, playwrightDir, chromiumPath] = rest;
      browser = await launch(playwrightDir, chromiumPath);
      const page = await browser.newPage();
      const shown = await dashboard(page, shot);
      console.log('RESULT ' + JSON.stringify({ ok: true, shown }));
    } else if (mode === 'janus-admin') {
      const [session, handle, playwrightDir, chromiumPath] = rest;
      browser = await launch(playwrightDir, chromiumPath);
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      const shown = await janusAdmin(page, session, handle);
      console.log('RESULT ' + JSON.stringify({ ok: true, shown, errors }));
    } else {
      throw new Error('unknown mode ' + mode);
    }
  } catch (e) {
    console.log('RESULT ' + JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close();
  }
}

main();
