package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portsip-exporter/portsip_exporter/collector"
	"github.com/portsip-exporter/portsip_exporter/internal/secret"
	"github.com/portsip-exporter/portsip_exporter/wsi"
)

type checkCmd struct {
	WSI    wsiConfig     `embed:"" prefix:"wsi."`
	Listen time.Duration `name:"check.listen" default:"5s" help:"How long to listen for events after subscribing."`
	// What check received, to send along with its report.
	Capture captureFlags `embed:"" prefix:"record."`
}

func (c *checkCmd) Validate() error {
	if c.Listen < 0 {
		return invalid("--check.listen: must not be negative, got %s", c.Listen)
	}
	return nil
}

// run makes one attempt and writes a report for a person to stdout. It
// returns 0 when the exporter would work with these settings, 1 otherwise.
func (c *checkCmd) run(ctx context.Context, logger *slog.Logger, w io.Writer) int {
	cfg := c.WSI.clientConfig()
	cfg.Logger = logger.With("component", "wsi")
	var out bytes.Buffer
	code := c.check(ctx, cfg, &out)
	// Whatever the PBX sent back, the password goes no further.
	_, _ = io.WriteString(w, secret.NewRedactor(cfg.Password).String(out.String()))
	return code
}

func (c *checkCmd) check(ctx context.Context, cfg wsi.Config, w io.Writer) int {
	fmt.Fprintf(w, "PBX:    %s\n", cfg.URL)
	fmt.Fprintf(w, "Login:  %s\n", describeLogin(cfg))
	if cfg.TLS.InsecureSkipVerify {
		fmt.Fprintln(w, "WARNING: certificate verification is off (--wsi.tls.insecure-skip-verify): anyone on the path can read the password.")
	}
	fmt.Fprintln(w)

	var rec *recorder
	if c.Capture.File != "" {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		var err error
		if rec, err = newRecorder(c.Capture, &cfg, "check", stop); err != nil {
			fmt.Fprintf(w, "FAILED: %v\n", err)
			return exitFailed
		}
	}
	client, err := wsi.New(cfg)
	if err != nil {
		if rec != nil {
			rec.close()
		}
		fmt.Fprintf(w, "FAILED: %v\n", err)
		return exitFailed
	}
	// The collector counts the quirks and ignored events as the exporter
	// would: check reports what it counted.
	col := collector.New(collector.Config{Redactor: client.Redactor()}, client)
	if rec != nil {
		rec.client = client
	}
	res, err := client.Check(ctx, c.Listen, col)
	if rec != nil {
		if err := rec.close(); err != nil {
			fmt.Fprintf(w, "FAILED: writing %s: %v\n", c.Capture.File, err)
			return exitFailed
		}
		s := rec.w.Summary()
		defer fmt.Fprintf(w, "\nRecorded %d frames (%s) to %s: replay it with %s replay %s --print\n",
			s.Frames, byteSize(s.Bytes), c.Capture.File, programName, c.Capture.File)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(w, "Interrupted.")
		return exitFailed
	}
	var notes []string
	if res != nil && err == nil {
		notes = checkNotes(res, col, c.Listen)
	}
	return writeCheckReport(w, cfg, c.Listen, res, err, notes)
}

// checkNotes are what a first contact should know beyond the topics: a
// configured tenant that sent nothing (a mistyped id looks exactly like
// that), the quirks seen, the events ignored.
func checkNotes(res *wsi.CheckResult, col prometheus.Collector, listen time.Duration) []string {
	var notes []string
	// These push a snapshot of every queue or extension on subscribe.
	snapshots := false
	for _, t := range []string{wsi.TopicQueueEvents, wsi.TopicQueueManagementEvents, wsi.TopicExtensionEvents} {
		snapshots = snapshots || res.Topics[t].Accepted || res.Topics["global_"+t].Accepted
	}
	for _, t := range slices.Sorted(maps.Keys(res.Tenants)) {
		if snapshots && res.Tenants[t] == 0 {
			notes = append(notes, fmt.Sprintf("WARNING: nothing arrived for tenant %s within %s: check the id in --wsi.tenant (the tenant_id of the PBX's events); a tenant with no queues, extensions or calls looks the same.", t, listen))
		}
	}
	reg := prometheus.NewRegistry()
	if reg.Register(col) != nil {
		return notes
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		var seen []string
		for _, m := range mf.GetMetric() {
			if n := m.GetCounter().GetValue(); n > 0 && len(m.GetLabel()) > 0 {
				seen = append(seen, fmt.Sprintf("%s x%g", m.GetLabel()[0].GetValue(), n))
			}
		}
		switch {
		case len(seen) == 0:
		case mf.GetName() == "portsip_wsi_quirks_total":
			notes = append(notes, "Quirks: "+strings.Join(seen, ", ")+" (how this PBX reads the vendor's unclear spots; see the README's quirks)")
		case mf.GetName() == "portsip_wsi_events_ignored_total":
			notes = append(notes, "Ignored: "+strings.Join(seen, ", ")+" (events not applied; see portsip_wsi_events_ignored_total in the README)")
		}
	}
	return notes
}

