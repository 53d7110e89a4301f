// Package peer is what the go_* benchmark peers share: their flags (-port,
// -slow-us, -slow-for), the slow business side, GET /stats, the HTTP server
// and a frame reader that works at the net.Conn level (see Reader).
//
// build_peers.sh puts this folder on GOPATH as "ringlink/peer".
package peer

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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const readLimit = 64 << 20

var (
	port    = flag.Int("port", 9002, "port on 127.0.0.1")
	slowUS  = flag.Int("slow-us", 0, "business delay per message, microseconds")
	slowFor = flag.Float64("slow-for", 0, "seconds after the first message during which the delay applies")

	firstMessageNS atomic.Int64 // wall clock of the first message received, 0 before it
	Dropped        atomic.Uint64
)

func MarkFirstMessage() {
	if firstMessageNS.Load() == 0 {
		firstMessageNS.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// BusinessDelay is the slow consumer of the benchmarks: it only sleeps during
// the first -slow-for seconds so a run shows both the backlog and the recovery.
func BusinessDelay() {
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
	fmt.Fprintf(w, "{\"goroutines\": %d, \"dropped\": %d}\n", runtime.NumGoroutine(), Dropped.Load())
}

var Upgrader = websocket.Upgrader{
	// ReadBufferSize 0 lets gorilla reuse the HTTP server's reader, which is
	// never read again: Reader reads the socket itself.
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

const (
	OpContinuation = 0
	OpText         = 1
	OpBinary       = 2
	OpClose        = 8
	OpPing         = 9
	OpPong         = 10
)

var (
	ErrTimeout  = errors.New("read deadline expired")
	ErrProtocol = errors.New("websocket protocol error")
	ErrTooBig   = errors.New("message over the read limit")
)

// Reader parses client frames straight from the net.Conn.
//
// gorilla's reader cannot run these designs: in gorilla 1.5 a read-deadline
// timeout becomes the Conn's permanent read error (every later read returns
// it, the 1000th panics), so the seed's "read with a 1 ms deadline, on
// timeout try again later" would kill a link in its first idle millisecond
// and the whole process a second later. At the net.Conn level a timeout is
// harmless: the bytes already received stay in buf and parsing resumes on
// the next turn, so a poll never cuts a frame in two.
type Reader struct {
	Conn  net.Conn
	buf   []byte
	r, w  int    // unparsed bytes are buf[r:w]
	kind  int    // opcode of the fragmented message being assembled, 0 if none
	parts []byte // its payload so far
	// Cancel, if set, is asked after the deadline is armed and before the
	// socket is read; true ends the wait at once (as a timeout). Whoever
	// makes it true must then move the deadline to now, which closes the
	// window between the question and the read.
	Cancel func() bool
}

func NewReader(c net.Conn) Reader { return Reader{Conn: c, buf: make([]byte, 4096)} }

// next returns the next complete message, or a control frame, with its
// opcode. It sets the read deadline once, only if it has to read the socket,
// and returns ErrTimeout when the deadline passes first.
func (rd *Reader) Next(deadline time.Time) (int, []byte, error) {
	armed := false
	for {
		op, fin, payload, ok, err := rd.frame()
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			if !armed {
				if err := rd.Conn.SetReadDeadline(deadline); err != nil {
					return 0, nil, err
				}
				armed = true
				if rd.Cancel != nil && rd.Cancel() {
					return 0, nil, ErrTimeout
				}
			}
			if err := rd.fill(); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return 0, nil, ErrTimeout
				}
				return 0, nil, err
			}
			continue
		}
		switch {
		case op >= OpClose: // control frames may come between fragments
			return op, payload, nil
		case op == OpContinuation:
			if rd.kind == 0 {
				return 0, nil, ErrProtocol
			}
			if len(rd.parts)+len(payload) > readLimit {
				return 0, nil, ErrTooBig
			}
			rd.parts = append(rd.parts, payload...)
		default:
			if rd.kind != 0 {
				return 0, nil, ErrProtocol
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
func (rd *Reader) frame() (op int, fin bool, payload []byte, ok bool, err error) {
	b := rd.buf[rd.r:rd.w]
	if len(b) < 2 {
		return
	}
	if b[0]&0x70 != 0 || b[1]&0x80 == 0 { // no extension negotiated; clients must mask
		err = ErrProtocol
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
	case op >= OpClose && op <= OpPong:
		if n > 125 || !fin {
			err = ErrProtocol
			return
		}
	case op > OpBinary:
		err = ErrProtocol
		return
	}
	if n > readLimit {
		err = ErrTooBig
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
func (rd *Reader) reserve(total int) {
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
func (rd *Reader) fill() error {
	if rd.w == len(rd.buf) {
		rd.reserve(len(rd.buf) + 1)
	}
	n, err := rd.Conn.Read(rd.buf[rd.w:])
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

// CloseReply is the close frame answering the peer's: its status code back.
func CloseReply(payload []byte) []byte {
	if len(payload) >= 2 {
		return payload[:2]
	}
	return nil
}

func ServeHTTP(handler http.HandlerFunc) {
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
