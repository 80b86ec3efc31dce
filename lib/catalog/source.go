package catalog

// Source hands out the current Snapshot. Callers take one Snapshot per request and use only
// it, so a request never sees half of a configuration change.
type Source interface {
	Snapshot() *Snapshot
}

var (
	_ Source = (*Static)(nil)
	_ Source = (*Watcher)(nil)
)
