//go:build !race

package reliability

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// hostilePBX is a PBX written for an attack: it speaks just enough of the
// protocol to be logged in to and subscribed, then does what the test
// scripts. Each connection runs script; the default accepts the login and
// every subscription and sends what the test gives send.
type hostilePBX struct {
	URL string
	t   *testing.T

	mu    sync.Mutex
	conns []*hostileConn
	n     int // connections so far
	// script runs on each connection (its number from 1); nil: serve.
	script func(n int, c *hostileConn)
}

// hostileConn is one session of the hostile PBX. Writes are serialised:
// the command reader replies while the test sends.
type hostileConn struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	// subscribeReply answers each subscribe command (nil: no answer);
	// set before serve.
	subscribeReply func(cmd map[string]any) string
	commands       chan map[string]any // every command after auth, if not nil
	done           chan struct{}       // closed when the client is gone
}

func startHostilePBX(t *testing.T, script func(n int, c *hostileConn)) *hostilePBX {
	t.Helper()
	p := &hostilePBX{t: t, script: script}
	var wg sync.WaitGroup
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 64 << 10}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &hostileConn{conn: conn, done: make(chan struct{})}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.n++
		n := p.n
		wg.Add(1)
		p.mu.Unlock()
		defer wg.Done()
		defer conn.Close()
		if p.script != nil {
			p.script(n, c)
			return
		}
		c.serve()
	}))
	t.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.conn.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	p.URL = "ws" + strings.TrimPrefix(srv.URL, "http") + "/wsi"
	return p
}

// send writes frame to every live session.
func (p *hostilePBX) send(frame string) {
	p.mu.Lock()
	conns := append([]*hostileConn(nil), p.conns...)
	p.mu.Unlock()
	for _, c := range conns {
		select {
		case <-c.done:
		default:
			c.send(frame)
		}
	}
}

// sessions is the number of connections so far.
func (p *hostilePBX) sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (c *hostileConn) send(frame string) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, []byte(frame)) == nil
}

// closeWith ends the session with a close frame of the given reason.
func (c *hostileConn) closeWith(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

// command reads the next command; ok is false once the client is gone.
func (c *hostileConn) command() (cmd map[string]any, ok bool) {
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return nil, false
		}
		if typ == websocket.TextMessage && json.Unmarshal(data, &cmd) == nil {
			return cmd, true
		}
	}
}

// login reads the auth command and accepts it.
func (c *hostileConn) login() bool {
	if _, ok := c.command(); !ok {
		return false
	}
	return c.send(`{"command":"auth","status":0}`)
}

// serve accepts the login and answers every subscribe with success (or
// subscribeReply), until the client goes away. Pings are answered by the
// connection's default handler while it reads.
func (c *hostileConn) serve() {
	if !c.login() {
		close(c.done)
		return
	}
	c.answer()
}

// answer answers commands as serve does after the login, until the client
// goes away.
func (c *hostileConn) answer() {
	defer close(c.done)
	for {
		cmd, ok := c.command()
		if !ok {
			return
		}
		if c.commands != nil {
			select {
			case c.commands <- cmd:
			default:
			}
		}
		if cmd["command"] != "subscribe" {
			continue
		}
		reply := `{"command":"subscribe","status":0}`
		if c.subscribeReply != nil {
			reply = c.subscribeReply(cmd)
		}
		if reply != "" && !c.send(reply) {
			return
		}
	}
}
