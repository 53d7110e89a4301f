// End-to-end test of examples/chat in Debian's headless Chromium, driven by
// playwright-core: two pages join room "lobby", a third joins "other"; the
// first sends a message through the page's form, the second must show it and
// the third must not. Saves a screenshot of each page in ARTIFACT_DIR.
//
//   node chat_browser.js CHAT_BINARY ARTIFACT_DIR [--tls] [--deflate]
//
// --tls: the page over https:// and its WebSockets over wss://, with a
// self-signed certificate made here by `openssl req` (never committed);
// Chromium runs with --ignore-certificate-errors. The chat's /metrics must
// then count the pages' TLS handshakes and no TLS failure.
//
// --deflate (the library has zlib, so the chat answers Chromium's
// permessage-deflate offer): every page's link must have agreed to it, a long
// message must reach the room's pages whole, and the chat's /metrics must
// show compressed bytes both ways.
//
// Fails (exit 1) with a message saying what to install when chromium or
// playwright-core is missing: this test is never skipped silently.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const chromiumPath = '/usr/bin/chromium';
const browserDir = path.join(__dirname, 'browser');
const deadlineMs = 90_000;
let chatProcess = null;  // killed by fail(): no server outlives the test

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  if (chatProcess && chatProcess.exitCode === null) chatProcess.kill('SIGKILL');
  process.exit(1);
}

function loadPlaywright() {
  const modulePath = path.join(browserDir, 'node_modules', 'playwright-core');
  if (!fs.existsSync(path.join(modulePath, 'package.json'))) {
    // The lock file pins the exact version; --prefer-offline uses npm's cache
    // when it has it, so a second machine state needs no registry.
    console.log(`installing playwright-core into ${browserDir} (npm ci)`);
    try {
      execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: browserDir, stdio: 'inherit' });
    } catch (e) {
      fail(`npm ci in ${browserDir} failed (${e.message}): playwright-core is needed to drive chromium`);
    }
  }
  return require(modulePath);
}

// A self-signed certificate for 127.0.0.1 in `dir`: [cert, key].
function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  try {
    execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-days', '2', '-keyout', key, '-out', cert, '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'pipe', timeout: 30_000 });
  } catch (e) {
    fail(`openssl req failed (${e.message}): install openssl (make deps)`);
  }
  return [cert, key];
}

// Starts the chat example on port 0 (and, given a certificate, its TLS
// listener on port 0) and resolves with { proc, port, tlsPort } once it
// printed its URLs.
function startChat(binary, certificate) {
  return new Promise((resolve, reject) => {
    const args = certificate ? ['0', certificate[0], certificate[1], '0'] : ['0'];
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    chatProcess = proc;
    let out = '';
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      const t = out.match(/https:\/\/127\.0\.0\.1:(\d+)\//);
      if (m && (!certificate || t)) {
        resolve({ proc, port: Number(m[1]), tlsPort: t ? Number(t[1]) : 0, output: () => out, errors: () => err });
      }
    });
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`chat exited (${code}) before printing its URL: ${err}`)));
  });
}

function stopChat(chat) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { chat.proc.kill('SIGKILL'); resolve(null); }, 15_000);
    chat.proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
    chat.proc.kill('SIGTERM');
  });
}

// The chat's Prometheus text (plain listener), summed over reactors and
// labels: name -> value.
function metrics(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const sums = {};
        for (const line of body.split('\n')) {
          const m = line.match(/^(\w+)(?:\{[^}]*\})? (\S+)$/);
          if (m) sums[m[1]] = (sums[m[1]] || 0) + Number(m[2]);
        }
        resolve(sums);
      });
    }).on('error', reject);
  });
}

