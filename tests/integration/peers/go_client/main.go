// go_ws_client drives a WebSocket echo server with gorilla/websocket and
// exits 1 with a description on stderr at the first mismatch.
//
// usage: go_ws_client -url ws[s]://127.0.0.1:PORT/ -mode MODE [-n N -m M]
// (wss:// trusts the CA file named by $RINGLINK_CA)
//
// The server must echo every message and close with 4001 "bye" when it gets
// the text message "close-me". Modes:
//   sizes         text and binary messages of every size (gorilla fragments
//                 large messages at its 4 KiB write buffer)
//   ping          our ping is answered with the same payload; then waits
//                 for the server's own ping (the server pings idle links)
//   close         the client closes with 1000, then 4000 "go-bye"; the
//                 server must echo the codes
//   server_close  "close-me" -> close 4001 "bye"
//   concurrent    N connections at once, each pipelining M messages
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var sizes = []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 16 << 20}

const stepTimeout = 30 * time.Second

func textOf(n int) []byte {
	unit := "a\u00e9\u20ac\U0001F600" // 1 + 2 + 3 + 4 bytes
	s := strings.Repeat(unit, n/10) + strings.Repeat("x", n%10)
	return []byte(s)
}

func binaryOf(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// tlsConfig trusts the CA file in $RINGLINK_CA for wss:// URLs (test
// certificates); nil keeps the defaults.
func tlsConfig() (*tls.Config, error) {
	path := os.Getenv("RINGLINK_CA")
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// -compress: offer permessage-deflate (gorilla supports only no context
// takeover) and fail unless the server agrees.
var compress = flag.Bool("compress", false, "offer permessage-deflate and require it")

func dial(url string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, EnableCompression: *compress}
	if strings.HasPrefix(url, "wss://") {
		cfg, err := tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		d.TLSClientConfig = cfg
	}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if *compress {
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
			c.Close()
			return nil, fmt.Errorf("permessage-deflate not agreed: %q", ext)
		}
		c.EnableWriteCompression(true)
	}
	return c, nil
}

func echo(c *websocket.Conn, kind int, msg []byte) error {
	c.SetWriteDeadline(time.Now().Add(stepTimeout))
	if err := c.WriteMessage(kind, msg); err != nil {
		return fmt.Errorf("write %d bytes: %w", len(msg), err)
	}
	c.SetReadDeadline(time.Now().Add(stepTimeout))
	got, data, err := c.ReadMessage()
	if err != nil {
		return fmt.Errorf("read echo of %d bytes: %w", len(msg), err)
	}
	if got != kind || !bytes.Equal(data, msg) {
		return fmt.Errorf("echo of type %d, %d bytes: got type %d, %d bytes, equal=%v",
			kind, len(msg), got, len(data), bytes.Equal(data, msg))
	}
	return nil
}

// closeWith sends a close frame and expects the server to echo its code.
func closeWith(c *websocket.Conn, code int, reason string) error {
	defer c.Close()
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(stepTimeout)); err != nil {
		return fmt.Errorf("write close: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(stepTimeout))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			return fmt.Errorf("expected the close echo %d, got %v", code, err)
		}
		if ce.Code != code {
			return fmt.Errorf("closed with %d, server answered %d", code, ce.Code)
		}
		return nil
	}
}

func modeSizes(url string) error {
	c, err := dial(url)
	if err != nil {
		return err
	}
	for _, n := range sizes {
		if err := echo(c, websocket.TextMessage, textOf(n)); err != nil {
			return err
		}
		if err := echo(c, websocket.BinaryMessage, binaryOf(n, int64(n))); err != nil {
			return err
		}
	}
	return closeWith(c, websocket.CloseNormalClosure, "")
}

