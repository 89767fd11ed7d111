package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/portsip-exporter/portsip_exporter/wsi"
)

type checkCmd struct {
	WSI    wsiConfig     `embed:"" prefix:"wsi."`
	Listen time.Duration `name:"check.listen" default:"5s" help:"How long to listen for events after subscribing."`
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

	fmt.Fprintf(w, "PBX:    %s\n", cfg.URL)
	fmt.Fprintf(w, "Login:  %s\n", describeLogin(cfg))
	if cfg.TLS.InsecureSkipVerify {
		fmt.Fprintln(w, "WARNING: certificate verification is off (--wsi.tls.insecure-skip-verify): anyone on the path can read the password.")
	}
	fmt.Fprintln(w)

	client, err := wsi.New(cfg)
	if err != nil {
		fmt.Fprintf(w, "FAILED: %v\n", err)
		return exitFailed
	}
	res, err := client.Check(ctx, c.Listen)
	if ctx.Err() != nil {
		fmt.Fprintln(w, "Interrupted.")
		return exitFailed
	}
	return writeCheckReport(w, cfg, c.Listen, res, err)
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
func writeCheckReport(w io.Writer, cfg wsi.Config, listen time.Duration, res *wsi.CheckResult, err error) int {
	var we *wsi.Error
	stage := ""
	if errors.As(err, &we) {
		stage = we.Stage
	}

	// Steps the attempt got through, so the reader sees where it stopped.
	steps := 0
	switch {
	case err == nil || stage == wsi.StageSubscribe:
		fmt.Fprintln(w, "ok      connected")
		fmt.Fprintln(w, "ok      authenticated")
		steps = 2
	case stage == wsi.StageAuth:
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

	if err != nil {
		class, hints := classify(cfg, err)
		fmt.Fprintf(w, "FAILED (%s): %s\n", class, failureText(class, err))
		writeHints(w, hints)
		return exitFailed
	}
	if res == nil || len(res.Topics) == 0 {
		fmt.Fprintln(w, "FAILED (protocol): the client subscribed to no topic")
		return exitFailed
	}

	var refused []string
	for topic, t := range res.Topics {
		if !t.Accepted {
			refused = append(refused, topic)
		}
	}
	sort.Strings(refused)
	if len(refused) == len(res.Topics) {
		fmt.Fprintln(w, "FAILED (permission): the PBX refused every subscription (see the table above)")
		writeHints(w, permissionHints(cfg))
		return exitFailed
	}
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
// what to try.
func classify(cfg wsi.Config, err error) (class string, hints []string) {
	var we *wsi.Error
	stage := wsi.StageDial
	if errors.As(err, &we) {
		stage = we.Stage
	}
	host := hostOf(cfg.URL)
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	switch stage {
	case wsi.StageAuth:
		hints = []string{
			"Check --wsi.username (or --wsi.extension-number) and the password (--wsi.password-file or " + passwordEnv + ").",
		}
		if cfg.Domain == "" {
			hints = append(hints, "Without --wsi.domain the user must be a system administrator; a tenant user needs --wsi.domain=<the tenant's SIP domain>.")
		} else {
			hints = append(hints, "--wsi.domain must be the tenant's SIP domain; a system administrator logs in without --wsi.domain.")
		}
		return "auth", hints
	case wsi.StageSubscribe:
		return "permission", permissionHints(cfg)
	case wsi.StageRead:
		return "connection lost", []string{"The PBX closed the session right after subscribing; run again, and look at the PBX's logs."}
	}

	if isTLSError(err) {
		var he x509.HostnameError
		var rhe tls.RecordHeaderError
		switch {
		case errors.As(err, &he) || strings.Contains(err.Error(), "certificate is valid for"):
			hints = append(hints, "The certificate is for another name than "+hostname+": connect by that name, or set --wsi.tls.server-name=<a name on the certificate>.")
		case errors.As(err, &rhe) || strings.Contains(err.Error(), "does not look like a TLS handshake"):
			hints = append(hints, "The server at "+host+" does not speak TLS here: check the port (the PBX's WSI is wss://<pbx>:8887/wsi), or use ws:// if it really is plain.")
		default:
			hints = append(hints,
				"If the PBX uses a self-signed certificate or a private CA, pass that CA's certificate with --wsi.tls.ca-file=<file.pem>"+
					" (to see the chain the PBX sends: openssl s_client -connect "+host+" -showcerts).",
				"If the certificate names another host, set --wsi.tls.server-name=<a name on the certificate>.",
				"Only to try things out: --wsi.tls.insecure-skip-verify (the password is then exposed to anyone on the path).")
		}
		return "TLS", hints
	}

	if strings.HasPrefix(cfg.URL, "ws://") && strings.Contains(err.Error(), "malformed HTTP response") {
		return "TLS", []string{"The server answered with TLS: use a wss:// URL."}
	}
	if errors.Is(err, websocket.ErrBadHandshake) || strings.Contains(err.Error(), "bad handshake") {
		hints = []string{"The server answered HTTP but refused the WebSocket upgrade: check the path (PBX v22 and later: wss://<pbx>:8887/wsi)."}
		if strings.HasPrefix(cfg.URL, "ws://") {
			hints = append(hints, "The PBX speaks TLS on its WSI port: try wss:// instead of ws://.")
		}
		return "not a WSI endpoint", hints
	}
	// Connected, then silence: a read or write failed after the dial.
	// Telling the user to check the firewall would send them the wrong way.
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op != "dial" {
		hints = []string{"Something at " + host + " accepted the connection but did not complete the WebSocket handshake: check the port (PBX v22 and later: wss://<pbx>:8887/wsi)."}
		if strings.HasPrefix(cfg.URL, "ws://") {
			hints = append(hints, "A TLS port can stay silent to plain ws://: try wss://.")
		}
		return "no answer", hints
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unreachable", []string{"The host name " + hostname + " does not resolve: check --wsi.url."}
	}
	return "unreachable", []string{
		"Check the host and port in --wsi.url (PBX v22 and later: wss://<pbx>:8887/wsi).",
		"Check that a firewall lets this host reach " + host + ".",
	}
}

func failureText(class string, err error) string {
	var we *wsi.Error
	if errors.As(err, &we) && we.PBXError != "" {
		switch class {
		case "auth":
			return "the PBX refused the login: " + oneLine(we.PBXError)
		case "permission":
			return "the PBX refused every subscription (see the table above)"
		}
	}
	if we != nil {
		// The class already says where it failed; the stage prefix
		// ("dial: ") would only repeat it.
		return oneLine(we.Err.Error())
	}
	return oneLine(err.Error())
}

func permissionHints(cfg wsi.Config) []string {
	if cfg.Domain == "" {
		return []string{
			"The global_* topics need a system administrator with view rights on the refused area (users, call queues, call reports) on the PBX.",
			"Check --wsi.tenant: the PBX's numeric tenant ids, as in tenant_id of its events.",
		}
	}
	return []string{
		"cdr_events, queue_events and queue_management_events need a tenant administrator (or Analytics view rights); an extension user may watch only the queues it belongs to (--wsi.queue).",
	}
}

func isTLSError(err error) bool {
	var (
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
	)
	if errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) ||
		errors.As(err, &cve) || errors.As(err, &rhe) || errors.As(err, &ae) {
		return true
	}
	// The client may have flattened the chain into text.
	s := err.Error()
	return strings.Contains(s, "x509:") || strings.Contains(s, "tls:")
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
