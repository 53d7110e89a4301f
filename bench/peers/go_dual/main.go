// The seed's "dual goroutine" Link design, as an echo server for the
// benchmarks: per connection a receiveLoop goroutine (reads frames, pushes
// them onto the receive channel) and a sendLoop goroutine (drains a send
// channel of 256 and writes frames). A business goroutine per link consumes
// the receive channel and echoes by pushing onto the send channel, so the
// hand-off really happens. gorilla/websocket from Debian, built offline by
// bench/scripts/build_peers.sh.
//
// usage: go_dual -port N [-slow-us U -slow-for S]
//
//	-slow-us U -slow-for S  the business goroutine sleeps U µs per message
//	                        during the first S seconds after the first message
//	GET /stats              {"goroutines": N, "dropped": 0}
package main

import (
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

const (
	queueSize = 256
	readLimit = 64 << 20
)

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

type message struct {
	kind int
	data []byte
}

type link struct {
	conn      *websocket.Conn
	sendCh    chan message
	receiveCh chan message
	done      chan struct{} // closed by business: sendLoop stops
	sendDone  chan struct{} // closed by sendLoop: business stops pushing
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func (l *link) receiveLoop() {
	defer close(l.receiveCh)
	for {
		kind, data, err := l.conn.ReadMessage()
		if err != nil {
			return
		}
		markFirstMessage()
		l.receiveCh <- message{kind, data}
	}
}

func (l *link) sendLoop() {
	defer close(l.sendDone)
	for {
		select {
		case m := <-l.sendCh:
			if err := l.conn.WriteMessage(m.kind, m.data); err != nil {
				l.conn.Close()
				return
			}
		case <-l.done:
			return
		}
	}
}

// The business layer: echo every message back through the send channel.
// It must not block on a full send channel whose sendLoop died on a write
// error, or it would keep receiveLoop (and itself) alive forever.
func (l *link) business() {
	for m := range l.receiveCh {
		businessDelay()
		select {
		case l.sendCh <- m:
		case <-l.sendDone:
		}
	}
	close(l.done)
	l.conn.Close()
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(readLimit)
	l := &link{
		conn:      c,
		sendCh:    make(chan message, queueSize),
		receiveCh: make(chan message, queueSize),
		done:      make(chan struct{}),
		sendDone:  make(chan struct{}),
	}
	go l.sendLoop()
	go l.business()
	go l.receiveLoop()
}

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", stats)
	mux.HandleFunc("/", serve)
	go func() { log.Fatal(http.Serve(ln, mux)) }()
	<-sig
}
