#!/usr/bin/env node
// Node `ws` with perMessageDeflate as a peer of ringlink.
//
//   deflate_peer.js client URL TAKEOVER BITS   echo check against a ringlink server
//   deflate_peer.js server TAKEOVER BITS       an echo server; prints "port N"
//
// TAKEOVER is "on" or "off" (no context takeover both ways when off; "none"
// for the server: no permessage-deflate, for comparisons), BITS
// the window (9..15) asked for both directions. The client offers exactly
// that, checks that it was agreed, echoes text and binary of 16 B to 1 MiB
// and a fragmented message, closes 1000, and prints one line per problem
// (nothing on success). The server exits when stdin closes or after 60 s.
// ws is installed from the lock file beside this script on first use.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

function loadWs() {
  const dir = __dirname;
  if (!fs.existsSync(path.join(dir, 'node_modules', 'ws', 'package.json'))) {
    execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return require(path.join(dir, 'node_modules', 'ws'));
}

const WebSocket = loadWs();

function options(takeover, bits) {
  if (takeover === 'none') return false;  // no permessage-deflate at all
  const off = takeover === 'off';
  return {
    serverNoContextTakeover: off,
    clientNoContextTakeover: off,
    serverMaxWindowBits: bits,
    clientMaxWindowBits: bits,
    threshold: 0,  // compress everything, even 16 B
  };
}

function jsonText(n) {
  const rows = [];
  let len = 0;
  while (len < n) {
    const r = JSON.stringify({ id: rows.length, name: 'ringlink', tags: ['a', 'b'], ok: true });
    rows.push(r);
    len += r.length + 1;
  }
  return ('[' + rows.join(',') + ']').slice(0, n);
}

function binary(n) {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = (i % 64 < 32) ? (x >>> 24) : (i & 0xff);
  }
  return b;
}

function runClient(url, takeover, bits) {
  const problems = [];
  const ws = new WebSocket(url, { perMessageDeflate: options(takeover, bits), maxPayload: 0 });
  const expected = [];
  const sizes = [16, 100, 1024, 65536, 1 << 20];
  ws.on('upgrade', (res) => {
    const agreed = res.headers['sec-websocket-extensions'] || '';
    if (!agreed.startsWith('permessage-deflate')) problems.push(`not agreed: ${agreed}`);
  });
  ws.on('open', () => {
    for (const n of sizes) {
      const t = jsonText(n);
      expected.push(t);
      ws.send(t);
      const b = binary(n);
      expected.push(b);
      ws.send(b);
    }
    const parts = [jsonText(300), 'ž', jsonText(700)];
    expected.push(parts.join(''));
    ws.send(parts[0], { fin: false });
    ws.send(parts[1], { fin: false });
    ws.send(parts[2], { fin: true });
  });
  ws.on('message', (data, isBinary) => {
    const want = expected.shift();
    const got = isBinary ? data : data.toString('utf8');
    const same = isBinary ? Buffer.isBuffer(want) && want.equals(got) : got === want;
    if (!same) problems.push(`echo ${expected.length} differs (${got.length} bytes)`);
    if (expected.length === 0) ws.close(1000);
  });
  ws.on('error', (e) => problems.push(`error: ${e.message}`));
  ws.on('close', (code) => {
    if (expected.length !== 0) problems.push(`closed ${code} with ${expected.length} echoes missing`);
    for (const p of problems) console.log(p);
    process.exit(0);
  });
}

function runServer(takeover, bits) {
  const port = Number(process.env.PORT || 0);  // bench scripts choose it
  const wss = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate: options(takeover, bits), maxPayload: 0 });
  wss.on('listening', () => console.log(`port ${wss.address().port}`));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

if (!process.env.NO_TIMEOUT) setTimeout(() => { console.log('timed out'); process.exit(1); }, 60000).unref();
const [mode, ...args] = process.argv.slice(2);
if (mode === 'client') runClient(args[0], args[1], Number(args[2]));
else runServer(args[0], Number(args[1]));
