package avro

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	hamba "github.com/hamba/avro/v2"
	"github.com/modern-go/reflect2"

	"github.com/orderflow/orderflow/topology"
)

// Framing bytes.
const (
	soeMagic0      = 0xC3 // single-object encoding marker, first byte
	soeMagic1      = 0x01 // single-object encoding marker, second byte
	soeHeaderLen   = 10   // marker + 8-byte little-endian fingerprint
	confluentMagic = 0x00 // Confluent wire format magic byte
	confluentLen   = 5    // magic + 4-byte big-endian schema ID
)

// DefaultMaxRecordSize is the default of WithMaxRecordSize.
const DefaultMaxRecordSize = 1 << 20

// DefaultRegistryTimeout is the default of WithRegistryTimeout.
const DefaultRegistryTimeout = 10 * time.Second

// Option configures a Codec. The options are for programs that make their
// own codecs; orderflow's commands and processor take the defaults.
type Option func(*options)

type options struct {
	maxRecordSize   int
	writerSchemas   []string
	registryTimeout time.Duration
	lookupOnly      bool
}

// WithMaxRecordSize bounds the size of a framed record, in bytes, both
// ways: longer payloads are refused with ErrOversize before any decoding,
// and longer records are not encoded. Default DefaultMaxRecordSize (1 MiB,
// Kafka's default message size).
func WithMaxRecordSize(n int) Option { return func(o *options) { o.maxRecordSize = n } }

// WithWriterSchemas adds writer schema versions (Avro schema JSON texts)
// that single-object payloads may name, beyond the versions embedded in
// this package. Each must be a record this package knows (by full name)
// and resolvable to its reader schema, or the constructor fails with
// ErrIncompatible. Default: none.
func WithWriterSchemas(texts ...string) Option {
	return func(o *options) { o.writerSchemas = append(o.writerSchemas, texts...) }
}

// WithRegistryTimeout bounds each schema registry request of a Confluent
// codec: those NewConfluentCodec makes to register (or look up) the
// schemas, and those a decoder makes to fetch a writer schema it has not
// seen. Default DefaultRegistryTimeout (10s).
func WithRegistryTimeout(d time.Duration) Option { return func(o *options) { o.registryTimeout = d } }

// WithRegistryLookupOnly makes NewConfluentCodec register nothing: it finds
// each record's schema among the versions already registered under its
// subject, with GET requests only, and fails with ErrNotRegistered if it is
// not there. For registries whose ACLs refuse registration to the
// processor's credentials: the schemas are registered beforehand by
// someone who may.
func WithRegistryLookupOnly() Option { return func(o *options) { o.lookupOnly = true } }

// Codec encodes and decodes orderflow's records. It is safe for concurrent
// use; encoders append to the caller's buffer and reuse internal buffers,
// decoders reuse their readers.
//
// A Codec made by NewCodec writes single-object encoding. One made by
// NewConfluentCodec writes the Confluent wire format for every record type
// with a topic and single-object encoding for the others. Both read
// single-object payloads; only the latter reads Confluent payloads.
type Codec struct {
	api           hamba.API
	maxRecordSize int
	readers       sync.Pool // *hamba.Reader
	writers       sync.Pool // *hamba.Writer

	event  *record[orderEvent]
	status *record[StatusChange]
	reject *record[Rejection]
	state  *record[orderState]

	stateWireEnc hamba.ValEncoder // hamba's encoder of an OrderState (stateWire)

	reg *registry // nil without a schema registry

	noFast bool // tests: always decode with hamba
}

