// Node's `ws` package as a wss:// client of a ringlink echo server: text and
// binary messages of several sizes echo byte-exact, a ping gets its pong,
// and a close with 1000 is answered with 1000. Exits 1 with the reason on
// stderr at the first mismatch.
//
//   node node_client.js wss://127.0.0.1:PORT/ CA_FILE
//
// The `ws` package is installed from the lock file next to this script
// (npm ci, npm's cache first) when it is missing.
'use strict';

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, 'node');
const deadlineMs = 60_000;

function fail(msg) {
  console.error(`node_client.js: ${msg}`);
  process.exit(1);
}

function loadWs() {
  const modulePath = path.join(dir, 'node_modules', 'ws');
  if (!fs.existsSync(path.join(modulePath, 'package.json'))) {
    try {
      execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    } catch (e) {
      fail(`npm ci in ${dir} failed (${e.message}): the ws package is needed`);
    }
  }
  return require(modulePath);
}

async function main() {
  const [url, caFile] = process.argv.slice(2);
  if (!url || !caFile) fail('usage: node node_client.js wss://HOST:PORT/ CA_FILE');
  const WebSocket = loadWs();
  const ws = new WebSocket(url, { ca: fs.readFileSync(caFile), perMessageDeflate: false, maxPayload: 0 });
  const incoming = [];
  let waiter = null;
  const next = () => new Promise((resolve) => {
    if (incoming.length > 0) return resolve(incoming.shift());
    waiter = resolve;
  });
  const push = (event) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(event);
    } else {
      incoming.push(event);
    }
  };
  ws.on('message', (data, isBinary) => push({ kind: 'message', data, isBinary }));
  ws.on('pong', (data) => push({ kind: 'pong', data }));
  ws.on('close', (code) => push({ kind: 'close', code }));
  ws.on('error', (e) => fail(`socket error: ${e.message}`));
  await new Promise((resolve) => ws.once('open', resolve));

  for (const size of [0, 1, 125, 126, 65535, 65536, 1 << 20]) {
    const binary = crypto.randomBytes(size);
    ws.send(binary);
    let e = await next();
    if (e.kind !== 'message' || !e.isBinary || !Buffer.from(e.data).equals(binary)) fail(`binary ${size} did not echo`);
    const text = 'x'.repeat(size);
    ws.send(text);
    e = await next();
    if (e.kind !== 'message' || e.isBinary || e.data.toString() !== text) fail(`text ${size} did not echo`);
  }
  ws.ping(Buffer.from('node ping'));
  let e = await next();
  if (e.kind !== 'pong' || e.data.toString() !== 'node ping') fail(`ping got ${JSON.stringify(e)}`);
  ws.close(1000);
  e = await next();
  if (e.kind !== 'close' || e.code !== 1000) fail(`close got ${JSON.stringify(e)}`);
}

setTimeout(() => fail(`no result within ${deadlineMs} ms`), deadlineMs).unref();
main().then(() => process.exit(0), (e) => fail(e.stack || String(e)));
