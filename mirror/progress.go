package mirror

// Progress receives the progress of a transfer of many blobs as data;
// whoever calls the engine draws it (bars, log lines, nothing). Engines
// take a nil Progress to mean that nobody listens.
type Progress interface {
	// Start announces the transfer: items blobs of total bytes. It is
	// called once, before any Item.
	Start(total int64, items int)
	// Item starts one blob's transfer of size bytes; name is short, for
	// a display line. It is called from concurrent goroutines.
	Item(name string, size int64) ProgressItem
	// Finish ends the transfer, once every item is done.
	Finish()
}

// ProgressItem is one blob's transfer. Its methods are called from the one
// goroutine that moves the blob.
type ProgressItem interface {
	// Add counts n more bytes moved.
	Add(n int)
	// Reset forgets what was moved: a retry starts the blob over.
	Reset()
	// Done ends the item, with the error that stopped it or nil.
	Done(err error)
}