// NewCodec returns a Codec that writes Avro single-object encoding and reads
// it by fingerprint among the known writer versions.
func NewCodec(opts ...Option) (*Codec, error) {
	o := options{maxRecordSize: DefaultMaxRecordSize, registryTimeout: DefaultRegistryTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxRecordSize < soeHeaderLen {
		return nil, fmt.Errorf("avro: max record size %d is too small", o.maxRecordSize)
	}
	if o.registryTimeout <= 0 {
		return nil, fmt.Errorf("avro: registry timeout %v is not positive", o.registryTimeout)
	}
	c := &Codec{
		api: hamba.Config{
			TagKey:                 "avro",
			DisableBlockSizeHeader: true,
			MaxByteSliceSize:       o.maxRecordSize,
			MaxSliceAllocSize:      o.maxRecordSize,
		}.Freeze(),
		maxRecordSize: o.maxRecordSize,
	}
	c.readers.New = func() any { return hamba.NewReader(nil, 0, hamba.WithReaderConfig(c.api)) }
	c.writers.New = func() any { return hamba.NewWriter(nil, 256, hamba.WithWriterConfig(c.api)) }

	versions, err := embeddedVersions()
	if err != nil {
		return nil, err
	}
	// The fast decoders and encoders know one version of their records
	// (OrderState and StatusChange: 2, the others: 1); a newer embedded
	// reader schema must come with newer fast ones.
	eventFast, stateFast := len(versions[RecordOrderEvent]) == 1, len(versions[RecordOrderState]) == 2
	statusFast, rejectFast := len(versions[RecordStatusChange]) == 2, len(versions[RecordRejection]) == 1
	for _, text := range o.writerSchemas {
		rec, _, err := writerRecord(text)
		if err != nil {
			return nil, err
		}
		// Insert before the reader (the embedded newest), which stays last.
		v := versions[rec]
		versions[rec] = append(append(v[:len(v)-1:len(v)-1], text), v[len(v)-1])
	}
	if c.event, err = newRecord(c.api, RecordOrderEvent, versions[RecordOrderEvent], missingEvent, normalizeEvent); err != nil {
		return nil, err
	}
	c.event.limits = eventLimits
	if c.status, err = newRecord(c.api, RecordStatusChange, versions[RecordStatusChange], missingStatusChange, nil); err != nil {
		return nil, err
	}
	if c.reject, err = newRecord(c.api, RecordRejection, versions[RecordRejection], missingRejection, nil); err != nil {
		return nil, err
	}
	if c.state, err = newRecord(c.api, RecordOrderState, versions[RecordOrderState], missingState, normalizeState); err != nil {
		return nil, err
	}
	if eventFast {
		c.event.fast = decodeEventFast
		c.event.strict = decodeEventStrict
		c.event.reset = resetEvent
		c.event.keep = keepEvent
	}
	if stateFast {
		c.state.fast = decodeStateFast
	}
	c.state.slow = decodeTimersSlow
	c.stateWireEnc = c.api.EncoderOf(c.state.reader, reflect2.TypeOf(stateWire{}))
	c.state.fastEnc, c.status.fastEnc, c.reject.fastEnc = stateFast, statusFast, rejectFast
	c.reg = &registry{timeout: o.registryTimeout, lookupOnly: o.lookupOnly}
	return c, nil
}

// EncodeEvent appends the framed OrderEvent of ev to dst.
func (c *Codec) EncodeEvent(dst []byte, ev *topology.Event) ([]byte, error) {
	return encodeRecord(c, c.event, dst, (*orderEvent)(ev))
}

// DecodeEvent decodes a framed OrderEvent into ev. On error, ev's contents
// are unspecified. An error matching ErrMalformed means the payload is
// poison.
//
// A non-nil ev.Attributes map may be cleared and reused for the decoded
// attributes, and the int64 a non-nil ev.Sequence points to overwritten
// with the decoded sequence, so a loop that decodes into one Event
// allocates neither per event; decode into a zeroed Event to keep an
// earlier event's map and sequence intact.
func (c *Codec) DecodeEvent(b []byte, ev *topology.Event) error {
	return decodeRecord(c, c.event, b, (*orderEvent)(ev), false)
}

// DecodeEventShared is DecodeEvent without the copy of b's bytes: the
// decoded strings point into b, which the caller must therefore never
// modify (and which they keep reachable). For a caller that already holds
// the record in memory of its own, as the processor does (it copies input
// records into a batch's arena); it saves an allocation per event.
func (c *Codec) DecodeEventShared(b []byte, ev *topology.Event) error {
	return decodeRecord(c, c.event, b, (*orderEvent)(ev), true)
}

// EncodeState appends the framed OrderState of st to dst. st does not
// escape: a State the caller keeps on its stack stays there (what its
// fields point to may escape).
func (c *Codec) EncodeState(dst []byte, st *topology.State) ([]byte, error) {
	return c.EncodeStateCached(dst, st, nil)
}

// EncodeStateCached is EncodeState taking the encoding of st.History from
// hc when hc has encoded that very map before (nil: no cache). See
// HistoryCache for what it relies on.
func (c *Codec) EncodeStateCached(dst []byte, st *topology.State, hc *HistoryCache) ([]byte, error) {
	s := (*orderState)(st)
	hdr := fastHeader(c, c.state)
	if hdr == nil {
		if f := missingState(s); f != "" {
			return dst, errMissing(c.state.name, f)
		}
		w := wireOfState(s) // hamba's encoder would make s escape; it gets a copy
		return encodeWith(c, c.state.name, c.stateWireEnc, unsafe.Pointer(&w), stateHeader(c), dst)
	}
	// The fast encoders are called directly, here and below: a call
	// through a func value would make s escape.
	if f := missingState(s); f != "" {
		return dst, errMissing(c.state.name, f)
	}
	start := len(dst)
	if cap(dst)-len(dst) < 512 { // most states fit in 512 bytes: skip the sizing walk
		dst = slices.Grow(dst, len(hdr)+stateSizeHint(s))
	}
	return c.fitEncoded(c.state.name, encodeStateFast(append(dst, hdr...), s, hc), start)
}

// decodeTimersSlow decodes the timers of an OrderState body that hamba
// decoded (it skips them: see stateWire), written with ws.
func decodeTimersSlow(c *Codec, ws *writerSchema, body []byte, s *orderState) error {
	var t timersWire
	if err := c.api.Unmarshal(ws.resolved, body, &t); err != nil {
		return err
	}
	s.Timers = clocksOf(t.Timers)
	return nil
}

// DecodeState decodes a framed OrderState into st (see DecodeEvent).
func (c *Codec) DecodeState(b []byte, st *topology.State) error {
	return decodeRecord(c, c.state, b, (*orderState)(st), false)
}

// StateClosedAt returns the closed_at of a framed OrderState, in Unix
// milliseconds, and whether it is set. For a payload of the current schema
// it reads only the framing and skips to the last field, checking bounds
// but not validating the fields it skips (DecodeState does): it is meant for
// states this package encoded, such as the store's values. Any other writer
// version is decoded in full.
func (c *Codec) StateClosedAt(b []byte) (unixMs int64, closed bool, err error) {
	ws, hdr, derr := writerOf(c, c.state, b)
	if derr != nil {
		derr.Record = c.state.name
		return 0, false, derr
	}
	if ws.exact && c.state.fast != nil && !c.noFast {
		if ms, closed, ok := stateClosedAt(b[hdr:]); ok {
			return ms, closed, nil
		}
		return 0, false, &DecodeError{Record: c.state.name, Offset: -1, Kind: ErrTruncated, Detail: "closed_at not found"}
	}
	var st topology.State
	if err := c.DecodeState(b, &st); err != nil {
		return 0, false, err
	}
	if st.ClosedAt == nil {
		return 0, false, nil
	}
	return st.ClosedAt.UnixMilli(), true, nil
}

// EncodeStatusChange appends the framed StatusChange s to dst. s does not
// escape (see EncodeState).
func (c *Codec) EncodeStatusChange(dst []byte, s *StatusChange) ([]byte, error) {
	hdr := fastHeader(c, c.status)
	if hdr == nil {
		v := *s
		return encodeRecord(c, c.status, dst, &v)
	}
	if f := missingStatusChange(s); f != "" {
		return dst, errMissing(c.status.name, f)
	}
	start := len(dst)
	dst = slices.Grow(dst, len(hdr)+statusSize(s))
	return c.fitEncoded(c.status.name, encodeStatusFast(append(dst, hdr...), s), start)
}

// DecodeStatusChange decodes a framed StatusChange into s (see DecodeEvent).
func (c *Codec) DecodeStatusChange(b []byte, s *StatusChange) error {
	return decodeRecord(c, c.status, b, s, false)
}

// EncodeRejection appends the framed Rejection r to dst. r does not escape
// (see EncodeState).
func (c *Codec) EncodeRejection(dst []byte, r *Rejection) ([]byte, error) {
	hdr := fastHeader(c, c.reject)
	if hdr == nil {
		v := *r
		return encodeRecord(c, c.reject, dst, &v)
	}
	if f := missingRejection(r); f != "" {
		return dst, errMissing(c.reject.name, f)
	}
	start := len(dst)
	dst = slices.Grow(dst, len(hdr)+rejectionSize(r))
	return c.fitEncoded(c.reject.name, encodeRejectionFast(append(dst, hdr...), r), start)
}

// DecodeRejection decodes a framed Rejection into r (see DecodeEvent).
func (c *Codec) DecodeRejection(b []byte, r *Rejection) error {
	return decodeRecord(c, c.reject, b, r, false)
}

// record is the codec of one record type T.
type record[T any] struct {
	name      string       // record name without namespace
	text      string       // reader schema text (the newest version)
	reader    hamba.Schema // reader schema; also the schema encoded with
	soe       [soeHeaderLen]byte
	byFP      map[uint64]*writerSchema                      // known versions; immutable
	readerFP  uint64                                        // the fingerprint the encoders frame with (soe's), and
	readerWS  *writerSchema                                 // its entry in byFP: most records name it, and a compare beats the map
	enc       hamba.ValEncoder                              // encodes a T (not a *T) with reader
	missing   func(*T) string                               // name of an empty required field, or ""
	normalize func(*T)                                      // nil-ifies empty collections; may be nil
	fast      func([]byte, string, *T)                      // decodes a scanned body of the reader schema (and the string its strings come from: see bodyOf); may be nil
	strict    func([]byte, string, *T) bool                 // decodes an unscanned body of the reader schema, or says to scan it (see fast); may be nil
	reset     func(*T)                                      // zeroes a T for fast and strict, keeping memory they reuse; nil: assign the zero T
	keep      func(*T)                                      // like reset, before strict, which takes over what it leaves; nil: reset
	limits    func(*T, int) *DecodeError                    // the first limit a decoded T (from a body of that many bytes) is over, or nil; may be nil
	fastEnc   bool                                          // the Encode method calls its hand-written encoder of the reader schema
	slow      func(*Codec, *writerSchema, []byte, *T) error // after hamba's decoder: decodes what it cannot (see stateWire); may be nil

	// Confluent framing; set once by NewConfluentCodec before use.
	idHeader [confluentLen]byte
	hasID    bool
	byID     sync.Map // int -> *writerSchema
}

// writerSchema is one writer version of a record, as seen by its reader.
type writerSchema struct {
	schema   hamba.Schema // what the bytes are
	scan     *node        // schema compiled for the scanner
	resolved hamba.Schema // schema resolved to the reader: hamba decodes with this
	dec      hamba.ValDecoder
	exact    bool         // schema is the reader schema: the record's fast decoder may be used
	err      *DecodeError // non-nil: the schema is unusable (cached refusal)
}

// newWriterSchema resolves writer w to reader and builds its decoder into T.
func newWriterSchema[T any](api hamba.API, reader, w hamba.Schema) (*writerSchema, error) {
	resolved, err := hamba.NewSchemaCompatibility().Resolve(reader, w)
	if err != nil {
		return nil, err
	}
	scan, err := compile(w)
	if err != nil {
		return nil, err
	}
	return &writerSchema{
		schema:   w,
		scan:     scan,
		resolved: resolved,
		dec:      api.DecoderOf(resolved, reflect2.TypeOf((*T)(nil))),
		exact:    w.Fingerprint() == reader.Fingerprint(),
	}, nil
}

// newRecord builds the codec of record name from its known versions
// (oldest first; the last is the reader schema).
func newRecord[T any](api hamba.API, name string, versions []string, missing func(*T) string, normalize func(*T)) (*record[T], error) {
	if len(versions) == 0 {
		return nil, fmt.Errorf("avro: no schema for record %s", name)
	}
	r := &record[T]{
		name:      name,
		text:      versions[len(versions)-1],
		byFP:      map[uint64]*writerSchema{},
		missing:   missing,
		normalize: normalize,
	}
	var err error
	if r.reader, err = parseSchema(r.text); err != nil {
		return nil, fmt.Errorf("avro: %s reader schema: %w", name, err)
	}
	if n, ok := r.reader.(hamba.NamedSchema); !ok || n.FullName() != namespace+"."+name {
		return nil, fmt.Errorf("avro: %s reader schema is not the record %s.%s", name, namespace, name)
	}
	r.enc = api.EncoderOf(r.reader, reflect2.TypeOf((*T)(nil)).(reflect2.PtrType).Elem())
	for i, text := range versions {
		w, err := parseSchema(text)
		if err != nil {
			return nil, fmt.Errorf("avro: %s writer schema %d: %w", name, i+1, err)
		}
		ws, err := newWriterSchema[T](api, r.reader, w)
		if err != nil {
			return nil, fmt.Errorf("avro: %s writer schema %d of %d: %w: %s", name, i+1, len(versions), ErrIncompatible, explainIncompatible(r.reader, w, err))
		}
		fps, err := fingerprints(text, w)
		if err != nil {
			return nil, fmt.Errorf("avro: %s writer schema %d: %w", name, i+1, err)
		}
		for _, fp := range fps {
			r.byFP[fp] = ws
		}
		if i == len(versions)-1 {
			r.soe[0], r.soe[1] = soeMagic0, soeMagic1
			binary.LittleEndian.PutUint64(r.soe[2:], fps[0])
			r.readerFP, r.readerWS = fps[0], ws
		}
	}
	return r, nil
}

// encodeRecord appends the framed record v to dst with hamba's encoder.
// v escapes.
func encodeRecord[T any](c *Codec, rec *record[T], dst []byte, v *T) ([]byte, error) {
	if f := rec.missing(v); f != "" {
		return dst, errMissing(rec.name, f)
	}
	hdr := rec.soe[:]
	if rec.hasID {
		hdr = rec.idHeader[:]
	}
	return encodeWith(c, rec.name, rec.enc, unsafe.Pointer(v), hdr, dst)
}

// encodeWith appends hdr and the record named name that enc encodes from
// v to dst.
func encodeWith(c *Codec, name string, enc hamba.ValEncoder, v unsafe.Pointer, hdr, dst []byte) ([]byte, error) {
	w := c.writers.Get().(*hamba.Writer)
	w.Reset(nil)
	w.Error = nil
	enc.Encode(v, w)
	body, err := w.Buffer(), w.Error
	defer func() {
		w.Error = nil
		if cap(body) <= 64<<10 { // do not pin the odd huge buffer in the pool
			c.writers.Put(w)
		}
	}()
	if err != nil {
		return dst, fmt.Errorf("avro: encode %s: %w", name, err)
	}
	if n := len(hdr) + len(body); n > c.maxRecordSize {
		return dst, fmt.Errorf("avro: encode %s: %w: %d bytes, max %d", name, ErrOversize, n, c.maxRecordSize)
	}
	dst = append(dst, hdr...)
	return append(dst, body...), nil
}

// stateHeader is the framing of an OrderState.
func stateHeader(c *Codec) []byte {
	if c.state.hasID {
		return c.state.idHeader[:]
	}
	return c.state.soe[:]
}

// fastHeader returns the framing to write before a body from rec's
// hand-written encoder, or nil if hamba is to encode the record.
func fastHeader[T any](c *Codec, rec *record[T]) []byte {
	switch {
	case !rec.fastEnc || c.noFast:
		return nil
	case rec.hasID:
		return rec.idHeader[:]
	}
	return rec.soe[:]
}

// fitEncoded returns dst, holding the record named name appended at
// start, or dst[:start] and ErrOversize if the record is over the max
// record size.
func (c *Codec) fitEncoded(name string, dst []byte, start int) ([]byte, error) {
	if n := len(dst) - start; n > c.maxRecordSize {
		return dst[:start], fmt.Errorf("avro: encode %s: %w: %d bytes, max %d", name, ErrOversize, n, c.maxRecordSize)
	}
	return dst, nil
}

// errMissing is the error of encoding the record named name with its
// required field empty.
func errMissing(name, field string) error {
	return fmt.Errorf("avro: encode %s: %w: %s is empty", name, ErrMissingField, field)
}

// decodeRecord decodes the framed record b into v: with rec's fast
// decoders if b's writer schema is the reader schema, else with hamba's
// after the scanner has checked the body. The fast decoders' strings point
// into b if shared, else into a copy of the body.
func decodeRecord[T any](c *Codec, rec *record[T], b []byte, v *T, shared bool) (err error) {
	// Nothing below should panic on any input (the fuzz targets check that
	// this never fires); if something does, the record is still poison, not
	// a crash.
	defer func() {
		if p := recover(); p != nil {
			err = &DecodeError{Record: rec.name, Offset: -1, Kind: ErrInvalidValue, Detail: fmt.Sprintf("decoder panic: %v", p)}
		}
	}()
	ws, hdr, derr := writerOf(c, rec, b)
	if derr != nil {
		derr.Record = rec.name
		return derr
	}
	body := b[hdr:]
	fast := ws.exact && rec.fast != nil && !c.noFast
	var zero T
	var str string
	if fast {
		str = bodyOf(body, shared)
	}
	if fast && rec.strict != nil {
		if rec.keep != nil {
			rec.keep(v)
		} else {
			rec.zero(v)
		}
		if rec.strict(body, str, v) {
			return decoded(rec, v, len(body))
		}
		// Malformed, or a form left to the scanner: it says which.
	}
	if derr := scanBody(ws.scan, body, c.maxRecordSize); derr != nil {
		derr.Record = rec.name
		derr.Offset += hdr
		return derr
	}
	if fast {
		rec.zero(v)
		rec.fast(body, str, v)
		return decoded(rec, v, len(body))
	}
	*v = zero
	rd := c.readers.Get().(*hamba.Reader)
	rd.Reset(body)
	rd.Error = nil
	ws.dec.Decode(unsafe.Pointer(v), rd)
	rerr := rd.Error
	if rerr == nil && rec.slow != nil {
		rerr = rec.slow(c, ws, body, v)
	}
	rd.Reset(nil)
	rd.Error = nil
	c.readers.Put(rd)
	if rerr != nil {
		return &DecodeError{Record: rec.name, Offset: -1, Kind: ErrInvalidValue, Err: rerr}
	}
	return decoded(rec, v, len(body))
}

// decoded finishes decoding v from a body of size bytes: it normalizes it
// and checks its required fields, then its limits.
func decoded[T any](rec *record[T], v *T, size int) error {
	if rec.normalize != nil {
		rec.normalize(v)
	}
	if f := rec.missing(v); f != "" {
		return &DecodeError{Record: rec.name, Offset: -1, Kind: ErrMissingField, Detail: f + " is empty"}
	}
	if rec.limits != nil {
		if err := rec.limits(v, size); err != nil {
			return err
		}
	}
	return nil
}

// writerOf reads the framing of b and returns the writer schema it names
// and the length of the framing.
func writerOf[T any](c *Codec, rec *record[T], b []byte) (*writerSchema, int, *DecodeError) {
	if len(b) > c.maxRecordSize {
		return nil, 0, &DecodeError{Offset: 0, Kind: ErrOversize, Detail: fmt.Sprintf("%d bytes, max %d", len(b), c.maxRecordSize)}
	}
	if len(b) == 0 {
		return nil, 0, &DecodeError{Offset: 0, Kind: ErrTruncated, Detail: "empty payload"}
	}
	switch {
	case b[0] == soeMagic0:
		if len(b) < soeHeaderLen {
			return nil, 0, &DecodeError{Offset: len(b), Kind: ErrTruncated, Detail: "inside the single-object header"}
		}
		if b[1] != soeMagic1 {
			return nil, 0, &DecodeError{Offset: 1, Kind: ErrUnknownFraming, Detail: fmt.Sprintf("bytes %#02x %#02x", b[0], b[1])}
		}
		fp := binary.LittleEndian.Uint64(b[2:soeHeaderLen])
		ws := rec.readerWS
		if fp != rec.readerFP {
			ws = rec.byFP[fp]
		}
		if ws == nil {
			return nil, 0, &DecodeError{Offset: 2, Kind: ErrUnknownFingerprint,
				Detail: fingerprintOf(fp).String() + " is the fingerprint of no writer schema the reader knows (give it the producer's schema)"}
		}
		return ws, soeHeaderLen, nil
	case b[0] == confluentMagic && c.reg.cl != nil:
		if len(b) < confluentLen {
			return nil, 0, &DecodeError{Offset: len(b), Kind: ErrTruncated, Detail: "inside the Confluent header"}
		}
		id := int(binary.BigEndian.Uint32(b[1:confluentLen]))
		ws, err := lookupID(c, rec, id)
		if err != nil {
			return nil, 0, err
		}
		return ws, confluentLen, nil
	}
	return nil, 0, &DecodeError{Offset: 0, Kind: ErrUnknownFraming, Detail: fmt.Sprintf("first byte %#02x", b[0])}
}

// ---- required fields and normal form ----

func missingEvent(e *orderEvent) string {
	switch {
	case e.EventID == "":
		return "event_id"
	case e.OrderID == "":
		return "order_id"
	case e.Type == "":
		return "type"
	}
	return ""
}

func missingStatusChange(s *StatusChange) string {
	switch {
	case s.OrderID == "":
		return "order_id"
	case s.EventID == "":
		return "event_id"
	case s.EventType == "":
		return "event_type"
	case s.ToState == "":
		return "to_state"
	}
	return ""
}

func missingRejection(r *Rejection) string {
	switch {
	case r.OrderID == "":
		return "order_id"
	case r.EventID == "":
		return "event_id"
	case r.EventType == "":
		return "event_type"
	case r.Reason == "":
		return "reason"
	}
	return ""
}

func missingState(s *orderState) string {
	if s.State == "" {
		return "state"
	}
	return ""
}

// Decoded empty collections are nil, as in a fresh topology value, so that
// what was encoded from nil decodes to nil.

// zero zeroes v for the fast and strict decoders.
func (rec *record[T]) zero(v *T) {
	if rec.reset != nil {
		rec.reset(v)
		return
	}
	var zero T
	*v = zero
}

// resetEvent zeroes e but keeps its attributes map, emptied: the fast and
// strict decoders fill a map that is there.
func resetEvent(e *orderEvent) {
	m := e.Attributes
	clear(m)
	*e = orderEvent{Attributes: m}
}

// keepEvent zeroes e but keeps its attributes map as it is, entries and
// all, and its sequence pointer: decodeEventStrict empties the map, and when
// it holds the one entry an event typically has, it avoids clearing it:
// the next event usually sets the same key, so overwriting that entry is all
// it takes, where a clear on every event would sweep the whole map. It
// writes the sequence through the pointer rather than allocate one per event
// (or sets it to nil for an event without one).
func keepEvent(e *orderEvent) {
	*e = orderEvent{Attributes: e.Attributes, Sequence: e.Sequence}
}

func normalizeEvent(e *orderEvent) {
	if len(e.Attributes) == 0 {
		e.Attributes = nil
	}
}

func normalizeState(s *orderState) {
	if len(s.RecentEventIDs) == 0 {
		s.RecentEventIDs = nil
	}
	if len(s.Marks) == 0 {
		s.Marks = nil
	}
	if len(s.History) == 0 {
		s.History = nil
	}
	if len(s.Timers) == 0 {
		s.Timers = nil
	}
}
