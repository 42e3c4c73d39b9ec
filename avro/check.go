package avro

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	hamba "github.com/hamba/avro/v2"
)

// The scanner walks an Avro binary body against its writer schema before
// hamba decodes it. hamba trusts length prefixes (it allocates what they ask
// for, up to a configured cap) and treats running out of bytes at a value
// boundary as success; the scanner checks every prefix against the bytes
// that remain, every varint, union and enum index, and that the body is
// consumed exactly. It allocates nothing unless it fails.

const (
	// maxDepth bounds the nesting of values (recursive schemas from a
	// registry); each level consumes at least one byte, so this only stops
	// pathological payloads from using much stack.
	maxDepth = 128
	// maxZeroSizeItems bounds a block count of items that take no bytes
	// (arrays of null and the like), which no length check can bound.
	maxZeroSizeItems = 1 << 16
)

type scanner struct {
	b   []byte
	off int
	// max is the largest record size: a prefix asking for more than fits in
	// it is ErrOversize; one asking for more than remains but no more than
	// max is ErrTruncated.
	max int
}

// scanBody checks that b is exactly one value of schema s; max is the
// largest record size.
func scanBody(s *node, b []byte, max int) *DecodeError {
	sc := scanner{b: b, max: max}
	if err := sc.value(s, 0); err != nil {
		return err
	}
	if sc.off != len(b) {
		return &DecodeError{Offset: sc.off, Kind: ErrTrailingBytes, Detail: fmt.Sprintf("%d bytes after the record", len(b)-sc.off)}
	}
	return nil
}

func (sc *scanner) fail(kind error, detail string) *DecodeError {
	return &DecodeError{Offset: sc.off, Kind: kind, Detail: detail}
}

func (sc *scanner) remaining() int { return len(sc.b) - sc.off }

// short reports a prefix (at sc.off) asking for n bytes when fewer remain:
// truncated if a record could hold n bytes, oversize if not.
func (sc *scanner) short(n int64, what string) *DecodeError {
	if n > int64(sc.max) {
		return sc.fail(ErrOversize, fmt.Sprintf("%s %d, max record size %d", what, n, sc.max))
	}
	return sc.fail(ErrTruncated, fmt.Sprintf("%s %d, %d bytes remain", what, n, sc.remaining()))
}

// varint reads a zig-zag varint of at most maxBytes bytes.
func (sc *scanner) varint(maxBytes int) (int64, *DecodeError) {
	var u uint64
	for i := 0; i < maxBytes; i++ {
		if sc.off >= len(sc.b) {
			return 0, sc.fail(ErrTruncated, "inside a varint")
		}
		c := sc.b[sc.off]
		if i == 9 && c > 1 {
			return 0, sc.fail(ErrInvalidValue, "varint overflows 64 bits")
		}
		sc.off++
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, sc.fail(ErrInvalidValue, "varint too long")
}

func (sc *scanner) long() (int64, *DecodeError) { return sc.varint(10) }

func (sc *scanner) int() (int64, *DecodeError) {
	start := sc.off
	v, err := sc.varint(5)
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		sc.off = start
		return 0, sc.fail(ErrInvalidValue, "int out of range")
	}
	return v, nil
}

func (sc *scanner) skip(n int) *DecodeError {
	if n > sc.remaining() {
		return sc.fail(ErrTruncated, fmt.Sprintf("need %d bytes, have %d", n, sc.remaining()))
	}
	sc.off += n
	return nil
}

// length reads a bytes/string length prefix and checks it against the
// bytes that remain.
func (sc *scanner) length() (int, *DecodeError) {
	start := sc.off
	n, err := sc.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		sc.off = start
		return 0, sc.fail(ErrInvalidValue, "negative length")
	}
	if n > int64(sc.remaining()) {
		sc.off = start
		return 0, sc.short(n, "length")
	}
	return int(n), nil
}

