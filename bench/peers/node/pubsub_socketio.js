// socket.io pub/sub node with @socket.io/redis-adapter: the socket.io peer of
// bench/scripts/pubsub_peers.sh. socket.io frames its own protocol (Engine.IO
// packets, a polling handshake before the WebSocket upgrade), so
// ringlink-load cannot drive it; pubsub_socketio_load.js does, with the same
// workload and figures.
//
//   node pubsub_socketio.js PORT_FILE REDIS_PORT
//
// Rooms are the topics: a client joins the rooms named in its handshake query
// `sub=t1,t2` (or sends `sub`/`unsub` events); a `pub` event (topic, payload)
// is broadcast with io.to(topic).emit('m', payload), which the Redis adapter
// carries to the other nodes. Library defaults throughout, as in the
// adapter's README (ioredis publisher plus its duplicate as subscriber).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { execFileSync } = require('node:child_process');

if (!fs.existsSync(path.join(__dirname, 'node_modules', 'socket.io', 'package.json'))) {
  execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: ['ignore', 'ignore', 'inherit'] });
}
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const Redis = require('ioredis');

const [portFile, redisPort] = process.argv.slice(2);
if (!portFile || !redisPort) {
  console.error('usage: node pubsub_socketio.js PORT_FILE REDIS_PORT');
  process.exit(2);
}
const pubClient = new Redis({ host: '127.0.0.1', port: Number(redisPort) });
const subClient = pubClient.duplicate();

const server = http.createServer();
const io = new Server(server, { adapter: createAdapter(pubClient, subClient) });
io.on('connection', (socket) => {
  const sub = socket.handshake.query.sub;
  if (typeof sub === 'string' && sub.length > 0) socket.join(sub.split(','));
  socket.on('sub', (topic) => socket.join(String(topic)));
  socket.on('unsub', (topic) => socket.leave(String(topic)));
  socket.on('pub', (topic, payload) => io.to(String(topic)).emit('m', payload));
});
server.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(server.address().port)));
process.on('SIGTERM', () => process.exit(0));
