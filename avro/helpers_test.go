package avro

import (
	"errors"
	"fmt"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
