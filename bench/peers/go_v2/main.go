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
// frames from the net.Conn (see peer.Reader for why).
//
// usage: go_v2 -port N [-slow-us U -slow-for S]
//
//	-slow-us U -slow-for S  the business goroutine sleeps U µs per message
//	                        during the first S seconds after the first message
//	GET /stats              {"goroutines": N, "dropped": D}
package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"ringlink/peer"
)

const (
	queueSize    = 256
	readTimeout  = time.Millisecond
	controlWrite = time.Second // deadline for pong and close replies
)

// ---------------------------------------------------------------------------
// link_v2

type message struct {
	kind int
	data []byte
}

type link struct {
	conn      *websocket.Conn // writes
	rd        peer.Reader     // reads
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
	kind, data, err := l.rd.Next(time.Now().Add(readTimeout))
	switch {
	case err == peer.ErrTimeout:
		return true
	case err != nil:
		return false
	}
	switch kind {
	case peer.OpPing:
		return l.conn.WriteControl(websocket.PongMessage, data, time.Now().Add(controlWrite)) == nil
	case peer.OpPong:
		return true
	case peer.OpClose:
		l.conn.WriteControl(websocket.CloseMessage, peer.CloseReply(data), time.Now().Add(controlWrite))
		return false
	}
	peer.MarkFirstMessage()
	select {
	case l.receiveCh <- message{kind, data}:
	default:
		peer.Dropped.Add(1)
	}
	return true
}

// The business layer: echo every message back through the send channel.
func (l *link) business() {
	for m := range l.receiveCh {
		peer.BusinessDelay()
		select {
		case l.sendCh <- m:
		case <-l.done:
		}
	}
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := peer.Upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	l := &link{
		conn:      c,
		rd:        peer.NewReader(c.UnderlyingConn()),
		sendCh:    make(chan message, queueSize),
		receiveCh: make(chan message, queueSize),
		closeCh:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	go l.business()
	go l.loop()
}

func main() { peer.ServeHTTP(serve) }
