// The seed's link_v5 ("goroutine aggregation") Link design, as an echo server
// for the benchmarks. One goroutine polls a group of two links:
//   - connections are paired in accept order; a lone connection opens a group
//     and is served in it until its partner arrives; a group whose links have
//     both closed ends (the slot of a closed link is never refilled);
//   - each turn, for each live link: every message queued on its send channel
//     gets a single write attempt (1 s write deadline) whose failure closes
//     that link alone, then one read with a 1 ms read deadline;
//   - received messages carry their LinkID onto the group's one receive
//     channel (256), pushed without blocking: when it is full the message is
//     dropped and counted;
//   - link state is an atomic.Bool, read by the business goroutine.
//
// One business goroutine per group consumes the receive channel and routes
// each echo by LinkID to that link's send channel (256). Handshake and writes
// use gorilla/websocket; reads parse frames from the net.Conn (see wsReader).
//
// usage: go_v5 -port N [-slow-us U -slow-for S]
//
//	-slow-us U -slow-for S  the business goroutine sleeps U µs per message
//	                        during the first S seconds after the first message
//	GET /stats              {"goroutines": N, "dropped": D}
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	groupSize    = 2
	queueSize    = 256
	readTimeout  = time.Millisecond
	writeTimeout = time.Second // the seed gives none; long enough never to fire on loopback
	controlWrite = time.Second // deadline for pong and close replies
)

// ---------------------------------------------------------------------------
// Shared by the go_* peers (each is its own main package, so it is repeated).

const readLimit = 64 << 20

var (
	port    = flag.Int("port", 9002, "port on 127.0.0.1")
	slowUS  = flag.Int("slow-us", 0, "business delay per message, microseconds")
	slowFor = flag.Float64("slow-for", 0, "seconds after the first message during which the delay applies")

	firstMessageNS atomic.Int64 // wall clock of the first message received, 0 before it
	dropped        atomic.Uint64
)

func markFirstMessage() {
	if firstMessageNS.Load() == 0 {
		firstMessageNS.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// businessDelay is the slow consumer of the benchmarks: it only sleeps during
// the first -slow-for seconds so a run shows both the backlog and the recovery.
func businessDelay() {
	if *slowUS <= 0 {
		return
	}
	first := firstMessageNS.Load()
	if first == 0 || time.Now().UnixNano()-first >= int64(*slowFor*1e9) {
		return
	}
	time.Sleep(time.Duration(*slowUS) * time.Microsecond)
}

func stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"goroutines\": %d, \"dropped\": %d}\n", runtime.NumGoroutine(), dropped.Load())
}

var upgrader = websocket.Upgrader{
	// ReadBufferSize 0 lets gorilla reuse the HTTP server's reader, which is
	// never read again: wsReader reads the socket itself.
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

const (
	opContinuation = 0
	opText         = 1
	opBinary       = 2
	opClose        = 8
	opPing         = 9
	opPong         = 10
)

var (
	errTimeout  = errors.New("read deadline expired")
	errProtocol = errors.New("websocket protocol error")
	errTooBig   = errors.New("message over the read limit")
)

// wsReader parses client frames straight from the net.Conn.
//
// gorilla's reader cannot run these designs: in gorilla 1.5 a read-deadline
// timeout becomes the Conn's permanent read error (every later read returns
// it, the 1000th panics), so the seed's "read with a 1 ms deadline, on
// timeout try again later" would kill a link in its first idle millisecond
// and the whole process a second later. At the net.Conn level a timeout is
// harmless: the bytes already received stay in buf and parsing resumes on
// the next turn, so a poll never cuts a frame in two.
type wsReader struct {
	conn  net.Conn
	buf   []byte
	r, w  int    // unparsed bytes are buf[r:w]
	kind  int    // opcode of the fragmented message being assembled, 0 if none
	parts []byte // its payload so far
	// cancel, if set, is asked after the deadline is armed and before the
	// socket is read; true ends the wait at once (as a timeout). Whoever
	// makes it true must then move the deadline to now, which closes the
	// window between the question and the read.
	cancel func() bool
}

func newReader(c net.Conn) wsReader { return wsReader{conn: c, buf: make([]byte, 4096)} }

// next returns the next complete message, or a control frame, with its
// opcode. It sets the read deadline once, only if it has to read the socket,
// and returns errTimeout when the deadline passes first.
func (rd *wsReader) next(deadline time.Time) (int, []byte, error) {
	armed := false
	for {
		op, fin, payload, ok, err := rd.frame()
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			if !armed {
				if err := rd.conn.SetReadDeadline(deadline); err != nil {
					return 0, nil, err
				}
				armed = true
				if rd.cancel != nil && rd.cancel() {
					return 0, nil, errTimeout
				}
			}
			if err := rd.fill(); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return 0, nil, errTimeout
				}
				return 0, nil, err
			}
			continue
		}
		switch {
		case op >= opClose: // control frames may come between fragments
			return op, payload, nil
		case op == opContinuation:
			if rd.kind == 0 {
				return 0, nil, errProtocol
			}
			if len(rd.parts)+len(payload) > readLimit {
				return 0, nil, errTooBig
			}
			rd.parts = append(rd.parts, payload...)
		default:
			if rd.kind != 0 {
				return 0, nil, errProtocol
			}
			if fin {
				return op, payload, nil
			}
			rd.kind, rd.parts = op, payload
			continue
		}
		if fin {
			kind, data := rd.kind, rd.parts
			rd.kind, rd.parts = 0, nil
			return kind, data, nil
		}
	}
}

