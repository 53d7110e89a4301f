// The seed's link_v3 ("batch send") Link design, as an echo server for the
// benchmarks. One goroutine per link, each turn:
//   - writes up to 16 queued messages from the send channel (256);
//   - then one read with a 1 s read deadline, if the read rate.Limiter allows
//     (non-blocking Allow; 1e6 reads/s with a burst of 1000 per link, so the
//     echo benchmark never meets it, but the limiter does its work every turn);
//   - a received message is pushed onto the receive channel (256) with a
//     blocking send: a slow business layer stalls the whole loop.
//
// Faithful consequences the benchmarks measure: a queued echo waits behind a
// read that may block for up to 1 s, and when the business layer is slow the
// loop stops both reading and writing. With more than about 512 messages in
// flight per link and a slow consumer, the loop (blocked on the receive
// channel) and the business goroutine (blocked on the send channel) wait for
// each other forever, as the seed's "blocking risk" says.
//
// A business goroutine per link consumes the receive channel and echoes
// through the send channel. Handshake and writes use gorilla/websocket; reads
// parse frames from the net.Conn (see peer.Reader for why).
//
// -wake-reader departs from the seed to show what the 1 s read costs: after
// queueing a message the business goroutine moves the loop's read deadline
// to now, so the queued message is written on the next turn instead of after
// the read times out.
//
// usage: go_v3 -port N [-slow-us U -slow-for S] [-wake-reader]
//
//	-slow-us U -slow-for S  the business goroutine sleeps U µs per message
//	                        during the first S seconds after the first message
//	GET /stats              {"goroutines": N, "dropped": 0}
package main

import (
	"flag"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
	"ringlink/peer"
)

const (
	queueSize    = 256
	sendBatch    = 16
	readTimeout  = time.Second
	readRate     = 1e6 // reads per second per link
	readBurst    = 1000
	controlWrite = time.Second // deadline for pong and close replies
)

// ---------------------------------------------------------------------------
// link_v3

var wakeReader = flag.Bool("wake-reader", false, "cut the loop's read short when a message is queued (not in the seed)")

type message struct {
	kind int
	data []byte
}

type link struct {
	conn      *websocket.Conn // writes
	rd        peer.Reader     // reads
	limiter   *rate.Limiter   // on reads
	sendCh    chan message
	receiveCh chan message
	closeCh   chan struct{} // closed to stop the link; checked every turn
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
		if !l.sendQueued() {
			return
		}
		if !l.limiter.Allow() {
			// Over the read rate: no read this turn. Waiting one token's time
			// keeps the loop from spinning without blocking it for long.
			time.Sleep(time.Duration(float64(time.Second) / readRate))
			continue
		}
		if !l.read() {
			return
		}
	}
}

// sendQueued writes up to sendBatch queued messages; false ends the link.
func (l *link) sendQueued() bool {
	for i := 0; i < sendBatch; i++ {
		select {
		case m := <-l.sendCh:
			if err := l.conn.WriteMessage(m.kind, m.data); err != nil {
				return false
			}
		default:
			return true
		}
	}
	return true
}

// read is one read of up to readTimeout; false ends the link.
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
	l.receiveCh <- message{kind, data}
	return true
}

// The business layer: echo every message back through the send channel.
func (l *link) business() {
	for m := range l.receiveCh {
		peer.BusinessDelay()
		select {
		case l.sendCh <- m:
			if *wakeReader {
				l.rd.Conn.SetReadDeadline(time.Now())
			}
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
		limiter:   rate.NewLimiter(readRate, readBurst),
		sendCh:    make(chan message, queueSize),
		receiveCh: make(chan message, queueSize),
		closeCh:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	if *wakeReader {
		l.rd.Cancel = func() bool { return len(l.sendCh) > 0 }
	}
	go l.business()
	go l.loop()
}

func main() { peer.ServeHTTP(serve) }
