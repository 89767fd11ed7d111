// Package secret keeps a secret (the PBX password) out of text bound for
// the outside: logs at every level, errors, check's report, recordings,
// label values. A PBX may send the password back in any text (an error
// reply, a close frame's reason, the echo of the auth command), escaped as
// JSON or quoted, so a Redactor removes each secret in every form it may
// take there.
package secret

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Redacted replaces a secret in text.
const Redacted = "<redacted>"

// Redactor removes secrets from text. A nil *Redactor removes nothing.
type Redactor struct{ forms []string } // longest first

// NewRedactor removes the given secrets (empty ones are ignored).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		var plain strings.Builder
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		html, _ := json.Marshal(s)
		for _, f := range []string{s, inner(plain.String()), inner(string(html)), inner(strconv.Quote(s)),
			inner(strconv.QuoteToASCII(s)), url.QueryEscape(s), url.PathEscape(s)} {
			if f != "" && !slices.Contains(r.forms, f) {
				r.forms = append(r.forms, f)
			}
		}
	}
	slices.SortFunc(r.forms, func(a, b string) int { return len(b) - len(a) })
	return r
}

// inner is a quoted string without its quotes (and a newline after them).
func inner(q string) string {
	q = strings.TrimSuffix(q, "\n")
	return q[1 : len(q)-1]
}

// String is s with every secret replaced by Redacted.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Redacted)
		}
	}
	return s
}

// Handler wraps h so that no message or attribute it writes holds a
// secret: strings, errors and anything formatted are redacted first.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if r == nil || len(r.forms) == 0 {
		return h
	}
	return &redactHandler{h: h, r: r}
}

type redactHandler struct {
	h slog.Handler
	r *Redactor
}

func (x *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return x.h.Enabled(ctx, l) }

func (x *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, x.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(x.r.attr(a))
		return true
	})
	return x.h.Handle(ctx, out)
}

func (x *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = x.r.attr(a)
	}
	return &redactHandler{h: x.h.WithAttrs(out), r: x.r}
}

func (x *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: x.h.WithGroup(name), r: x.r}
}

func (r *Redactor) attr(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(r.String(a.Value.String()))
	case slog.KindGroup:
		g := slices.Clone(a.Value.Group())
		for i := range g {
			g[i] = r.attr(g[i])
		}
		a.Value = slog.GroupValue(g...)
	case slog.KindAny:
		// Errors, Stringers and slices: as the handler would print them.
		if s := fmt.Sprint(a.Value.Any()); r.String(s) != s {
			a.Value = slog.StringValue(r.String(s))
		}
	}
	return a
}
