//go:build !linux

package local

import (
	"context"
	"os"
)

// LinkFile never links here: the caller copies instead.
func (p *Provider) LinkFile(ctx context.Context, path string, src *os.File) (linked bool, err error) {
	return false, nil
}
