package avro

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Topics names the topic of each record type for the Confluent framing:
// a record's schema is registered under the subject "<topic>-value"
// (Confluent's TopicNameStrategy). A record type with no topic is written
// in single-object encoding.
type Topics struct {
	Events     string // OrderEvent
	Status     string // StatusChange
	Rejections string // Rejection
	Changelog  string // OrderState
}

// maxMissingIDs bounds the cache of schema IDs the registry said it does
// not have, so a stream of garbage IDs costs one request each at most until
// the cache is full, and memory stays bounded.
const maxMissingIDs = 4096

// registry fetches and caches writer schemas by Confluent schema ID.
type registry struct {
	cl         *sr.Client // nil: no registry
	timeout    time.Duration
	lookupOnly bool // never register: find the schemas among those registered

	mu struct {
		sync.Mutex
		schemas map[int]hamba.Schema // parsed writer schemas
		missing map[int]*DecodeError // IDs that are unusable, and why
	}
}

// NewConfluentCodec returns a Codec that writes the Confluent wire format
// (magic byte 0, 4-byte big-endian schema ID, Avro body) using the schema
// registry client cl. It registers each record's current schema under
// "<topic>-value" for every topic named in topics (a registry answers with
// the existing ID when the schema is already there) and caches the IDs;
// with WithRegistryLookupOnly it only looks them up, and fails with
// ErrNotRegistered if one is not there.
// Decoding fetches writer schemas it has not seen from the registry, once
// per ID; it also reads single-object payloads.
func NewConfluentCodec(ctx context.Context, cl *sr.Client, topics Topics, opts ...Option) (*Codec, error) {
	if cl == nil {
		return nil, errors.New("avro: NewConfluentCodec: nil schema registry client")
	}
	c, err := NewCodec(opts...)
	if err != nil {
		return nil, err
	}
	c.reg.cl = cl
	c.reg.mu.schemas = map[int]hamba.Schema{}
	c.reg.mu.missing = map[int]*DecodeError{}
	if err := register(ctx, c, c.event, topics.Events); err != nil {
		return nil, err
	}
	if err := register(ctx, c, c.status, topics.Status); err != nil {
		return nil, err
	}
	if err := register(ctx, c, c.reject, topics.Rejections); err != nil {
		return nil, err
	}
	if err := register(ctx, c, c.state, topics.Changelog); err != nil {
		return nil, err
	}
	return c, nil
}

func register[T any](ctx context.Context, c *Codec, rec *record[T], topic string) error {
	if topic == "" {
		return nil
	}
	subject := topic + "-value"
	ctx, cancel := context.WithTimeout(ctx, c.reg.timeout)
	defer cancel()
	verb := "register"
	var ss sr.SubjectSchema
	var err error
	if c.reg.lookupOnly {
		verb = "look up"
		ss, err = lookupSchema(ctx, c.reg.cl, subject, rec.reader)
	} else {
		ss, err = c.reg.cl.CreateSchema(ctx, subject, sr.Schema{Schema: rec.text, Type: sr.TypeAvro})
	}
	switch {
	case errors.Is(err, ErrNotRegistered):
		return fmt.Errorf("avro: %s under %s: %w", rec.name, subject, err)
	case err != nil:
		return fmt.Errorf("avro: %s %s under %s: %w: %w", verb, rec.name, subject, ErrRegistry, err)
	case ss.ID < 0 || int64(ss.ID) > int64(^uint32(0)):
		return fmt.Errorf("avro: %s %s under %s: %w: schema id %d out of range", verb, rec.name, subject, ErrRegistry, ss.ID)
	}
	rec.idHeader[0] = confluentMagic
	binary.BigEndian.PutUint32(rec.idHeader[1:], uint32(ss.ID))
	rec.hasID = true
	// The reader schema is its own writer: no registry round trip to read
	// what this codec wrote.
	ws, err := newWriterSchema[T](c.api, rec.reader, rec.reader)
	if err != nil {
		return fmt.Errorf("avro: %s: %w", rec.name, err)
	}
	rec.byID.Store(ss.ID, ws)
	c.reg.mu.Lock()
	c.reg.mu.schemas[ss.ID] = rec.reader
	c.reg.mu.Unlock()
	return nil
}

