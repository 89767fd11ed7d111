package wsi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/gorilla/websocket"
)

// This file is the socket: dialling, and a session's reader and pinger.
// Everything after the socket (client_session.go) is shared with Feed.

// connect dials and starts the session's reader and pinger. Only the
// session goroutine writes data frames; pings and the close frame go
// through WriteControl, which gorilla allows beside one other writer.
func (c *Client) connect(ctx context.Context) (*session, error) {
	c.log.Debug("connecting to the PBX", "url", c.cfg.URL)
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	s := c.newSession(conn, make(chan frame, 16), make(chan struct{}))
	// A pong or a ping proves the PBX alive, except in the middle of a
	// message, which must arrive whole in time (see readLoop).
	alive := func() {
		if !s.inMessage {
			_ = conn.SetReadDeadline(time.Now().Add(2 * c.cfg.PingInterval))
		}
	}
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetPingHandler(func(data string) error {
		alive()
		// A failed pong is a broken connection, which the next read
		// reports better than this write would.
		_ = conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.cfg.HandshakeTimeout))
		return nil
	})
	s.wg.Add(2)
	go s.readLoop()
	go s.pingLoop()
	return s, nil
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	// The timeout is ours, not gorilla's HandshakeTimeout: gorilla cancels
	// its own derived context on return, which would close the connection
	// through the AfterFunc below.
	dctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	// How far the dial got says what failed, without reading error texts.
	var connected, answered bool
	var tlsErr error
	dctx = httptrace.WithClientTrace(dctx, &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { connected = true },
		TLSHandshakeDone:     func(_ tls.ConnectionState, err error) { tlsErr = err },
		GotFirstResponseByte: func() { answered = true },
	})
	// gorilla bounds the upgrade by a deadline only, so a cancel of ctx
	// would wait for it; closing the TCP connection on cancel makes
	// shutdown prompt even against a PBX that never answers the upgrade.
	var stop func() bool
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, TLSClientConfig: c.cfg.tlsConfig(),
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				stop = context.AfterFunc(ctx, func() { conn.Close() })
			}
			return conn, err
		}}
	conn, resp, err := d.DialContext(dctx, c.cfg.URL, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if stop != nil && !stop() && err == nil {
		conn.Close() // the context ended just as the handshake completed
		err = dctx.Err()
	}
	kind := dialKind(err, tlsErr, connected, answered)
	switch {
	case err == nil:
		return conn, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, websocket.ErrBadHandshake) && resp != nil:
		err = fmt.Errorf("%w (HTTP %s): is this the WSI endpoint, e.g. wss://pbx:8887/wsi?", err, clip(resp.Status, 64))
	case kind == KindNoAnswer && (dctx.Err() != nil || isTimeout(err)):
		err = fmt.Errorf("no WebSocket handshake within %s: %w", c.cfg.HandshakeTimeout, err)
	}
	return nil, c.fail(StageDial, kind, err)
}

// close ends the session: a close frame (best effort), the connection, and
// waits for the reader and the pinger.
func (s *session) close() {
	if s.conn == nil {
		return
	}
	close(s.done)
	_ = s.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.conn.Close()
	s.wg.Wait()
}

func (s *session) pingLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			// A failed ping is for the reader to notice.
			_ = s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.c.cfg.HandshakeTimeout))
		}
	}
}

// readLoop reads frames until the connection fails. A frame that cannot be
// used (binary, oversized, undecodable) is counted and skipped: one bad
// frame never ends a session. The session goroutine blocks the reader
// when the Handler is slow: back-pressure, not loss.
func (s *session) readLoop() {
	defer s.wg.Done()
	defer close(s.frames)
	c := s.c
	limit, dead := c.cfg.MaxMessageSize, 2*c.cfg.PingInterval
	for {
		// Set before every read, not only on frames: a slow Handler must
		// not make a live PBX look dead.
		s.inMessage = false
		_ = s.conn.SetReadDeadline(time.Now().Add(dead))
		typ, r, err := s.conn.NextReader()
		if err == nil {
			// A message must arrive whole within two periods of its first
			// frame: a PBX trickling one, pongs in between, is not alive.
			s.inMessage = true
			_ = s.conn.SetReadDeadline(time.Now().Add(dead))
			s.buf.Reset()
			var n int64
			if n, err = s.buf.ReadFrom(io.LimitReader(r, limit+1)); err == nil && n > limit {
				_, err = io.Copy(io.Discard, r)
			}
			switch {
			case err != nil:
			case typ == websocket.BinaryMessage:
				c.count(c.stats.InvalidMessages, ReasonBinaryFrame)
			case n > limit:
				c.count(c.stats.InvalidMessages, ReasonOversized)
			case !c.deliver(s.frames, s.done, s.buf.Bytes(), time.Now()):
				return
			}
		}
		if err != nil {
			s.readErr = s.readError(err)
			return
		}
		if s.buf.Cap() > 1<<20 {
			s.buf = bytes.Buffer{} // one burst of large frames must not pin megabytes
		}
	}
}

func (s *session) readError(err error) error {
	var ce *websocket.CloseError
	period := 2 * s.c.cfg.PingInterval
	switch {
	case errors.As(err, &ce):
		// The PBX's reason may echo the password: cut it out here, before
		// the error is wrapped, kept or printed anywhere.
		ce.Text = s.c.text(ce.Text)
	case isTimeout(err) && s.inMessage:
		return fmt.Errorf("a message from the PBX did not arrive whole within %s (two ping periods): %w", period, err)
	case isTimeout(err):
		return fmt.Errorf("no frame or pong from the PBX for %s (two ping periods): %w", period, err)
	}
	return err
}