// node is a writer schema compiled for the scanner: a small tree (a graph,
// for recursive schemas) walked with a switch on kind instead of interface
// type switches and method calls.
type node struct {
	kind    nodeKind
	size    int     // kFixed: byte count; kEnum/kUnion: symbol/branch count
	fields  []*node // kRecord: field types; kUnion: branches
	item    *node   // kArray: items; kMap: values
	minItem int     // kArray, kMap: lower bound of one item's size (map: with its key)
}

type nodeKind uint8

const (
	kNull nodeKind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kString
	kBytes
	kFixed
	kEnum
	kRecord
	kUnion
	kArray
	kMap
)

// compile turns a schema into a scanner node. Records are memoised, so a
// recursive schema becomes a cyclic graph.
func compile(s hamba.Schema) (*node, error) {
	return compileNode(s, map[string]*node{})
}

func compileNode(s hamba.Schema, records map[string]*node) (*node, error) {
	switch s := s.(type) {
	case *hamba.NullSchema:
		return &node{kind: kNull}, nil
	case *hamba.PrimitiveSchema:
		switch s.Type() {
		case hamba.Null:
			return &node{kind: kNull}, nil
		case hamba.Boolean:
			return &node{kind: kBoolean}, nil
		case hamba.Int:
			return &node{kind: kInt}, nil
		case hamba.Long:
			return &node{kind: kLong}, nil
		case hamba.Float:
			return &node{kind: kFloat}, nil
		case hamba.Double:
			return &node{kind: kDouble}, nil
		case hamba.String:
			return &node{kind: kString}, nil
		case hamba.Bytes:
			return &node{kind: kBytes}, nil
		}
	case *hamba.RecordSchema:
		if n := records[s.FullName()]; n != nil {
			return n, nil
		}
		n := &node{kind: kRecord}
		records[s.FullName()] = n
		for _, f := range s.Fields() {
			fn, err := compileNode(f.Type(), records)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, fn)
		}
		return n, nil
	case *hamba.RefSchema:
		return compileNode(s.Schema(), records)
	case *hamba.EnumSchema:
		return &node{kind: kEnum, size: len(s.Symbols())}, nil
	case *hamba.FixedSchema:
		return &node{kind: kFixed, size: s.Size()}, nil
	case *hamba.UnionSchema:
		n := &node{kind: kUnion, size: len(s.Types())}
		for _, t := range s.Types() {
			tn, err := compileNode(t, records)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, tn)
		}
		return n, nil
	case *hamba.ArraySchema:
		item, err := compileNode(s.Items(), records)
		if err != nil {
			return nil, err
		}
		return &node{kind: kArray, item: item, minItem: minSize(s.Items(), 0)}, nil
	case *hamba.MapSchema:
		item, err := compileNode(s.Values(), records)
		if err != nil {
			return nil, err
		}
		return &node{kind: kMap, item: item, minItem: 1 + minSize(s.Values(), 0)}, nil
	}
	return nil, fmt.Errorf("avro: unsupported schema type %s", s.Type())
}

