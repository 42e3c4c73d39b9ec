package topology

import (
	_ "embed"
	"sync"
)

// defaultYAML is the default machine, the order lifecycle orderflow ships
// with (README.md next to this file describes the format; the repository's
// README.md draws it).
//
//go:embed default.yaml
var defaultYAML []byte

var loadDefault = sync.OnceValue(func() *Machine {
	m, err := Parse(defaultYAML)
	if err != nil {
		// The file is embedded and tested; this is a build defect.
		panic("topology: embedded default machine is invalid: " + err.Error())
	}
	return m
})

// DefaultYAML returns the default machine's file (a copy).
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the default order machine (default.yaml). It is
// loaded once and shared; a Machine is immutable.
func Default() *Machine { return loadDefault() }