// frame takes one whole frame out of buf, its payload unmasked into a fresh
// slice (it is handed to another goroutine); ok is false while buf holds
// only part of it.
func (rd *wsReader) frame() (op int, fin bool, payload []byte, ok bool, err error) {
	b := rd.buf[rd.r:rd.w]
	if len(b) < 2 {
		return
	}
	if b[0]&0x70 != 0 || b[1]&0x80 == 0 { // no extension negotiated; clients must mask
		err = errProtocol
		return
	}
	op, fin = int(b[0]&0x0f), b[0]&0x80 != 0
	n := uint64(b[1] & 0x7f)
	header := 2
	switch n {
	case 126:
		header = 4
	case 127:
		header = 10
	}
	if len(b) < header+4 {
		return
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		n = binary.BigEndian.Uint64(b[2:])
	}
	switch {
	case op >= opClose && op <= opPong:
		if n > 125 || !fin {
			err = errProtocol
			return
		}
	case op > opBinary:
		err = errProtocol
		return
	}
	if n > readLimit {
		err = errTooBig
		return
	}
	total := header + 4 + int(n)
	if len(b) < total {
		rd.reserve(total)
		return
	}
	payload = make([]byte, n)
	copy(payload, b[header+4:total])
	unmask(b[header:header+4], payload)
	rd.r += total
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	ok = true
	return
}

// reserve makes buf able to hold a frame of total bytes starting at r.
func (rd *wsReader) reserve(total int) {
	if len(rd.buf)-rd.r >= total {
		return
	}
	if total > len(rd.buf) {
		size := 2 * len(rd.buf)
		if size < total {
			size = total
		}
		grown := make([]byte, size)
		copy(grown, rd.buf[rd.r:rd.w])
		rd.buf = grown
	} else {
		copy(rd.buf, rd.buf[rd.r:rd.w])
	}
	rd.w -= rd.r
	rd.r = 0
}

// fill does one socket read into the free end of buf.
func (rd *wsReader) fill() error {
	if rd.w == len(rd.buf) {
		rd.reserve(len(rd.buf) + 1)
	}
	n, err := rd.conn.Read(rd.buf[rd.w:])
	rd.w += n
	if n > 0 {
		return nil // an error that came with data shows again on the next read
	}
	return err
}

func unmask(key, b []byte) {
	k := uint64(binary.LittleEndian.Uint32(key))
	k |= k << 32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}

// closeReply is the close frame answering the peer's: its status code back.
func closeReply(payload []byte) []byte {
	if len(payload) >= 2 {
		return payload[:2]
	}
	return nil
}

