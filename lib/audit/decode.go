package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrMalformed is returned for a body that is not an audit.k8s.io/v1 EventList.
var ErrMalformed = errors.New("malformed audit batch")

// Decode reads one EventList. Any syntax error, trailing data or wrong apiVersion/kind is
// ErrMalformed with the detail, so a caller can answer 400 without guessing.
func Decode(r io.Reader) (*EventList, error) {
	dec := json.NewDecoder(r)
	var list EventList
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the EventList", ErrMalformed)
	}
	if list.APIVersion != APIVersion || list.Kind != ListKind {
		return nil, fmt.Errorf("%w: got apiVersion %q kind %q, want %s %s", ErrMalformed, list.APIVersion, list.Kind, APIVersion, ListKind)
	}
	return &list, nil
}
