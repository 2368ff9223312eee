package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/ivrd/ivrd/internal/recording"
)

// mp3Check is the verdict on one recording.
type mp3Check struct {
	ok       bool
	reason   string
	length   time.Duration // decoded
	coverage float64       // share of the recording where the caller's tone is heard
	bytes    int
	ffmpeg   int // 1 checked clean, -1 ffmpeg reported errors, 0 not checked
}

// toneWindow is the analysis window: 40 ms holds exactly 40 periods of the 1 kHz tone.
const toneWindow = 320

// checkMP3 verifies a recording: a clean run of MPEG Layer III frames from the first byte to
// the last (8 kHz), decodable by minimp3, about as long as the monitored part of the call
// (want, when known), and holding the caller's tone at its level in at least 90 % of its 40 ms
// windows (prompts are mixed in on top; the first and last 300 ms are not judged).
func checkMP3(data []byte, want time.Duration) mp3Check {
	c := mp3Check{bytes: len(data)}
	scan, err := recording.ScanFrames(bytes.NewReader(data))
	switch {
	case err != nil:
		c.reason = "frame scan: " + err.Error()
		return c
	case scan.Frames == 0:
		c.reason = "no MP3 frames"
		return c
	case scan.End != int64(len(data)) || scan.Start != 0:
		c.reason = fmt.Sprintf("frames cover bytes %d..%d of %d", scan.Start, scan.End, len(data))
		return c
	case scan.SampleRate != audio.Rate:
		c.reason = fmt.Sprintf("sample rate %d", scan.SampleRate)
		return c
	}
	pcm, rate, err := audio.DecodeMP3(data)
	if err != nil || rate != audio.Rate {
		c.reason = fmt.Sprintf("decode: rate %d, %v", rate, err)
		return c
	}
	c.length = audio.Duration(len(pcm))
	if want > 0 && (c.length < want-1500*time.Millisecond || c.length > want+1500*time.Millisecond) {
		c.reason = fmt.Sprintf("decoded %v, monitored part of the call lasted %v", c.length.Round(time.Millisecond), want.Round(time.Millisecond))
		return c
	}
	edge := audio.Samples(300 * time.Millisecond)
	if len(pcm) < 2*edge+toneWindow {
		c.reason = fmt.Sprintf("too short to judge (%v)", c.length)
		return c
	}
	body := pcm[edge : len(pcm)-edge]
	windows, heard := 0, 0
	for i := 0; i+toneWindow <= len(body); i += toneWindow {
		windows++
		if a := audio.ToneAmplitude(body[i:i+toneWindow], audio.Rate, toneHz); a >= 0.5*toneAmp && a <= 1.5*toneAmp {
			heard++
		}
	}
	c.coverage = float64(heard) / float64(windows)
	if c.coverage < 0.9 {
		c.reason = fmt.Sprintf("caller's tone in %.1f %% of the recording", 100*c.coverage)
		return c
	}
	c.ok = true
	return c
}

// ffmpegClean decodes with ffmpeg, a second and stricter decoder, and reports any complaint.
func ffmpegClean(data []byte) error {
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "null", "-")
	cmd.Stdin = bytes.NewReader(data)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		return fmt.Errorf("ffmpeg: %v %s", err, tailText(errb.String(), 3))
	}
	return nil
}

// verifyAll downloads and checks every recording (workers in parallel). want gives the
// expected length per session (0 = unknown). Every ffmpegEvery-th file also goes through
// ffmpeg.
func verifyAll(urls map[string]string, want map[string]time.Duration, workers, ffmpegEvery int) map[string]mp3Check {
	client := &http.Client{Timeout: 60 * time.Second}
	out := make(map[string]mp3Check, len(urls))
	var mu sync.Mutex
	type job struct {
		sid, url string
		ffmpeg   bool
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				var c mp3Check
				data, err := download(client, j.url)
				if err != nil {
					c.reason = "download: " + err.Error()
				} else {
					c = checkMP3(data, want[j.sid])
					if c.ok && j.ffmpeg {
						c.ffmpeg = 1
						if err := ffmpegClean(data); err != nil {
							c.ffmpeg, c.ok, c.reason = -1, false, err.Error()
						}
					}
				}
				mu.Lock()
				out[j.sid] = c
				mu.Unlock()
			}
		})
	}
	i := 0
	for sid, u := range urls {
		jobs <- job{sid: sid, url: u, ffmpeg: ffmpegEvery > 0 && i%ffmpegEvery == 0}
		i++
	}
	close(jobs)
	wg.Wait()
	return out
}

func download(client *http.Client, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return io.ReadAll(res.Body)
}
