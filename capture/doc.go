// Package capture is the file format of a recorded PBX session: what
// `portsip_exporter record` (and `check --record.file`) write and what
// `portsip_exporter replay` reads. It knows nothing about Prometheus; it
// turns wsi.Records into lines and back.
//
// A capture is JSON Lines (UTF-8, one JSON object per line, "\n" after
// each). Times ("t") are RFC 3339 with nanoseconds, in UTC. The kinds of
// line, told apart by the key that only they have:
//
//	{"capture":"portsip_exporter","version":1,"t":...,"source":"record","exporter":"1.2.3 (abc123)","mode":"global","tenants":["1"],"anonymized":true}
//	{"t":...,"frame":"<a text frame as received, verbatim>"}
//	{"t":...,"frame_base64":"<a text frame that is not valid UTF-8>"}
//	{"t":...,"session":"up","topics":{"global_queue_events":true,...}}
//	{"t":...,"session":"down","stage":"read","reason":"..."}
//	{"t":...,"skipped":"binary_frame","count":1}
//	{"t":...,"end":true,"frames":123,"bytes":45678}
//
// The header is always the first line. A frame line holds a text frame
// exactly as the PBX sent it (several objects, a byte-order mark and
// invalid JSON included), with its receive time; a frame that is not
// valid UTF-8, which a JSON string cannot hold verbatim, is written in
// base64 instead. Session lines are the boundaries the client saw: up
// when it was connected, authenticated and subscribed (each topic's
// outcome), down when an attempt ended (stage dial, auth, subscribe or
// read, and the reason, with the password removed; no stage when the
// recording was stopped). A skipped line counts frames the client read
// but cannot record (binary or oversized frames: their content is not
// kept). The end line closes a capture that was stopped cleanly; a
// capture without one was cut short (a kill or a crash), and is still
// readable up to its last whole line.
//
// Nothing the client sends is recorded, so neither the password nor a
// token is. The writer also removes the password from whatever the PBX
// sends back, and redacts the values of keys named like secrets
// (password, token, secret); see Options. With Options.Anonymize the
// names and numbers of people are replaced by pseudonyms (see
// AnonymizedKeys).
//
// Readers skip lines of kinds they do not know, so later versions may
// add kinds; a change that old readers would misread raises the version.
// ARCHITECTURE.md, "Record and replay", says how replay uses the live path.
package capture
