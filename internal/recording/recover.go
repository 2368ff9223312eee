package recording

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Recover finalizes a recording left behind as a .part file by a process that died mid-call:
// it cuts any trailing partial MP3 frame (and anything after the last good frame), fsyncs,
// and renames the file to the same name without ".part". The result is a valid MP3 holding
// everything that reached the file, which after a SIGKILL is the call up to about half a
// second before the kill. A file with no complete frame becomes an empty .mp3 (Duration 0).
func Recover(partPath string) (Result, error) {
	final, ok := strings.CutSuffix(partPath, ".part")
	if !ok || final == "" {
		return Result{}, fmt.Errorf("recording: recover %s: not a .part file", partPath)
	}
	f, err := os.OpenFile(partPath, os.O_RDWR, 0)
	if err != nil {
		return Result{}, fmt.Errorf("recording: recover: %w", err)
	}
	s, err := ScanFrames(f)
	if err == nil {
		err = cut(f, s)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("recording: recover %s: %w", partPath, err)
	}
	if err := os.Rename(partPath, final); err != nil {
		return Result{}, fmt.Errorf("recording: recover: %w", err)
	}
	syncDir(filepath.Dir(final))
	res := Result{Path: final, Duration: s.Duration, Channels: s.Channels}
	if s.Frames > 0 {
		res.Bytes = s.End
	}
	return res, nil
}

// cut truncates f after the last complete frame (to zero when there is none) and syncs it.
func cut(f *os.File, s Scan) error {
	end := s.End
	if s.Frames == 0 {
		end = 0
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != end {
		if err := f.Truncate(end); err != nil {
			return err
		}
	}
	return f.Sync()
}