func serveHTTP(handler http.HandlerFunc) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", stats)
	mux.HandleFunc("/", handler)
	go func() { log.Fatal(http.Serve(ln, mux)) }()
	<-sig
}

// ---------------------------------------------------------------------------
// link_v5

type message struct {
	link uint64 // LinkID
	kind int
	data []byte
}

type link struct {
	id     uint64
	conn   *websocket.Conn // writes
	rd     wsReader        // reads
	sendCh chan message
	closed atomic.Bool
	done   chan struct{} // closed with closed: the business stops routing to it
}

type group struct {
	links     [groupSize]*link // owned by the loop
	n         int
	route     [groupSize]atomic.Pointer[link] // the business goroutine's view
	join      chan *link                      // the partner, handed over under pairMu
	receiveCh chan message
}

var (
	nextLinkID atomic.Uint64
	pairMu     sync.Mutex
	openGroup  *group // a group with one link, waiting for a partner
)

func (g *group) add(l *link) {
	g.links[g.n] = l
	g.route[g.n].Store(l)
	g.n++
}

// close ends one link; its partner carries on.
func (l *link) close() {
	l.closed.Store(true)
	l.conn.Close()
	close(l.done)
}

func (g *group) loop() {
	defer close(g.receiveCh)
	for {
		select {
		case l := <-g.join:
			g.add(l)
		default:
		}
		live := 0
		for _, l := range g.links[:g.n] {
			if l.closed.Load() {
				continue
			}
			g.serve(l)
			if !l.closed.Load() {
				live++
			}
		}
		if live == 0 && !g.awaitPartner() {
			return
		}
	}
}

// awaitPartner decides, once every link has closed, whether the group lives
// on: only when its partner has already been handed over.
func (g *group) awaitPartner() bool {
	if g.n == groupSize {
		return false
	}
	pairMu.Lock()
	if openGroup == g {
		openGroup = nil
		pairMu.Unlock()
		return false
	}
	pairMu.Unlock()
	g.add(<-g.join)
	return true
}

// serve is one turn of one link: its queued writes, then one read.
func (g *group) serve(l *link) {
	for k := len(l.sendCh); k > 0; k-- {
		m := <-l.sendCh
		l.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := l.conn.WriteMessage(m.kind, m.data); err != nil {
			l.close() // a single attempt: no retry
			return
		}
	}
	kind, data, err := l.rd.next(time.Now().Add(readTimeout))
	switch {
	case err == errTimeout:
		return
	case err != nil:
		l.close()
		return
	}
	switch kind {
	case opPing:
		if l.conn.WriteControl(websocket.PongMessage, data, time.Now().Add(controlWrite)) != nil {
			l.close()
		}
		return
	case opPong:
		return
	case opClose:
		l.conn.WriteControl(websocket.CloseMessage, closeReply(data), time.Now().Add(controlWrite))
		l.close()
		return
	}
	markFirstMessage()
	select {
	case g.receiveCh <- message{l.id, kind, data}:
	default:
		dropped.Add(1)
	}
}

// The business layer: echo every message back to the link its LinkID names.
func (g *group) business() {
	for m := range g.receiveCh {
		businessDelay()
		l := g.lookup(m.link)
		if l == nil || l.closed.Load() {
			continue
		}
		select {
		case l.sendCh <- m:
		case <-l.done:
		}
	}
}

func (g *group) lookup(id uint64) *link {
	for i := range g.route {
		if l := g.route[i].Load(); l != nil && l.id == id {
			return l
		}
	}
	return nil
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	l := &link{
		id:     nextLinkID.Add(1),
		conn:   c,
		rd:     newReader(c.UnderlyingConn()),
		sendCh: make(chan message, queueSize),
		done:   make(chan struct{}),
	}
	pairMu.Lock()
	defer pairMu.Unlock()
	if g := openGroup; g != nil {
		openGroup = nil
		g.join <- l // cannot block: one partner per group, channel of one
		return
	}
	g := &group{join: make(chan *link, 1), receiveCh: make(chan message, queueSize)}
	g.add(l)
	openGroup = g
	go g.business()
	go g.loop()
}

func main() { serveHTTP(serve) }
