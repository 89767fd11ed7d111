package wsitest

import (
	"encoding/json"
	"slices"
	"strconv"
)

// command is any client command; the keys are the vendor's.
type command struct {
	Command         string   `json:"command"`
	Username        string   `json:"username"`
	ExtensionNumber string   `json:"extension_number"`
	Password        string   `json:"password"`
	Domain          string   `json:"domain"`
	Topics          []string `json:"topics"`
	Tenants         []string `json:"tenants"`
	Queues          []string `json:"queues"`
	Extensions      []string `json:"extensions"`
}

// reply is the vendor's reply shape; keys in the order the PBX sends them.
type reply struct {
	Command string `json:"command"`
	Error   string `json:"error,omitempty"`
	ID      string `json:"id"`
	Status  int    `json:"status"`
}

// family groups a tenant topic and its global twin: they carry the same
// events.
type family int

const (
	famQueue family = iota
	famQueueMgmt
	famExt
	famExtMgmt
	famCDR
)

type topicInfo struct {
	fam    family
	global bool
}

var topics = map[string]topicInfo{
	"queue_events":                       {famQueue, false},
	"global_queue_events":                {famQueue, true},
	"queue_management_events":            {famQueueMgmt, false},
	"global_queue_management_events":     {famQueueMgmt, true},
	"extension_events":                   {famExt, false},
	"global_extension_events":            {famExt, true},
	"global_extension_management_events": {famExtMgmt, true},
	"cdr_events":                         {famCDR, false},
	"global_cdr_events":                  {famCDR, true},
}

// subscription is one accepted topic of a session.
type subscription struct {
	topic   string
	fam     family
	global  bool
	tenants map[string]bool // global topics
	queues  map[string]bool // queue_events; empty = every queue
	exts    map[string]bool // extension_events; empty = every extension
}

// route says where an event goes: its family, tenant, and the queue or
// extension it is about ("" when unknown: then no filter applies).
type route struct {
	fam    family
	tenant string
	queue  string
	ext    string
}

// wants reports whether the session subscribed to r. Called with s.mu held.
func (sess *session) wants(r route) bool {
	for _, sub := range sess.subs {
		if sub.fam != r.fam {
			continue
		}
		if sub.global {
			if sub.tenants[r.tenant] {
				return true
			}
			continue
		}
		if sess.user.TenantID != r.tenant {
			continue
		}
		if r.queue != "" && len(sub.queues) > 0 && !sub.queues[r.queue] {
			continue
		}
		if r.ext != "" && len(sub.exts) > 0 && !sub.exts[r.ext] {
			continue
		}
		return true
	}
	return false
}

// reply queues a reply with the next id of the session; errText "" is
// success.
func (sess *session) reply(cmd, errText string) {
	s := sess.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.replyLocked(cmd, errText)
}

func (sess *session) replyLocked(cmd, errText string) {
	sess.replyID++
	r := reply{Command: cmd, ID: strconv.Itoa(sess.replyID)}
	if errText != "" {
		r.Error, r.Status = errText, -1
	}
	sess.sendJSON(r)
}

func (sess *session) handle(data []byte) {
	var c command
	if err := json.Unmarshal(data, &c); err != nil {
		// A wrong type in a key lands here too; the PBX's behaviour is
		// undocumented, an error reply is the helpful guess.
		sess.reply(c.Command, "invalid command: "+err.Error())
		return
	}
	switch c.Command {
	case "auth":
		sess.auth(c)
	case "subscribe":
		sess.subscribe(c)
	case "unsubscribe":
		sess.unsubscribe(c)
	default:
		sess.reply(c.Command, "unknown command")
	}
}

func (sess *session) auth(c command) {
	s := sess.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authAttempts++
	if !s.authReplies.Load() {
		return
	}
	if s.authError != "" {
		sess.user = nil
		sess.replyLocked("auth", s.authError)
		return
	}
	u := s.findUserLocked(c)
	if u == nil {
		sess.user = nil
		sess.replyLocked("auth", AuthError)
		return
	}
	// A new auth starts a new identity: old subscriptions do not carry over.
	sess.user = u
	clear(sess.subs)
	sess.replyLocked("auth", "")
}

func (s *Server) findUserLocked(c command) *User {
	if c.Password == "" {
		return nil
	}
	if c.Domain == "" {
		if c.Username == "" || c.ExtensionNumber != "" {
			return nil
		}
		for _, u := range s.users {
			if u.Role == SystemAdmin && u.Username == c.Username && u.Password == c.Password {
				return u
			}
		}
		return nil
	}
	for _, u := range s.users {
		if u.Role == SystemAdmin || u.Password != c.Password {
			continue
		}
		t := s.tenants[u.TenantID]
		if t == nil || t.Domain != c.Domain {
			continue
		}
		switch {
		case c.Username != "" && c.ExtensionNumber == "":
			if u.Username == c.Username {
				return u
			}
		case c.ExtensionNumber != "" && c.Username == "":
			if u.ExtensionNumber != "" && u.ExtensionNumber == c.ExtensionNumber {
				return u
			}
		}
	}
	return nil
}

