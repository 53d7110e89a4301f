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
	"net/http"

	"github.com/gorilla/websocket"
	"ringlink/peer"
)

const (
	queueSize = 256
	readLimit = 64 << 20
)

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
		peer.MarkFirstMessage()
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
		peer.BusinessDelay()
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

func main() { peer.ServeHTTP(serve) }