func describeLogin(cfg wsi.Config) string {
	switch {
	case cfg.Domain == "":
		return fmt.Sprintf("system administrator %q; global topics for tenant(s) %s", cfg.Username, strings.Join(cfg.Tenants, ", "))
	case cfg.ExtensionNumber != "":
		return fmt.Sprintf("extension %s in domain %s; tenant topics", cfg.ExtensionNumber, cfg.Domain)
	default:
		return fmt.Sprintf("user %q in domain %s; tenant topics", cfg.Username, cfg.Domain)
	}
}

// writeCheckReport explains the outcome of a Check: what worked, what did
// not and what to change.
func writeCheckReport(w io.Writer, cfg wsi.Config, listen time.Duration, res *wsi.CheckResult, err error, notes []string) int {
	var we *wsi.Error
	if err != nil && !errors.As(err, &we) {
		fmt.Fprintf(w, "FAILED: %s\n", oneLine(err.Error()))
		return exitFailed
	}

	// Steps the attempt got through, so the reader sees where it stopped.
	steps := 0
	switch {
	case we == nil || we.Stage == wsi.StageSubscribe:
		fmt.Fprintln(w, "ok      connected")
		fmt.Fprintln(w, "ok      authenticated")
		steps = 2
	case we.Stage == wsi.StageAuth:
		fmt.Fprintln(w, "ok      connected")
		steps = 1
	}
	if res != nil && len(res.Topics) > 0 {
		writeTopics(w, res, listen)
		steps++
	}
	if steps > 0 {
		fmt.Fprintln(w)
	}

	if we != nil {
		class, hints := classify(cfg, we)
		fmt.Fprintf(w, "FAILED (%s): %s\n", class, failureText(we))
		writeHints(w, hints)
		return exitFailed
	}
	if res == nil || len(res.Topics) == 0 {
		fmt.Fprintln(w, "FAILED (protocol): the client subscribed to no topic")
		return exitFailed
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}

	var refused []string
	for topic, t := range res.Topics {
		if !t.Accepted {
			refused = append(refused, topic)
		}
	}
	sort.Strings(refused)
	if len(refused) > 0 {
		fmt.Fprintf(w, "OK, with gaps: %s refused; the metrics from %s stay empty.\n",
			strings.Join(refused, ", "), plural(len(refused), "that topic", "those topics"))
		writeHints(w, permissionHints(cfg))
		return exitOK
	}
	fmt.Fprintln(w, "OK: the exporter can run with these settings.")
	return exitOK
}

func writeHints(w io.Writer, hints []string) {
	for _, h := range hints {
		fmt.Fprintf(w, "  - %s\n", h)
	}
}

