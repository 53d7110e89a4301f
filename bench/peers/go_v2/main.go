// The seed's link_v2 ("non-blocking read") Link design, as an echo server for
// the benchmarks. One goroutine per link:
//   - a select gives the close signal and the send channel priority: a queued
//     message is written before any read;
//   - its default branch reads with a 1 ms read deadline, set again every turn;
//   - a received message is pushed onto the receive channel (256) without
//     blocking: when the channel is full it is dropped and counted.
//
// A business goroutine per link consumes the receive channel and echoes
// through the send channel (256), so the hand-off and its drop policy are
// really exercised. Handshake and writes use gorilla/websocket; reads parse
// frames from the net.Conn (see wsReader for why).
//
// usage: go_v2 -port N [-slow-us U -slow-for S]
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
	queueSize    = 256
	readTimeout  = time.Millisecond
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
// link_v2

type message struct {
	kind int
	data []byte
}

type link struct {
	conn      *websocket.Conn // writes
	rd        wsReader        // reads
	sendCh    chan message
	receiveCh chan message
	closeCh   chan struct{} // closed to stop the link; checked before anything else
	closeOnce sync.Once
	done      chan struct{} // closed when the loop has ended
}

// Close asks the loop to stop. The echo server itself never needs to, but
// the loop pays for the check on every turn as the seed's does.
func (l *link) Close() { l.closeOnce.Do(func() { close(l.closeCh) }) }

func (l *link) loop() {
	defer func() {
		l.conn.Close()
		close(l.done)
		close(l.receiveCh)
	}()
	for {
		select {
		case <-l.closeCh:
			return
		default:
		}
		select {
		case <-l.closeCh:
			return
		case m := <-l.sendCh:
			if err := l.conn.WriteMessage(m.kind, m.data); err != nil {
				return
			}
		default:
			if !l.read() {
				return
			}
		}
	}
}

// read is one non-blocking read turn; false ends the link.
func (l *link) read() bool {
	kind, data, err := l.rd.next(time.Now().Add(readTimeout))
	switch {
	case err == errTimeout:
		return true
	case err != nil:
		return false
	}
	switch kind {
	case opPing:
		return l.conn.WriteControl(websocket.PongMessage, data, time.Now().Add(controlWrite)) == nil
	case opPong:
		return true
	case opClose:
		l.conn.WriteControl(websocket.CloseMessage, closeReply(data), time.Now().Add(controlWrite))
		return false
	}
	markFirstMessage()
	select {
	case l.receiveCh <- message{kind, data}:
	default:
		dropped.Add(1)
	}
	return true
}

// The business layer: echo every message back through the send channel.
func (l *link) business() {
	for m := range l.receiveCh {
		businessDelay()
		select {
		case l.sendCh <- m:
		case <-l.done:
		}
	}
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	l := &link{
		conn:      c,
		rd:        newReader(c.UnderlyingConn()),
		sendCh:    make(chan message, queueSize),
		receiveCh: make(chan message, queueSize),
		closeCh:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	go l.business()
	go l.loop()
}

func main() { serveHTTP(serve) }
