// Package topology is the order state machine as data: a hierarchical
// machine loaded from YAML (Parse, Load, LoadFile, or the embedded Default,
// default.yaml), validated at load with every problem reported, and
// the pure function Apply that moves one order by one event.
//
// Apply is what the processor runs for every record and what `orderflow
// replay` runs offline, so both produce the same outcomes. The per-order
// State it reads and returns is what the state store persists.
//
// The file format, the semantics and the validation rules are in README.md
// next to this file; docs/design.md at the repository's root shows where
// the package sits in the processor.
package topology
