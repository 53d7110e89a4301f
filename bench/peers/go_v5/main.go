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
// use gorilla/websocket; reads parse frames from the net.Conn (see peer.Reader).
//
// usage: go_v5 -port N [-slow-us U -slow-for S]
//
//	-slow-us U -slow-for S  the business goroutine sleeps U µs per message
//	                        during the first S seconds after the first message
//	GET /stats              {"goroutines": N, "dropped": D}
package main

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"ringlink/peer"
)

const (
	groupSize    = 2
	queueSize    = 256
	readTimeout  = time.Millisecond
	writeTimeout = time.Second // the seed gives none; long enough never to fire on loopback
	controlWrite = time.Second // deadline for pong and close replies
)

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
	rd     peer.Reader     // reads
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
	kind, data, err := l.rd.Next(time.Now().Add(readTimeout))
	switch {
	case err == peer.ErrTimeout:
		return
	case err != nil:
		l.close()
		return
	}
	switch kind {
	case peer.OpPing:
		if l.conn.WriteControl(websocket.PongMessage, data, time.Now().Add(controlWrite)) != nil {
			l.close()
		}
		return
	case peer.OpPong:
		return
	case peer.OpClose:
		l.conn.WriteControl(websocket.CloseMessage, peer.CloseReply(data), time.Now().Add(controlWrite))
		l.close()
		return
	}
	peer.MarkFirstMessage()
	select {
	case g.receiveCh <- message{l.id, kind, data}:
	default:
		peer.Dropped.Add(1)
	}
}

// The business layer: echo every message back to the link its LinkID names.
func (g *group) business() {
	for m := range g.receiveCh {
		peer.BusinessDelay()
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
	c, err := peer.Upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	l := &link{
		id:     nextLinkID.Add(1),
		conn:   c,
		rd:     peer.NewReader(c.UnderlyingConn()),
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

func main() { peer.ServeHTTP(serve) }
