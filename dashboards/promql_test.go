package dashboards

import (
	"fmt"
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
			// A selector without a metric name: not used by these dashboards.
			return nil, nil, fmt.Errorf("selector without a metric name at %d", i)
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
					i++
					for {
						skipSpace()
						if i < len(expr) && expr[i] == '}' {
							i++
							break
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
							return nil, nil, fmt.Errorf("bad matcher in selector %s at %d", word, ls)
						}
						v, err := readString()
						if err != nil {
							return nil, nil, err
						}
						s.matchers[label] = op + v
						skipSpace()
						if i < len(expr) && expr[i] == ',' {
							i++
						}
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
