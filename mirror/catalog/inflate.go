package catalog

import (
	"fmt"
	"io"

	"github.com/ferryhq/ferry/mirror/internal/layerio"
)

// inflateBudget counts what the layers of one image inflate to, and the
// entries their tars hold.
type inflateBudget struct {
	limits   limits
	inflated int64
	entries  int64
}

// reader returns r (one layer, inflated) counted against MaxInflatedBytes
// and MaxZstdWindow.
func (b *inflateBudget) reader(r io.Reader) io.Reader { return &countingReader{r: r, budget: b} }

// entry counts one more tar entry against MaxTarEntries.
func (b *inflateBudget) entry() error {
	b.entries++
	if b.entries > b.limits.tarEntries {
		return &BoundError{Bound: "MaxTarEntries", Limit: b.limits.tarEntries}
	}
	return nil
}

type countingReader struct {
	r      io.Reader
	budget *inflateBudget
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.budget.inflated += int64(n)
	if c.budget.inflated > c.budget.limits.inflatedBytes {
		return n, &BoundError{Bound: "MaxInflatedBytes", Limit: c.budget.limits.inflatedBytes}
	}
	if layerio.WindowExceeded(err) {
		err = fmt.Errorf("%w (%w)", &BoundError{Bound: "MaxZstdWindow", Limit: int64(c.budget.limits.zstdWindow)}, err)
	}
	return n, err
}