// lookupSchema finds the version of subject whose schema is reader, with
// GET requests only: the registry's own lookup (POST /subjects/{subject})
// needs a permission that registries locked down by ACLs may not grant to
// readers. The latest version is tried first, as it is usually the one; an
// older one matches too. A subject that does not exist, or has no such
// version, gives ErrNotRegistered.
func lookupSchema(ctx context.Context, cl *sr.Client, subject string, reader hamba.Schema) (sr.SubjectSchema, error) {
	same := func(ss sr.SubjectSchema) bool {
		if ss.Type != sr.TypeAvro || len(ss.References) > 0 {
			return false
		}
		s, err := parseSchema(ss.Schema.Schema)
		return err == nil && s.Fingerprint() == reader.Fingerprint()
	}
	latest, err := cl.SchemaByVersion(ctx, subject, -1)
	if err == nil && same(latest) {
		return latest, nil
	}
	var all []sr.SubjectSchema
	if err == nil {
		all, err = cl.Schemas(ctx, subject)
	}
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || sr.IsNotFoundError(re.ErrorCode)) {
		return sr.SubjectSchema{}, fmt.Errorf("%w: the subject does not exist", ErrNotRegistered)
	}
	if err != nil {
		return sr.SubjectSchema{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if same(all[i]) {
			return all[i], nil
		}
	}
	return sr.SubjectSchema{}, fmt.Errorf("%w: none of the subject's %d versions is this schema", ErrNotRegistered, len(all))
}

// lookupID returns the writer schema of ID id as seen by rec's reader,
// fetching it from the registry if need be.
func lookupID[T any](c *Codec, rec *record[T], id int) (*writerSchema, *DecodeError) {
	if v, ok := rec.byID.Load(id); ok {
		ws := v.(*writerSchema)
		if ws.err != nil {
			return nil, ws.err.clone()
		}
		return ws, nil
	}
	s, derr := c.reg.schema(id)
	if derr != nil {
		return nil, derr
	}
	ws, err := newWriterSchema[T](c.api, rec.reader, s)
	if err != nil {
		ws = &writerSchema{schema: s, err: &DecodeError{Offset: 1, Kind: ErrIncompatibleWriter, Detail: fmt.Sprintf("schema id %d", id), Err: err}}
	}
	rec.byID.Store(id, ws)
	if ws.err != nil {
		return nil, ws.err.clone()
	}
	return ws, nil
}

func (e *DecodeError) clone() *DecodeError { c := *e; return &c }

// schema returns the parsed writer schema of id. A registry that has no such
// ID gives ErrUnknownSchemaID; a schema that is not usable Avro gives
// ErrIncompatibleWriter; both are cached (up to maxMissingIDs). Any other
// failure is of kind ErrRegistry, which does not match ErrMalformed, and is
// not cached: the next record asks again.
func (r *registry) schema(id int) (hamba.Schema, *DecodeError) {
	r.mu.Lock()
	s, ok := r.mu.schemas[id]
	missing := r.mu.missing[id]
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	if missing != nil {
		return nil, missing.clone()
	}

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	got, err := r.cl.SchemaByID(ctx, id)
	var derr *DecodeError
	switch {
	case err != nil:
		var re *sr.ResponseError
		if errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || sr.IsNotFoundError(re.ErrorCode)) {
			derr = &DecodeError{Offset: 1, Kind: ErrUnknownSchemaID, Detail: fmt.Sprintf("schema id %d", id), Err: err}
			break
		}
		// Not the record's fault: do not cache, do not call it malformed.
		return nil, &DecodeError{Offset: 1, Kind: ErrRegistry, Detail: fmt.Sprintf("fetch schema id %d", id), Err: err}
	case got.Type != sr.TypeAvro:
		derr = &DecodeError{Offset: 1, Kind: ErrIncompatibleWriter, Detail: fmt.Sprintf("schema id %d is %s, not Avro", id, got.Type)}
	case len(got.References) > 0:
		derr = &DecodeError{Offset: 1, Kind: ErrIncompatibleWriter, Detail: fmt.Sprintf("schema id %d has references, which this codec does not support", id)}
	default:
		s, perr := parseSchema(got.Schema)
		if perr != nil {
			derr = &DecodeError{Offset: 1, Kind: ErrIncompatibleWriter, Detail: fmt.Sprintf("schema id %d does not parse", id), Err: perr}
			break
		}
		r.mu.Lock()
		r.mu.schemas[id] = s
		r.mu.Unlock()
		return s, nil
	}
	r.mu.Lock()
	if len(r.mu.missing) < maxMissingIDs {
		r.mu.missing[id] = derr
	}
	r.mu.Unlock()
	return nil, derr.clone()
}