func (sc *scanner) value(n *node, depth int) *DecodeError {
	if depth > maxDepth {
		return sc.fail(ErrInvalidValue, "values nested too deep")
	}
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		if sc.off >= len(sc.b) {
			return sc.fail(ErrTruncated, "inside a boolean")
		}
		if sc.b[sc.off] > 1 {
			return sc.fail(ErrInvalidValue, "boolean is neither 0 nor 1")
		}
		sc.off++
		return nil
	case kInt:
		_, err := sc.int()
		return err
	case kLong:
		_, err := sc.long()
		return err
	case kFloat:
		return sc.skip(4)
	case kDouble:
		return sc.skip(8)
	case kString:
		l, err := sc.length()
		if err != nil {
			return err
		}
		if !validUTF8(sc.b[sc.off : sc.off+l]) {
			return sc.fail(ErrInvalidValue, "string is not UTF-8")
		}
		sc.off += l
		return nil
	case kBytes:
		l, err := sc.length()
		if err != nil {
			return err
		}
		sc.off += l
		return nil
	case kFixed:
		return sc.skip(n.size)
	case kRecord:
		for _, f := range n.fields {
			if err := sc.value(f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case kEnum, kUnion:
		start := sc.off
		i, err := sc.int()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(n.size) {
			sc.off = start
			return sc.fail(ErrInvalidValue, fmt.Sprintf("enum or union index %d out of range", i))
		}
		if n.kind == kUnion {
			return sc.value(n.fields[i], depth+1)
		}
		return nil
	case kArray, kMap:
		return sc.blocks(n, depth)
	}
	return sc.fail(ErrInvalidValue, "unsupported schema node")
}

var stringNode = &node{kind: kString}

// blocks scans the blocks of an array or a map.
func (sc *scanner) blocks(n *node, depth int) *DecodeError {
	minItem := n.minItem
	for {
		start := sc.off
		count, err := sc.long()
		if err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		size := int64(-1)
		if count < 0 {
			if count == math.MinInt64 {
				sc.off = start
				return sc.fail(ErrInvalidValue, "invalid block count")
			}
			count = -count
			sizeAt := sc.off
			if size, err = sc.long(); err != nil {
				return err
			}
			if size < 0 {
				sc.off = sizeAt
				return sc.fail(ErrInvalidValue, "negative block size")
			}
			if size > int64(sc.remaining()) {
				sc.off = sizeAt
				return sc.short(size, "block size")
			}
		}
		if minItem == 0 && count > maxZeroSizeItems {
			sc.off = start
			return sc.fail(ErrOversize, fmt.Sprintf("block of %d empty items", count))
		}
		if minItem > 0 && count > int64(sc.remaining()/minItem) {
			sc.off = start
			if count > int64(sc.max/minItem) {
				return sc.fail(ErrOversize, fmt.Sprintf("block of %d items of at least %d bytes", count, minItem))
			}
			return sc.fail(ErrTruncated, fmt.Sprintf("block of %d items of at least %d bytes, %d bytes remain", count, minItem, sc.remaining()))
		}
		itemsAt := sc.off
		for range count {
			if n.kind == kMap {
				if err := sc.value(stringNode, depth+1); err != nil {
					return err
				}
			}
			if err := sc.value(n.item, depth+1); err != nil {
				return err
			}
		}
		if size >= 0 && int64(sc.off-itemsAt) != size {
			return sc.fail(ErrInvalidValue, fmt.Sprintf("block size %d, items take %d bytes", size, sc.off-itemsAt))
		}
	}
}

// minSize is a lower bound of the encoded size of a value of s.
func minSize(s hamba.Schema, depth int) int {
	if depth > 8 {
		return 0
	}
	switch s := s.(type) {
	case *hamba.NullSchema:
		return 0
	case *hamba.PrimitiveSchema:
		switch s.Type() {
		case hamba.Null:
			return 0
		case hamba.Float:
			return 4
		case hamba.Double:
			return 8
		}
		return 1
	case *hamba.RecordSchema:
		n := 0
		for _, f := range s.Fields() {
			n += minSize(f.Type(), depth+1)
		}
		return n
	case *hamba.FixedSchema:
		return s.Size()
	case *hamba.RefSchema:
		return 0 // possibly recursive; 0 is a safe lower bound
	}
	return 1 // enum, union, array, map: at least one varint byte
}

// validUTF8 is utf8.Valid with a cheaper start for the short ASCII strings
// that IDs and state names are: it looks for a byte with the high bit set
// eight, then four, then one byte at a time, in line, and leaves the rest
// to utf8.Valid from there.
func validUTF8(b []byte) bool {
	i := 0
	for ; len(b)-i >= 8; i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			return utf8.Valid(b[i:])
		}
	}
	if len(b)-i >= 4 {
		if binary.LittleEndian.Uint32(b[i:])&0x80808080 != 0 {
			return utf8.Valid(b[i:])
		}
		i += 4
	}
	for ; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return utf8.Valid(b[i:])
		}
	}
	return true
}
