// The seed's link_v4 ("combined") Link design, as an echo server for the
// benchmarks.
//
// The seed gives v4 no code, only its row in the comparison table ("性能对比总结"):
//
//	| link_v4（综合优化） | 低 | 好 | 中（保护性丢弃） | 中 | 1 goroutine/连接 | 通用生产环境 |
//	  CPU low, memory stable, reliability medium (protective drops),
//	  complexity medium, 1 goroutine per link, general production use
//
// and calls it "the best practice under the one-goroutine constraint". This is
// a reconstruction from those properties and from what the other rows teach;
// each choice says which cell it answers:
//
//   - One goroutine per link, blocked in its read with no deadline
//     ("1 goroutine/连接"; "CPU 低"). v2 and v5 pay their "极高"/"中-偏高" CPU for
//     a 1 ms read deadline that turns every idle link into a poller; here an
//     idle link costs nothing until the kernel has bytes for it. Reads parse
//     frames from the net.Conn (peer.Reader, as v2, v3 and v5), armed with
//     the zero deadline: no timer is ever set.
//   - No send loop: sends from any goroutine go into a bounded per-link queue,
//     and whichever goroutine finds the link's writer slot free takes it and
//     writes everything queued in one net.Buffers write (one writev), again
//     until the queue is empty ("1 goroutine/连接" without the dual design's
//     sendLoop; v3's "批量发送" batch, but with no limit of 16 and no turn to
//     wait for). So a write never waits behind a read, and a read never
//     waits behind writes: v3's read starvation and its queued echo waiting
//     out a 1 s read cannot happen.
//   - Delivery to the business side never blocks the reader: a bounded
//     receive channel, pushed without blocking, a message that finds it full
//     is dropped and counted in /stats "dropped" ("中（保护性丢弃）"). This is
//     the cure for v3's "内存稳定性 差（可能 OOM）" and its loop frozen by a
//     slow business layer.
//   - The send queue is bounded too ("内存稳定性 好"): a send that finds
//     queueSize messages waiting for the writer is dropped and counted in the
//     same "dropped". At most queueSize messages wait and queueSize more are
//     in the write under way, per link.
//   - A write that takes longer than writeTimeout closes the link: a peer
//     that stops reading cannot hold a sending goroutine (the business
//     goroutine, when it is the writer) longer than that. Unlike v5's single
//     write try, a slow write is not a failed one.
//   - Frames are built here (server frames are unmasked: a 2-10 byte header
//     before the payload). Pong and close replies go through the same queue
//     so no two writers' frames ever interleave; a pong obeys the bound, the
//     close reply does not, and after it nothing more is sent and the writer
//     that sends it closes the connection.
//
// The complexity "中" is the writer slot: a mutex-guarded queue and flag
// instead of v3's loop or the dual design's second goroutine.
//
// As in go_v2 and go_v3, a business goroutine per link consumes the receive
// channel and echoes through the send queue, so the hand-off and both drop
// points are really exercised (the report counts it as "+1 business").
// Handshake by gorilla/websocket; its Conn is dropped after the upgrade (we
// neither read nor write through it), so its buffers are garbage at once.
//
// usage: go_v4 -port N [-slow-us U -slow-for S]
//
//	-slow-us U -slow-for S  the business goroutine sleeps U µs per message
//	                        during the first S seconds after the first message
//	GET /stats              {"goroutines": N, "dropped": D}
package main

import (
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"time"

	"ringlink/peer"
)

const (
	queueSize    = 256 // receive channel, and messages waiting for the writer
	writeTimeout = 10 * time.Second
)

// ---------------------------------------------------------------------------
// link_v4

type message struct {
	kind int
	data []byte
}

// frame is one server frame waiting for the writer: its header lives in the
// queue entry, so queueing a frame allocates nothing.
type frame struct {
	header  [10]byte
	n       uint8 // header length
	payload []byte
	close   bool // the close reply: the last frame of the link
}

