package collector

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The delimited protobuf format (what a Prometheus with native histograms
// asks for), written from a snapshot as the text formats are: the bytes
// proto.Marshal makes of the client_model families MetricFamilies builds
// (fields in number order, every field those set, proto3's Timestamp
// without its zero fields), each family after its length.
// TestWriteToIsExpfmtOfTheRegistry holds the two to the same bytes.
// Building the objects first cost twice the encoding itself, and their
// memory.

// Field numbers of io.prometheus.client's messages.
const (
	pbFamilyName, pbFamilyHelp, pbFamilyType, pbFamilyMetric         = 1, 2, 3, 4
	pbMetricLabel, pbMetricGauge, pbMetricCounter, pbMetricHistogram = 1, 2, 3, 7
	pbLabelName, pbLabelValue                                        = 1, 2
	pbValue                                                          = 1 // of a Gauge or Counter
	pbHistCount, pbHistSum, pbHistBucket                             = 1, 2, 3
	pbHistSchema, pbHistZeroThreshold, pbHistZeroCount               = 5, 6, 7
	pbHistPositiveSpan, pbHistPositiveDelta, pbHistCreated           = 12, 13, 15
	pbBucketCount, pbBucketBound                                     = 1, 2
	pbSpanOffset, pbSpanLength                                       = 1, 2
	pbSeconds, pbNanos                                               = 1, 2
)

// protoWriter holds the buffers a family is built in: its length comes
// before it, and each metric's before the metric.
type protoWriter struct {
	family, metric, hist []byte
}

// family writes one family, delimited.
func (t *textWriter) protoFamily(f *family, r *rows) {
	p := &t.proto
	ft := &texts[f.idx]
	b := p.family[:0]
	b = protowire.AppendTag(b, pbFamilyName, protowire.BytesType)
	b = protowire.AppendString(b, f.name)
	b = protowire.AppendTag(b, pbFamilyHelp, protowire.BytesType)
	b = protowire.AppendString(b, f.help)
	b = protowire.AppendTag(b, pbFamilyType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(ft.dtoType))
	k := len(f.ids)
	for _, i := range r.order {
		m := p.metric[:0]
		for j, v := range r.labels[int(i)*k : int(i)*k+k] {
			name := f.names[f.order[j]]
			m = protowire.AppendTag(m, pbMetricLabel, protowire.BytesType)
			m = protowire.AppendVarint(m, uint64(protowire.SizeTag(pbLabelName)+protowire.SizeBytes(len(name))+
				protowire.SizeTag(pbLabelValue)+protowire.SizeBytes(len(v))))
			m = protowire.AppendTag(m, pbLabelName, protowire.BytesType)
			m = protowire.AppendString(m, name)
			m = protowire.AppendTag(m, pbLabelValue, protowire.BytesType)
			m = protowire.AppendString(m, v)
		}
		switch f.kind {
		case gauge, counter:
			field := protowire.Number(pbMetricGauge)
			if f.kind == counter {
				field = pbMetricCounter
			}
			m = protowire.AppendTag(m, field, protowire.BytesType)
			m = protowire.AppendVarint(m, uint64(protowire.SizeTag(pbValue)+protowire.SizeFixed64()))
			m = protowire.AppendTag(m, pbValue, protowire.Fixed64Type)
			m = protowire.AppendFixed64(m, math.Float64bits(r.vals[i]))
		case histogram:
			p.hist = appendHist(p.hist[:0], &r.hists[i], f.buckets)
			m = protowire.AppendTag(m, pbMetricHistogram, protowire.BytesType)
			m = protowire.AppendBytes(m, p.hist)
		}
		b = protowire.AppendTag(b, pbFamilyMetric, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
		p.metric = m
	}
	t.b = protowire.AppendBytes(t.b, b)
	p.family = b
}

// appendHist appends a histogram's fields as dtoHistSlabs.write sets
// them.
func appendHist(b []byte, h *histCopy, bounds []float64) []byte {
	b = protowire.AppendTag(b, pbHistCount, protowire.VarintType)
	b = protowire.AppendVarint(b, h.count)
	b = protowire.AppendTag(b, pbHistSum, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(h.sum))
	var cum uint64
	for i, bound := range bounds {
		cum += h.classic[i]
		b = protowire.AppendTag(b, pbHistBucket, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(pbBucketCount)+protowire.SizeVarint(cum)+
			protowire.SizeTag(pbBucketBound)+protowire.SizeFixed64()))
		b = protowire.AppendTag(b, pbBucketCount, protowire.VarintType)
		b = protowire.AppendVarint(b, cum)
		b = protowire.AppendTag(b, pbBucketBound, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(bound))
	}
	b = protowire.AppendTag(b, pbHistSchema, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(h.schema)))
	b = protowire.AppendTag(b, pbHistZeroThreshold, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(nativeZeroThreshold))
	b = protowire.AppendTag(b, pbHistZeroCount, protowire.VarintType)
	b = protowire.AppendVarint(b, h.zero)
	if len(h.keys) > 0 {
		b = appendNative(b, h)
	}
	var ts []byte
	if s := h.created.Unix(); s != 0 {
		ts = protowire.AppendTag(ts, pbSeconds, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(s))
	}
	if n := h.created.Nanosecond(); n != 0 {
		ts = protowire.AppendTag(ts, pbNanos, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(n))
	}
	b = protowire.AppendTag(b, pbHistCreated, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}

// appendNative appends the spans and deltas of the native buckets, gaps
// of up to two buckets filled, as dtoHistSlabs.write makes them.
func appendNative(b []byte, h *histCopy) []byte {
	span := func(b []byte, offset int32, length uint32) []byte {
		b = protowire.AppendTag(b, pbHistPositiveSpan, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(pbSpanOffset)+protowire.SizeVarint(protowire.EncodeZigZag(int64(offset)))+
			protowire.SizeTag(pbSpanLength)+protowire.SizeVarint(uint64(length))))
		b = protowire.AppendTag(b, pbSpanOffset, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(offset)))
		b = protowire.AppendTag(b, pbSpanLength, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(length))
	}
	// Spans first (field 12), then the deltas (13).
	var offset int32
	var length uint32
	for i, k := range h.keys {
		switch {
		case i == 0:
			offset, length = k, 1
		case k-h.keys[i-1] > 3:
			b = span(b, offset, length)
			offset, length = k-h.keys[i-1]-1, 1
		default:
			length += uint32(k - h.keys[i-1])
		}
	}
	b = span(b, offset, length)
	delta := func(b []byte, d int64) []byte {
		b = protowire.AppendTag(b, pbHistPositiveDelta, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeZigZag(d))
	}
	var prev uint64
	for i, k := range h.keys {
		if i > 0 && k-h.keys[i-1] <= 3 {
			for range k - h.keys[i-1] - 1 {
				b = delta(b, -int64(prev))
				prev = 0
			}
		}
		b = delta(b, int64(h.counts[i])-int64(prev))
		prev = h.counts[i]
	}
	return b
}
