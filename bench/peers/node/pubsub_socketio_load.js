// The socket.io side of `ringlink-load --pubsub`: the same workload against
// pubsub_socketio.js nodes, whose Engine.IO framing ringlink-load does not
// speak. Used by bench/scripts/pubsub_peers.sh.
//
//   node pubsub_socketio_load.js [--subs 1000] [--pubs 10] [--topics 100] [--rate 1000]
//        [--duration 10] [--grace 2] [--pub-nodes 1] [--json OUT] URL...
//
// As in ringlink-load: subscriber i connects to URL i % N (N: the URLs not
// given to publishers) and joins room t<i % T> (handshake query `sub=`);
// publishers connect to the last --pub-nodes URLs and publish round robin
// over every topic, --rate publications/s in total, each `D <publisher>
// <topic> <seq> <send time ns>`. Publishing starts once a warm-up publication
// of every publisher on every topic has reached every subscriber of it (10 s
// at most), which also waits out the polling-to-WebSocket upgrade socket.io
// clients do by default. After --duration, up to --grace seconds for the
// deliveries in flight. Lost = sent - received per stream (subscriber x
// publisher), seen twice a duplicate, behind a later one reordered; latency
// from the send time in the payload (one process, one clock). Clients keep
// socket.io-client's defaults except forceNew, without which io() would
// multiplex every client to one node over a single connection.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

if (!fs.existsSync(path.join(__dirname, 'node_modules', 'socket.io-client', 'package.json'))) {
  execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: ['ignore', 'ignore', 'inherit'] });
}
const { io } = require('socket.io-client');

const opt = { subs: 1000, pubs: 10, topics: 100, rate: 1000, duration: 10, grace: 2, 'pub-nodes': 1, json: '' };
const urls = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; ++i) {
  const a = argv[i];
  if (a.startsWith('--')) {
    const k = a.slice(2);
    if (!(k in opt)) { console.error(`unknown option ${a}`); process.exit(2); }
    opt[k] = k === 'json' ? argv[++i] : Number(argv[++i]);
  } else urls.push(a);
}
const pubNodes = opt['pub-nodes'];
if (urls.length < 1 || pubNodes >= urls.length && urls.length > 1) {
  console.error('usage: pubsub_socketio_load.js [options] URL... (more URLs than --pub-nodes)');
  process.exit(2);
}
const subUrls = urls.length > 1 ? urls.slice(0, urls.length - pubNodes) : urls;
const pubUrls = urls.length > 1 ? urls.slice(urls.length - pubNodes) : urls;
const now = () => Number(process.hrtime.bigint());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred, ms) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(5);
  return pred();
}

const P = opt.pubs, T = opt.topics, S = opt.subs;
const subsPerTopic = new Array(T).fill(0);
const subs = [];
let delivered = 0, duplicates = 0, reordered = 0, malformed = 0, confirmed = 0, measuring = false;
const latencies = [];
for (let i = 0; i < S; ++i) {
  const topic = i % T;
  ++subsPerTopic[topic];
  const s = { topic, next: new Array(P).fill(1), seen: Array.from({ length: P }, () => new Set()), warm: new Array(P).fill(false), up: false };
  s.sock = io(subUrls[i % subUrls.length], { forceNew: true, query: { sub: `t${topic}` } });
  s.sock.on('connect', () => { s.up = true; });
  s.sock.on('m', (payload) => {
    const t = now();
    const f = String(payload).split(' ');
    if (f[0] === 'W') {
      const p = Number(f[1]);
      if (!s.warm[p]) { s.warm[p] = true; ++confirmed; }
      return;
    }
    const p = Number(f[1]), topicIn = Number(f[2]), seq = Number(f[3]), sent = Number(f[4]);
    if (f[0] !== 'D' || !(p >= 0 && p < P) || topicIn !== s.topic || !(seq >= 1)) { ++malformed; return; }
    if (s.seen[p].has(seq)) { ++duplicates; return; }
    s.seen[p].add(seq);
    if (seq < s.next[p]) ++reordered; else s.next[p] = seq + 1;
    ++delivered;
    if (measuring) latencies.push((t - sent) / 1000);
  });
  subs.push(s);
}
const pubs = [];
for (let j = 0; j < P; ++j) {
  const p = { count: 0, sock: io(pubUrls[j % pubUrls.length], { forceNew: true }), up: false };
  p.sock.on('connect', () => { p.up = true; });
  pubs.push(p);
}