func newFrame(op int, payload []byte) frame {
	f := frame{payload: payload, close: op == peer.OpClose}
	f.header[0] = 0x80 | byte(op) // FIN, no RSV bits, never masked
	switch n := len(payload); {
	case n < 126:
		f.header[1], f.n = byte(n), 2
	case n <= 0xffff:
		f.header[1], f.n = 126, 4
		binary.BigEndian.PutUint16(f.header[2:], uint16(n))
	default:
		f.header[1], f.n = 127, 10
		binary.BigEndian.PutUint64(f.header[2:], uint64(n))
	}
	return f
}

type link struct {
	conn      net.Conn
	rd        peer.Reader
	receiveCh chan message

	mu      sync.Mutex
	queue   []frame // waiting for the writer
	spare   []frame // the batch last written, reused as the next queue
	bufs    [][]byte
	writing bool // a goroutine holds the writer slot
	closing bool // the close reply is queued or the link failed: send nothing more
}

// send queues one frame and, if no goroutine is writing, becomes the writer
// until the queue is empty. Never blocks on the queue; may block in the write.
func (l *link) send(f frame) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return // the link is going: not a protective drop
	}
	if len(l.queue) >= queueSize && !f.close {
		l.mu.Unlock()
		peer.Dropped.Add(1)
		return
	}
	l.queue = append(l.queue, f)
	l.closing = f.close
	if l.writing {
		l.mu.Unlock()
		return // the writer takes it with the rest
	}
	l.writing = true
	for {
		batch := l.queue
		l.queue = l.spare[:0]
		l.mu.Unlock()
		err := l.write(batch)
		last := batch[len(batch)-1].close
		for i := range batch {
			batch[i].payload = nil // the queue keeps no message alive
		}
		l.mu.Lock()
		l.spare = batch
		if err != nil || last {
			l.closing, l.writing, l.queue = true, false, nil
			l.mu.Unlock()
			l.conn.Close() // the reader's read fails: it ends the link
			return
		}
		if len(l.queue) == 0 {
			l.writing = false
			l.mu.Unlock()
			return
		}
	}
}

// write sends a batch in one net.Buffers write (writev); only the writer
// calls it, so bufs needs no lock.
func (l *link) write(batch []frame) error {
	bufs := l.bufs[:0]
	for i := range batch {
		bufs = append(bufs, batch[i].header[:batch[i].n])
		if len(batch[i].payload) > 0 {
			bufs = append(bufs, batch[i].payload)
		}
	}
	l.bufs = bufs[:0]
	l.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	nb := net.Buffers(bufs) // WriteTo consumes nb, not l.bufs' backing array
	_, err := nb.WriteTo(l.conn)
	for i := range bufs {
		bufs[i] = nil
	}
	return err
}

// readLoop is the link's goroutine: it blocks in the read until a frame
// comes, with no deadline.
func (l *link) readLoop() {
	defer close(l.receiveCh)
	for {
		kind, data, err := l.rd.Next(time.Time{})
		if err != nil {
			l.fail()
			return
		}
		switch kind {
		case peer.OpPing:
			l.send(newFrame(peer.OpPong, data))
			continue
		case peer.OpPong:
			continue
		case peer.OpClose:
			l.send(newFrame(peer.OpClose, peer.CloseReply(data)))
			return
		}
		peer.MarkFirstMessage()
		select {
		case l.receiveCh <- message{kind, data}:
		default:
			peer.Dropped.Add(1)
		}
	}
}

// fail ends a link whose read failed: nothing more is written.
func (l *link) fail() {
	l.mu.Lock()
	l.closing, l.queue = true, nil
	l.mu.Unlock()
	l.conn.Close()
}

// The business layer: echo every message back through the send queue.
func (l *link) business() {
	for m := range l.receiveCh {
		peer.BusinessDelay()
		l.send(newFrame(m.kind, m.data))
	}
}

func serve(w http.ResponseWriter, r *http.Request) {
	c, err := peer.Upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := c.UnderlyingConn()
	l := &link{
		conn:      conn,
		rd:        peer.NewReader(conn),
		receiveCh: make(chan message, queueSize),
	}
	go l.business()
	go l.readLoop()
}

func main() { peer.ServeHTTP(serve) }
