// Node `ws` + `ioredis` pub/sub node speaking the protocol of
// `ringlink-echo --pubsub` (docs/pubsub.md), so that `ringlink-load --pubsub`
// drives it unchanged: bench/scripts/pubsub_peers.sh compares it with ringlink.
//
//   node pubsub_ws_ioredis.js PORT_FILE REDIS_PORT [PREFIX]
//
// A client subscribes with `/?sub=t1,t2` or a text message `SUB <topic>`
// (`UNSUB <topic>` leaves); a message `PUB <topic> <payload>` is published to
// Redis channel `<PREFIX>:<topic>` (default prefix `ringlink`). The node
// subscribes to a channel when the topic gets its first local subscriber and
// delivers what Redis sends back, its own publications included, to the
// topic's local subscribers: every delivery takes the same path through Redis,
// as in the usual ws + Redis design. Library defaults throughout (ws's
// broadcast loop from its README, one ioredis connection per direction since a
// RESP2 connection in subscribe mode can do nothing else); only
// permessage-deflate is off, as ringlink-echo does not offer it.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { execFileSync } = require('node:child_process');

if (!fs.existsSync(path.join(__dirname, 'node_modules', 'ioredis', 'package.json'))) {
  execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: ['ignore', 'ignore', 'inherit'] });
}
const { WebSocketServer } = require('ws');
const Redis = require('ioredis');

const [portFile, redisPort, prefix = 'ringlink'] = process.argv.slice(2);
if (!portFile || !redisPort) {
  console.error('usage: node pubsub_ws_ioredis.js PORT_FILE REDIS_PORT [PREFIX]');
  process.exit(2);
}
const pub = new Redis({ host: '127.0.0.1', port: Number(redisPort) });
const sub = new Redis({ host: '127.0.0.1', port: Number(redisPort) });

// topic -> Set of local subscriber sockets; a topic leaves the map (and Redis
// is unsubscribed) with its last subscriber.
const topics = new Map();
const channelOf = (topic) => `${prefix}:${topic}`;
const validTopic = (t) => t.length >= 1 && t.length <= 255 && !/[ ,\0]/.test(t);

function join(ws, topic) {
  let members = topics.get(topic);
  if (!members) {
    members = new Set();
    topics.set(topic, members);
    sub.subscribe(channelOf(topic));
  }
  members.add(ws);
  ws.topics.add(topic);
}

function leave(ws, topic) {
  const members = topics.get(topic);
  if (!members || !members.delete(ws)) return;
  ws.topics.delete(topic);
  if (members.size === 0) {
    topics.delete(topic);
    sub.unsubscribe(channelOf(topic));
  }
}

sub.on('message', (channel, message) => {
  const members = topics.get(channel.slice(prefix.length + 1));
  if (!members) return;
  for (const ws of members) {
    if (ws.readyState === ws.OPEN) ws.send(message, { binary: false });
  }
});

const server = http.createServer();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  const query = new URL(req.url, 'http://x').searchParams.get('sub');
  const wanted = query === null ? [] : query.split(',');
  if (!wanted.every(validTopic)) {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.topics = new Set();
    for (const t of wanted) join(ws, t);
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
    ws.on('close', () => { for (const t of [...ws.topics]) leave(ws, t); });
  });
});

function onMessage(ws, data, isBinary) {
  const text = data.toString('latin1');
  if (text.startsWith('PUB ')) {
    const end = text.indexOf(' ', 4);
    const topic = end < 0 ? '' : text.slice(4, end);
    if (!validTopic(topic)) { ws.close(1008, 'bad PUB'); return; }
    // Deliveries go out as text frames (what ringlink-load publishes): the
    // Redis message carries no opcode, unlike ringlink's bridged header.
    pub.publish(channelOf(topic), data.subarray(end + 1));
    return;
  }
  if (!isBinary && (text.startsWith('SUB ') || text.startsWith('UNSUB '))) {
    const topic = text.slice(text.indexOf(' ') + 1);
    if (!validTopic(topic)) { ws.close(1008, 'bad topic'); return; }
    if (text[0] === 'S') join(ws, topic); else leave(ws, topic);
    return;
  }
  ws.send(data, { binary: isBinary });
}

server.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(server.address().port)));
process.on('SIGTERM', () => process.exit(0));