async function main() {
  const [binary, artifactDir, ...flags] = process.argv.slice(2);
  if (!binary || !artifactDir || flags.some((f) => f !== '--tls' && f !== '--deflate')) {
    fail('usage: node chat_browser.js CHAT_BINARY ARTIFACT_DIR [--tls] [--deflate]');
  }
  const tls = flags.includes('--tls');
  const deflate = flags.includes('--deflate');
  if (!fs.existsSync(chromiumPath)) {
    fail(`${chromiumPath} not found: install Debian's chromium (apt-get install chromium chromium-driver, or make deps)`);
  }
  const { chromium } = loadPlaywright();
  fs.mkdirSync(artifactDir, { recursive: true });

  const certDir = tls ? fs.mkdtempSync(path.join(os.tmpdir(), 'ringlink-chat-cert-')) : null;
  const chat = await startChat(binary, tls ? makeCertificate(certDir) : null);
  const base = tls ? `https://127.0.0.1:${chat.tlsPort}/` : `http://127.0.0.1:${chat.port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlink-chromium-'));
  let context;
  try {
    // A persistent context is how playwright takes --user-data-dir: a fresh
    // one per run, removed afterwards.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync']
        .concat(tls ? ['--ignore-certificate-errors'] : []),
      viewport: { width: 720, height: 560 },
      timeout: 30_000,
    });
    const open = async (query) => {
      const page = await context.newPage();
      page.on('pageerror', (e) => fail(`page ${query}: ${e.message}`));
      const resp = await page.goto(base + query);
      if (!resp || resp.status() !== 200) fail(`GET /${query} answered ${resp && resp.status()}`);
      await page.waitForSelector('#status[data-state="open"]', { timeout: 10_000 });
      const protocol = await page.evaluate(() => location.protocol);
      if (protocol !== (tls ? 'https:' : 'http:')) fail(`page ${query} was loaded over ${protocol}`);
      return page;
    };
    const alice = await open('?room=lobby&name=alice');
    const bob = await open('?room=lobby&name=bob');
    const carol = await open('?room=other&name=carol');
    // Alice sees Bob join: both are in the room before anyone speaks.
    await alice.locator('#log li', { hasText: '* 2 in lobby' }).waitFor({ timeout: 10_000 });

    await alice.fill('#text', 'hello from alice');
    await alice.click('#send');
    await bob.locator('#log li', { hasText: 'alice: hello from alice' }).waitFor({ timeout: 10_000 });
    await alice.locator('#log li', { hasText: 'alice: hello from alice' }).waitFor({ timeout: 10_000 });
    await bob.fill('#name', 'bob');
    await bob.fill('#text', 'hi alice');
    await bob.press('#text', 'Enter');
    await alice.locator('#log li', { hasText: 'bob: hi alice' }).waitFor({ timeout: 10_000 });

    // Room isolation: give a wrongly routed message time to arrive.
    await carol.waitForTimeout(500);
    const carolLog = await carol.locator('#log li').allTextContents();
    if (carolLog.some((t) => t.includes('alice:') || t.includes('bob:'))) {
      fail(`room "other" received lobby messages: ${JSON.stringify(carolLog)}`);
    }
    const bobLog = await bob.locator('#log li').allTextContents();
    const expected = ['* 2 in lobby', 'alice: hello from alice', 'bob: hi alice'];
    if (JSON.stringify(bobLog) !== JSON.stringify(expected)) {
      fail(`bob's page shows ${JSON.stringify(bobLog)}, expected ${JSON.stringify(expected)}`);
    }

    if (deflate) {
      // Long enough to pass the server's threshold: the room gets it
      // compressed (once for both pages), and Chromium compresses what it sends.
      const long = 'the quick brown fox jumps over the lazy dog, '.repeat(8).trim();
      await alice.fill('#text', long);
      await alice.click('#send');
      await bob.locator('#log li', { hasText: `alice: ${long}` }).waitFor({ timeout: 10_000 });
      await alice.locator('#log li', { hasText: `alice: ${long}` }).waitFor({ timeout: 10_000 });
      const m = await metrics(chat.port);
      if (m.ringlink_deflate_links !== 3 || !(m.ringlink_deflate_in_wire_bytes_total > 0) ||
          !(m.ringlink_deflate_out_wire_bytes_total > 0) || !(m.ringlink_deflate_calls_total >= 1) ||
          (m.ringlink_deflate_rsv1_errors_total || 0) + (m.ringlink_deflate_corrupt_total || 0) +
            (m.ringlink_deflate_too_big_total || 0) !== 0) {
        fail(`/metrics after a long message with permessage-deflate: ${m.ringlink_deflate_links} deflate links, ` +
             `${m.ringlink_deflate_in_wire_bytes_total} compressed bytes in, ` +
             `${m.ringlink_deflate_out_wire_bytes_total} out, ${m.ringlink_deflate_calls_total} deflate calls`);
      }
      console.log(`permessage-deflate: ${m.ringlink_deflate_links} links, ${m.ringlink_deflate_in_plain_bytes_total} B ` +
                  `inflated from ${m.ringlink_deflate_in_wire_bytes_total}, ${m.ringlink_deflate_out_plain_bytes_total} B ` +
                  `deflated to ${m.ringlink_deflate_out_wire_bytes_total} in ${m.ringlink_deflate_calls_total} call(s)`);
    }

    if (tls) {
      // The page takes wss:// when it was loaded over https://: each of the
      // three WebSockets is a TLS link (the page loads add their own
      // handshakes); none failed.
      const m = await metrics(chat.port);
      if (!(m.ringlink_tls_handshakes_total >= 3) || m.ringlink_links_open !== 3 ||
          m.ringlink_tls_handshakes_failed_total !== 0) {
        fail(`/metrics after three wss:// pages: ${m.ringlink_tls_handshakes_total} TLS handshakes, ` +
             `${m.ringlink_links_open} links open, ${m.ringlink_tls_handshakes_failed_total} TLS failures`);
      }
      console.log(`wss://: ${m.ringlink_tls_handshakes_total} TLS handshakes, ${m.ringlink_links_open} links open`);
    }

    for (const [name, page] of [['alice', alice], ['bob', bob], ['carol', carol]]) {
      const file = path.join(artifactDir, `chat_browser_${name}${tls ? '_tls' : ''}.png`);
      await page.screenshot({ path: file });
      console.log(`screenshot: ${file}`);
    }
  } finally {
    if (context) await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
    if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
  }

  const status = await stopChat(chat);
  if (!status || status.code !== 0) {
    fail(`chat did not stop cleanly on SIGTERM: ${JSON.stringify(status)}; stderr: ${chat.errors()}`);
  }
  console.log(`chat in chromium${tls ? ' over wss://' : ''}: ok`);
}

const guard = setTimeout(() => fail(`no result within ${deadlineMs / 1000} s`), deadlineMs);
guard.unref();
main().then(() => process.exit(0), (e) => fail(e && e.stack ? e.stack : String(e)));