func modePing(url string) error {
	c, err := dial(url)
	if err != nil {
		return err
	}
	pongs := make(chan string, 4)
	pings := make(chan string, 4)
	c.SetPongHandler(func(s string) error { pongs <- s; return nil })
	c.SetPingHandler(func(s string) error {
		select {
		case pings <- s:
		default: // only the first ping is waited for
		}
		err := c.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(stepTimeout))
		if err == websocket.ErrCloseSent {
			return nil // a later ping crossed our close: nothing to answer
		}
		return err
	})
	readErr := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(stepTimeout))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	if err := c.WriteControl(websocket.PingMessage, []byte("go-ping"), time.Now().Add(stepTimeout)); err != nil {
		return fmt.Errorf("write ping: %w", err)
	}
	select {
	case p := <-pongs:
		if p != "go-ping" {
			return fmt.Errorf("pong payload %q, want %q", p, "go-ping")
		}
	case err := <-readErr:
		return fmt.Errorf("before the pong: %v", err)
	case <-time.After(stepTimeout):
		return errors.New("no pong")
	}
	// Quiet now: the server's ping interval must make it ping us.
	select {
	case <-pings:
	case err := <-readErr:
		return fmt.Errorf("before the server's ping: %v", err)
	case <-time.After(5 * time.Second):
		return errors.New("the server never pinged an idle connection")
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(stepTimeout)); err != nil {
		return fmt.Errorf("write close: %w", err)
	}
	err = <-readErr
	c.Close()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		return fmt.Errorf("expected the close echo 1000, got %v", err)
	}
	return nil
}

func modeClose(url string) error {
	for _, tc := range []struct {
		code   int
		reason string
	}{{websocket.CloseNormalClosure, ""}, {4000, "go-bye"}} {
		c, err := dial(url)
		if err != nil {
			return err
		}
		if err := echo(c, websocket.TextMessage, []byte("before close")); err != nil {
			return err
		}
		if err := closeWith(c, tc.code, tc.reason); err != nil {
			return err
		}
	}
	return nil
}

func modeServerClose(url string) error {
	c, err := dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(stepTimeout))
	if err := c.WriteMessage(websocket.TextMessage, []byte("close-me")); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(stepTimeout))
	_, data, err := c.ReadMessage()
	if err == nil {
		return fmt.Errorf("expected a close, got a message %q", data)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
		return fmt.Errorf("expected close 4001 \"bye\", got %v", err)
	}
	return nil
}

func modeConcurrent(url string, n, m int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dial(url)
			if err != nil {
				errs <- err
				return
			}
			msgs := make([][]byte, m)
			for j := range msgs {
				msgs[j] = []byte(fmt.Sprintf("conn %d message %d %s", i, j, strings.Repeat("g", j*13%500)))
			}
			writeErr := make(chan error, 1)
			go func() {
				c.SetWriteDeadline(time.Now().Add(stepTimeout))
				for j, msg := range msgs {
					kind := websocket.TextMessage
					if j%2 == 1 {
						kind = websocket.BinaryMessage
					}
					if err := c.WriteMessage(kind, msg); err != nil {
						writeErr <- err
						return
					}
				}
				writeErr <- nil
			}()
			c.SetReadDeadline(time.Now().Add(stepTimeout))
			for j, want := range msgs {
				_, got, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("conn %d message %d: %w", i, j, err)
					c.Close()
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("conn %d: message %d differs or out of order", i, j)
					c.Close()
					return
				}
			}
			if err := <-writeErr; err != nil {
				errs <- err
				c.Close()
				return
			}
			if err := closeWith(c, websocket.CloseNormalClosure, ""); err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func main() {
	url := flag.String("url", "", "ws:// URL of the echo server")
	mode := flag.String("mode", "sizes", "sizes | ping | close | server_close | concurrent")
	n := flag.Int("n", 50, "connections (concurrent)")
	m := flag.Int("m", 100, "messages per connection (concurrent)")
	flag.Parse()
	var err error
	switch *mode {
	case "sizes":
		err = modeSizes(*url)
	case "ping":
		err = modePing(*url)
	case "close":
		err = modeClose(*url)
	case "server_close":
		err = modeServerClose(*url)
	case "concurrent":
		err = modeConcurrent(*url, *n, *m)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_ws_client: %s: %v\n", *mode, err)
		os.Exit(1)
	}
}