func writeTopics(w io.Writer, res *wsi.CheckResult, listen time.Duration) {
	topics := make([]string, 0, len(res.Topics))
	for t := range res.Topics {
		topics = append(topics, t)
	}
	sort.Strings(topics)

	fmt.Fprintln(w, "ok      subscribed")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  TOPIC\tSUBSCRIPTION\tEVENTS IN THE FIRST %s\n", listen)
	for _, topic := range topics {
		t := res.Topics[topic]
		var status string
		switch {
		case !t.Accepted && t.Error != "":
			status = "refused: " + oneLine(t.Error)
		case !t.Accepted:
			status = "refused"
		case !t.Replied:
			status = "no reply (assumed accepted)"
		default:
			status = "accepted"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", topic, status, eventSummary(t))
	}
	if len(res.Other) > 0 {
		fmt.Fprintf(tw, "  (no subscribed topic)\t\t%s\n", eventSummary(wsi.TopicResult{Accepted: true, Events: res.Other}))
	}
	tw.Flush()
}

func eventSummary(t wsi.TopicResult) string {
	if !t.Accepted {
		return "-"
	}
	if len(t.Events) == 0 {
		return "none (normal on a quiet PBX)"
	}
	types := make([]string, 0, len(t.Events))
	for typ := range t.Events {
		types = append(types, typ)
	}
	sort.Strings(types)
	for i, typ := range types {
		types[i] = fmt.Sprintf("%s x%d", typ, t.Events[typ])
	}
	return strings.Join(types, ", ")
}

// classify sorts a failed attempt into what the user has to fix, with
// what to try, by the kind wsi gave the failure where it happened.
func classify(cfg wsi.Config, e *wsi.Error) (class string, hints []string) {
	host := hostOf(cfg.URL)
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	plain := strings.HasPrefix(cfg.URL, "ws://")
	switch e.Kind {
	case wsi.KindDNS:
		return "unreachable", []string{"The host name " + hostname + " does not resolve: check --wsi.url."}
	case wsi.KindUnreachable:
		return "unreachable", []string{
			"Check the host and port in --wsi.url (PBX v22 and later: wss://<pbx>:8887/wsi).",
			"Check that a firewall lets this host reach " + host + ".",
		}
	case wsi.KindNoAnswer:
		if e.Stage == wsi.StageAuth {
			return "no answer", []string{"The PBX accepted the WebSocket but never answered the login: check that " + host + " is the PBX's WSI endpoint, and look at the PBX's logs."}
		}
		// Connected, then silence. Telling the user to check the
		// firewall would send them the wrong way.
		hints = []string{"Something at " + host + " accepted the connection but did not complete the WebSocket handshake: check the port (PBX v22 and later: wss://<pbx>:8887/wsi)."}
		if plain {
			hints = append(hints, "A TLS port can stay silent to plain ws://: try wss://.")
		}
		return "no answer", hints
	case wsi.KindTLS:
		var he x509.HostnameError
		var rhe tls.RecordHeaderError
		switch {
		case errors.As(e, &he):
			return "TLS", []string{"The certificate is for another name than " + hostname + ": connect by that name, or set --wsi.tls.server-name=<a name on the certificate>."}
		case errors.As(e, &rhe):
			return "TLS", []string{"The server at " + host + " does not speak TLS here: check the port (the PBX's WSI is wss://<pbx>:8887/wsi), or use ws:// if it really is plain."}
		}
		return "TLS", []string{
			"If the PBX uses a self-signed certificate or a private CA, pass that CA's certificate with --wsi.tls.ca-file=<file.pem>" +
				" (to see the chain the PBX sends: openssl s_client -connect " + host + " -showcerts).",
			"If the certificate names another host, set --wsi.tls.server-name=<a name on the certificate>.",
			"Only to try things out: --wsi.tls.insecure-skip-verify (the password is then exposed to anyone on the path).",
		}
	case wsi.KindNotWSI:
		hints = []string{"The server answered, but not with a WebSocket upgrade: check the path (PBX v22 and later: wss://<pbx>:8887/wsi)."}
		if plain {
			hints = append(hints, "The PBX speaks TLS on its WSI port: try wss:// instead of ws://.")
		}
		return "not a WSI endpoint", hints
	case wsi.KindAuth:
		hints = []string{
			"Check --wsi.username (or --wsi.extension-number) and the password (--wsi.password-file or " + passwordEnv + ").",
		}
		if cfg.Domain == "" {
			hints = append(hints, "Without --wsi.domain the user must be a system administrator; a tenant user needs --wsi.domain=<the tenant's SIP domain>.")
		} else {
			hints = append(hints, "--wsi.domain must be the tenant's SIP domain; a system administrator logs in without --wsi.domain.")
		}
		hints = append(hints, "The exporter waits at least a minute after each refused login, as PBXs lock accounts after repeated failures: fix this before starting it.")
		return "auth", hints
	case wsi.KindPermission:
		return "permission", permissionHints(cfg)
	}
	return "connection lost", []string{"The PBX closed the session (" + e.Stage + "); run again, and look at the PBX's logs."}
}

func failureText(e *wsi.Error) string {
	switch {
	case e.Kind == wsi.KindAuth && e.PBXError != "":
		return "the PBX refused the login: " + oneLine(e.PBXError)
	case e.Kind == wsi.KindPermission:
		return "the PBX refused every subscription (see the table above)"
	}
	// The class already says where it failed; the stage prefix ("dial: ")
	// would only repeat it.
	return oneLine(e.Err.Error())
}

func permissionHints(cfg wsi.Config) []string {
	if cfg.Domain == "" {
		return []string{
			"The global_* topics need a system administrator with view rights on the refused area (users, call queues, call reports) on the PBX.",
			"Some PBXs let a system administrator watch extension management only: then run one exporter per tenant as its administrator (--wsi.domain).",
			"Check --wsi.tenant: the PBX's numeric tenant ids, as in tenant_id of its events.",
		}
	}
	return []string{
		"cdr_events, queue_events and queue_management_events need a tenant administrator (or Analytics view rights); an extension user may watch only the queues it belongs to (--wsi.queue).",
	}
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// oneLine keeps a PBX's error text from breaking the report's layout.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