// permission returns "" when u may subscribe topic with c's filters, or
// the error text.
func (s *Server) permissionLocked(u *User, topic string, c command) string {
	ti, ok := topics[topic]
	if !ok {
		return "unknown topic: " + topic
	}
	denied := "permission denied: " + topic
	if slices.Contains(u.Denied, topic) {
		return denied
	}
	if ti.global {
		if u.Role != SystemAdmin {
			return denied
		}
		if s.quirks.AdminGlobalsRefused && topic != "global_extension_management_events" {
			return denied
		}
		if len(c.Tenants) == 0 {
			return "tenants required: " + topic
		}
		return ""
	}
	if u.Role == SystemAdmin {
		return denied
	}
	switch ti.fam {
	case famCDR, famQueueMgmt:
		if u.Role != TenantAdmin {
			return denied
		}
	case famQueue:
		if u.Role == ExtensionUser {
			for _, q := range c.Queues {
				if !slices.Contains(u.Queues, q) {
					return denied
				}
			}
		}
	}
	return ""
}

func (sess *session) subscribe(c command) {
	s := sess.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.user == nil {
		sess.replyLocked("subscribe", "not authenticated")
		return
	}
	if len(c.Topics) == 0 {
		sess.replyLocked("subscribe", "topics required")
		return
	}
	for _, t := range c.Topics {
		if e := s.permissionLocked(sess.user, t, c); e != "" {
			sess.replyLocked("subscribe", e)
			return
		}
	}
	if s.subscribeReplies.Load() {
		sess.replyLocked("subscribe", "")
	} else {
		sess.replyID++ // the id is spent even when the reply is lost
	}
	for _, t := range c.Topics {
		ti := topics[t]
		sub := sess.subs[t]
		if sub == nil {
			sub = &subscription{topic: t, fam: ti.fam, global: ti.global,
				tenants: map[string]bool{}, queues: map[string]bool{}, exts: map[string]bool{}}
			sess.subs[t] = sub
		}
		// Filters add up over subscribes, as a client subscribing to
		// queues one by one expects.
		tenants := c.Tenants
		if !ti.global {
			tenants = []string{sess.user.TenantID}
		} else {
			for _, id := range c.Tenants {
				sub.tenants[id] = true
			}
		}
		queues, exts := c.Queues, c.Extensions
		if ti.fam == famQueue && !ti.global {
			if len(queues) == 0 && sess.user.Role == ExtensionUser {
				queues = sess.user.Queues
			}
			for _, q := range queues {
				sub.queues[q] = true
			}
		}
		if ti.fam == famExt && !ti.global {
			for _, e := range exts {
				sub.exts[e] = true
			}
		}
		s.snapshotLocked(sess.sendJSON, ti, tenants, queues, exts)
	}
}

// snapshotLocked pushes the current state of what a subscribe named.
func (s *Server) snapshotLocked(emit func(any), ti topicInfo, tenants, queues, exts []string) {
	for _, id := range tenants {
		t := s.tenants[id]
		if t == nil {
			continue
		}
		switch ti.fam {
		case famQueue:
			for _, q := range t.queues {
				if ti.global || len(queues) == 0 || slices.Contains(queues, q.Number) {
					emit(s.queueStatusLocked(t, q))
				}
			}
		case famQueueMgmt:
			for _, q := range t.queues {
				emit(queueMgmtMsg{EventType: "queue_created", QueueNumber: q.Number, TenantID: t.ID})
			}
		case famExt:
			var list []*extension
			for _, e := range t.exts {
				if ti.global || len(exts) == 0 || slices.Contains(exts, e.Number) {
					list = append(list, e)
				}
			}
			if len(list) > 0 {
				emit(s.extensionStatusLocked(t, list...))
			}
		}
	}
}

func (sess *session) unsubscribe(c command) {
	s := sess.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.user == nil {
		sess.replyLocked("unsubscribe", "not authenticated")
		return
	}
	for _, t := range c.Topics {
		sub := sess.subs[t]
		if sub == nil {
			continue
		}
		switch {
		case sub.global && len(c.Tenants) > 0:
			for _, id := range c.Tenants {
				delete(sub.tenants, id)
			}
			if len(sub.tenants) == 0 {
				delete(sess.subs, t)
			}
		case sub.fam == famQueue && len(c.Queues) > 0 && len(sub.queues) > 0:
			for _, q := range c.Queues {
				delete(sub.queues, q)
			}
			if len(sub.queues) == 0 {
				delete(sess.subs, t)
			}
		case sub.fam == famExt && len(c.Extensions) > 0 && len(sub.exts) > 0:
			for _, e := range c.Extensions {
				delete(sub.exts, e)
			}
			if len(sub.exts) == 0 {
				delete(sess.subs, t)
			}
		default:
			delete(sess.subs, t)
		}
	}
	sess.replyLocked("unsubscribe", "")
}