function pct(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

(async () => {
  const connected = await waitFor(() => subs.every((s) => s.up) && pubs.every((p) => p.up), 20000);
  await waitFor(() => [...subs, ...pubs].every((c) => c.sock.io.engine && c.sock.io.engine.transport.name === 'websocket'), 10000);
  console.log(`pubsub (socket.io): ${urls.length} nodes, ${subs.filter((s) => s.up).length}/${S} subscribers up, ${pubs.filter((p) => p.up).length}/${P} publishers up, ${T} topics, 1 per subscriber`);
  const streams = S * P;
  const t0 = Date.now();
  const warm = setInterval(() => { for (let j = 0; j < P; ++j) for (let k = 0; k < T; ++k) pubs[j].sock.emit('pub', `t${k}`, `W ${j} ${k}`); }, 500);
  for (let j = 0; j < P; ++j) for (let k = 0; k < T; ++k) pubs[j].sock.emit('pub', `t${k}`, `W ${j} ${k}`);
  await waitFor(() => confirmed === streams, 10000);
  clearInterval(warm);
  console.log(`confirmed:   ${confirmed}/${streams} streams in ${((Date.now() - t0) / 1000).toFixed(2)} s`);

  measuring = true;
  let published = 0, expected = 0;
  const start = now();
  const end = start + opt.duration * 1e9;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const t = now();
      const due = Math.min(Math.floor(((Math.min(t, end) - start) / 1e9) * opt.rate), Math.floor(opt.duration * opt.rate));
      while (published < due) {
        const j = published % P, p = pubs[j];
        const topic = p.count % T, seq = Math.floor(p.count / T) + 1;
        ++p.count;
        p.sock.emit('pub', `t${topic}`, `D ${j} ${topic} ${seq} ${now()}`);
        ++published;
        expected += subsPerTopic[topic];
      }
      if (t >= end) { clearInterval(tick); resolve(); }
    }, 1);
  });
  const publishS = (now() - start) / 1e9;
  const drainStart = now();
  await waitFor(() => delivered >= expected, opt.grace * 1000);
  const drainS = (now() - drainStart) / 1e9;
  measuring = false;

  const lost = expected - delivered;
  latencies.sort((a, b) => a - b);
  const lat = { p50_us: pct(latencies, 0.5), p90_us: pct(latencies, 0.9), p99_us: pct(latencies, 0.99), p999_us: pct(latencies, 0.999), max_us: latencies.length ? latencies[latencies.length - 1] : 0, samples: latencies.length };
  console.log(`published:   ${published} in ${publishS.toFixed(2)} s (${(published / publishS).toFixed(1)}/s, asked ${opt.rate.toFixed(1)}/s)`);
  console.log(`deliveries:  expected ${expected}, delivered ${delivered} (${(delivered / publishS).toFixed(1)}/s), drain ${drainS.toFixed(2)} s`);
  console.log(`lost ${lost}  duplicated ${duplicates}  reordered ${reordered}  malformed ${malformed}`);
  console.log(`publish-to-receive (us): p50 ${lat.p50_us.toFixed(1)}  p90 ${lat.p90_us.toFixed(1)}  p99 ${lat.p99_us.toFixed(1)}  p99.9 ${lat.p999_us.toFixed(1)}  max ${lat.max_us.toFixed(1)}  (${lat.samples} samples)`);
  const errors = lost + duplicates + reordered + malformed + (connected ? 0 : 1);
  console.log(`errors: ${errors}`);
  if (opt.json) {
    fs.writeFileSync(opt.json, JSON.stringify({ mode: 'pubsub-socketio', subscribers: S, publishers: P, topics: T, rate_asked: opt.rate,
      streams, streams_confirmed: confirmed, publish_s: publishS, drain_s: drainS, published, expected, delivered,
      deliveries_per_s: delivered / publishS, lost, duplicates, reordered, malformed, errors, latency: lat }));
  }
  process.exit(errors ? 1 : 0);
})();
