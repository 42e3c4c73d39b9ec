package topology

import (
	_ "embed"
	"sync"
)

// defaultYAML is the default machine, exactly as ORDER_LIFECYCLE.md gives it.
//
//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the source of the default machine (a copy).
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

var loadDefault = sync.OnceValue(func() *Machine {
	m, err := Parse(defaultYAML)
	if err != nil {
		// The file is embedded and tested; this is a build defect.
		panic("topology: embedded default machine is invalid: " + err.Error())
	}
	return m
})

// Default returns the default order machine (ORDER_LIFECYCLE.md). It is
// loaded once and shared; a Machine is immutable.
func Default() *Machine { return loadDefault() }
