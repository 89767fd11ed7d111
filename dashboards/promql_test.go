package dashboards

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
)

// A small PromQL scanner, enough to find the vector selectors and range
// durations in the dashboards' queries. It is not a parser: it relies on
// the expression being valid, which the end-to-end test proves on a real
// Prometheus.

type selector struct {
	metric   string
	matchers map[string]string // label -> operator and quoted value, e.g. `=~"$queue"`
}

// keywords are identifiers that are never metric names.
var keywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

// labelLists are keywords followed by a parenthesised list of label names.
var labelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// scan returns the vector selectors and the contents of every [...] range.
func scan(expr string) (sels []selector, ranges []string, err error) {
	i := 0
	skipSpace := func() {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
	}
	readString := func() (string, error) {
		q, start := expr[i], i
		for i++; i < len(expr); i++ {
			switch {
			case expr[i] == '\\' && q != '`':
				i++
			case expr[i] == q:
				i++
				return expr[start:i], nil
			}
		}
		return "", fmt.Errorf("unterminated string at %d", start)
	}
	// readMatchers reads {label op "value", ...} from the brace at i.
	readMatchers := func() (map[string]string, error) {
		ms := map[string]string{}
		for i++; ; {
			skipSpace()
			if i < len(expr) && expr[i] == '}' {
				i++
				return ms, nil
			}
			ls := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			label := expr[ls:i]
			skipSpace()
			opStart := i
			for i < len(expr) && strings.ContainsRune("=!~", rune(expr[i])) {
				i++
			}
			op := expr[opStart:i]
			skipSpace()
			if label == "" || op == "" || i >= len(expr) || !strings.ContainsRune("\"'`", rune(expr[i])) {
				return nil, fmt.Errorf("bad matcher at %d", ls)
			}
			v, err := readString()
			if err != nil {
				return nil, err
			}
			ms[label] = op + v
			skipSpace()
			if i < len(expr) && expr[i] == ',' {
				i++
			}
		}
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(c)):
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			if _, err := readString(); err != nil {
				return nil, nil, err
			}
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("unterminated range at %d", i)
			}
			ranges = append(ranges, expr[i+1:i+end])
			i += end + 1
		case c == '{':
			// A selector naming its metrics in __name__, as a variable
			// listing the tenants of several metrics does: one selector per
			// name, so each is checked like a named one.
			start := i
			ms, err := readMatchers()
			if err != nil {
				return nil, nil, err
			}
			names, err := metricNames(ms["__name__"])
			if err != nil {
				return nil, nil, fmt.Errorf("selector at %d: %v", start, err)
			}
			delete(ms, "__name__")
			for _, n := range names {
				sels = append(sels, selector{metric: n, matchers: maps.Clone(ms)})
			}
		case '0' <= c && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			skipSpace()
			next := byte(0)
			if i < len(expr) {
				next = expr[i]
			}
			switch {
			case labelLists[word] && next == '(':
				end := strings.IndexByte(expr[i:], ')')
				if end < 0 {
					return nil, nil, fmt.Errorf("unterminated label list at %d", i)
				}
				i += end + 1
			case keywords[word] || next == '(':
				// An operator, an aggregation or a function call.
			default:
				s := selector{metric: word, matchers: map[string]string{}}
				if next == '{' {
					if s.matchers, err = readMatchers(); err != nil {
						return nil, nil, fmt.Errorf("selector %s: %v", word, err)
					}
				}
				sels = append(sels, s)
			}
		default:
			i++ // operators and parentheses
		}
	}
	return sels, ranges, nil
}

// nameList is a __name__ matcher listing metric names: ="a" or =~"a|b".
var nameList = regexp.MustCompile(`^=~?"([a-zA-Z_:][a-zA-Z0-9_:]*(?:\|[a-zA-Z_:][a-zA-Z0-9_:]*)*)"$`)

// metricNames returns the names a __name__ matcher lists. A pattern, a
// negation or no matcher at all cannot be checked against the catalogue.
func metricNames(m string) ([]string, error) {
	list := nameList.FindStringSubmatch(m)
	if list == nil {
		return nil, fmt.Errorf("no metric name, nor a __name__ matcher listing names")
	}
	return strings.Split(list[1], "|"), nil
}
