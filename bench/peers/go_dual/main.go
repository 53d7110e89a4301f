// The seed's "dual goroutine" Link design, as an echo server for the
// benchmarks: per connection a receiveLoop goroutine (reads frames, pushes
// them onto the receive channel) and a sendLoop goroutine (drains a send
// channel of 256 and writes frames). A business goroutine per link consumes
// the receive channel and echoes by pushing onto the send channel, so the
// hand-off really happens. gorilla/websocket from Debian, built offline.
//
// usage: go_dual -port N
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"
)

type message struct {
	kind int
	data []byte
}

type link struct {
	conn      *websocket.Conn
	sendCh    chan message
	receiveCh chan message
	done      chan struct{}
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
		l.receiveCh <- message{kind, data}
	}
}

func (l *link) sendLoop() {
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
func (l *link) business() {
	for m := range l.receiveCh {
		l.sendCh <- m
	}
	close(l.done)
	l.conn.Close()
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 20)
	l := &link{conn: c, sendCh: make(chan message, 256), receiveCh: make(chan message, 256), done: make(chan struct{})}
	go l.sendLoop()
	go l.business()
	go l.receiveLoop()
}

func main() {
	port := flag.Int("port", 9002, "port on 127.0.0.1")
	flag.Parse()
	http.HandleFunc("/", serve)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+strconv.Itoa(*port), nil))
}
