// End-to-end test of examples/chat in Debian's headless Chromium, driven by
// playwright-core: two pages join room "lobby", a third joins "other"; the
// first sends a message through the page's form, the second must show it and
// the third must not. Saves a screenshot of each page in ARTIFACT_DIR.
//
//   node chat_browser.js CHAT_BINARY ARTIFACT_DIR
//
// Fails (exit 1) with a message saying what to install when chromium or
// playwright-core is missing: this test is never skipped silently.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
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

// Starts the chat example on port 0 and resolves with { proc, port } once it
// printed its URL.
function startChat(binary) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    chatProcess = proc;
    let out = '';
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) resolve({ proc, port: Number(m[1]), output: () => out, errors: () => err });
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

async function main() {
  const [binary, artifactDir] = process.argv.slice(2);
  if (!binary || !artifactDir) fail('usage: node chat_browser.js CHAT_BINARY ARTIFACT_DIR');
  if (!fs.existsSync(chromiumPath)) {
    fail(`${chromiumPath} not found: install Debian's chromium (apt-get install chromium chromium-driver, or make deps)`);
  }
  const { chromium } = loadPlaywright();
  fs.mkdirSync(artifactDir, { recursive: true });

  const chat = await startChat(binary);
  const base = `http://127.0.0.1:${chat.port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlink-chromium-'));
  let context;
  try {
    // A persistent context is how playwright takes --user-data-dir: a fresh
    // one per run, removed afterwards.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 720, height: 560 },
      timeout: 30_000,
    });
    const open = async (query) => {
      const page = await context.newPage();
      page.on('pageerror', (e) => fail(`page ${query}: ${e.message}`));
      const resp = await page.goto(base + query);
      if (!resp || resp.status() !== 200) fail(`GET /${query} answered ${resp && resp.status()}`);
      await page.waitForSelector('#status[data-state="open"]', { timeout: 10_000 });
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

    for (const [name, page] of [['alice', alice], ['bob', bob], ['carol', carol]]) {
      const file = path.join(artifactDir, `chat_browser_${name}.png`);
      await page.screenshot({ path: file });
      console.log(`screenshot: ${file}`);
    }
  } finally {
    if (context) await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }

  const status = await stopChat(chat);
  if (!status || status.code !== 0) {
    fail(`chat did not stop cleanly on SIGTERM: ${JSON.stringify(status)}; stderr: ${chat.errors()}`);
  }
  console.log('chat in chromium: ok');
}

const guard = setTimeout(() => fail(`no result within ${deadlineMs / 1000} s`), deadlineMs);
guard.unref();
main().then(() => process.exit(0), (e) => fail(e && e.stack ? e.stack : String(e)));
