// Node `ws` echo server, plain or TLS: the TLS peer of bench/scripts/tls_bench.py.
//
//   node ws_echo.js PORT_FILE [CERT KEY]
//
// Listens on 127.0.0.1, a port the kernel picks (written to PORT_FILE), echoes
// every message as it came (text or binary), no permessage-deflate. The ws
// package comes from tests/integration/peers/node (npm ci from its lock file,
// as the tests install it).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const https = require('node:https');
const http = require('node:http');
const { execFileSync } = require('node:child_process');

const dir = path.join(__dirname, '..', '..', '..', 'tests', 'integration', 'peers', 'node');
if (!fs.existsSync(path.join(dir, 'node_modules', 'ws', 'package.json'))) {
  execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}
const { WebSocketServer } = require(path.join(dir, 'node_modules', 'ws'));

const [portFile, cert, key] = process.argv.slice(2);
const server = cert
  ? https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) })
  : http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 << 20 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(server.address().port)));
process.on('SIGTERM', () => process.exit(0));
