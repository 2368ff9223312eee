package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// encoderResult compares ivrd's MP3 encoder (libmp3lame through cgo, as the recorder drives
// it) with the lame command on the same audio and settings.
type encoderResult struct {
	AudioSeconds   float64 `json:"audio_seconds"`
	Kbps           int     `json:"kbps"`
	Runs           int     `json:"runs"`
	IvrdBestS      float64 `json:"ivrd_best_wall_s"`
	IvrdCPUS       float64 `json:"ivrd_cpu_s"`
	LameBestS      float64 `json:"lame_best_wall_s"`
	LameCPUS       float64 `json:"lame_cpu_s"`
	IvrdXRealtime  float64 `json:"ivrd_x_realtime"`
	LameXRealtime  float64 `json:"lame_x_realtime"`
	Ratio          float64 `json:"ratio"`     // lame wall / ivrd wall: > 1 means ivrd is faster
	CPURatio       float64 `json:"cpu_ratio"` // lame CPU / ivrd CPU
	IvrdBytes      int     `json:"ivrd_bytes"`
	LameBytes      int     `json:"lame_bytes"`
	SameBytes      bool    `json:"identical_output"`
	LameCommand    string  `json:"lame_command"`
	BothDecodeOK   bool    `json:"both_decode"`
	IvrdDecodedSec float64 `json:"ivrd_decoded_s"`
}

const encText = "Thank you for calling. Your call may be recorded for quality and training purposes. " +
	"Please listen carefully, as our menu options have changed. For billing, press one. " +
	"For technical support, press two. To speak with an agent, stay on the line. " +
	"Our opening hours are nine in the morning to six in the evening, Monday to Friday."

// speech returns at least secs seconds of 8 kHz speech: espeak-ng, resampled, repeated.
func speech(secs int) ([]int16, error) {
	out, err := exec.Command("espeak-ng", "-v", "en-us+f3", "--stdout", encText).Output()
	if err != nil {
		return nil, fmt.Errorf("espeak-ng: %w", err)
	}
	pcm, info, err := audio.DecodeWAV(out)
	if err != nil {
		return nil, err
	}
	if info.Rate != audio.Rate {
		if pcm, err = audio.Resample(pcm, info.Rate, audio.Rate); err != nil {
			return nil, err
		}
	}
	want := secs * audio.Rate
	all := make([]int16, 0, want+len(pcm))
	for len(all) < want {
		all = append(all, pcm...)
	}
	return all[:want], nil
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// encodeIvrd encodes pcm as the recorder does (1152-sample writes) and returns the MP3, the
// wall time and the CPU time.
func encodeIvrd(pcm []int16, kbps int) ([]byte, time.Duration, time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var buf bytes.Buffer
	buf.Grow(len(pcm)/2 + 8192)
	c0, t0 := threadCPU(), time.Now()
	enc, err := audio.NewMP3Encoder(&buf, kbps)
	if err != nil {
		return nil, 0, 0, err
	}
	for off := 0; off < len(pcm); off += 1152 {
		if err := enc.Write(pcm[off:min(off+1152, len(pcm))]); err != nil {
			return nil, 0, 0, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, 0, 0, err
	}
	return buf.Bytes(), time.Since(t0), threadCPU() - c0, nil
}

func encoderPhase(o options, work string) (encoderResult, error) {
	const kbps, runs = 32, 5
	r := encoderResult{Kbps: kbps, Runs: runs}
	pcm, err := speech(o.encSeconds)
	if err != nil {
		return r, err
	}
	r.AudioSeconds = audio.Duration(len(pcm)).Seconds()
	dir := filepath.Join(work, "encoder")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	raw := filepath.Join(dir, "speech.raw")
	rb := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(rb[2*i:], uint16(s))
	}
	if err := os.WriteFile(raw, rb, 0o644); err != nil {
		return r, err
	}
	mp3 := filepath.Join(dir, "lame.mp3")
	// ivrd's settings (internal/audio/mp3enc.go) as far as the command takes them: 8 kHz mono
	// in and out, CBR, quality 7, no tag, and no ReplayGain analysis (the command's default,
	// which ivrd does not do; left on it costs the command ~20 %). ivrd also encodes long
	// blocks only, which the command cannot be told: Debian's lame 3.100 accepts --noshort
	// and ignores it (its output is byte-identical with and without). With block switching
	// in ivrd too the outputs were byte-identical (ratio 1.06 on this machine, 2026-11-25).
	args := []string{"--silent", "-r", "-s", "8", "--bitwidth", "16", "--signed", "--little-endian",
		"-m", "m", "--resample", "8", "-b", fmt.Sprint(kbps), "--cbr", "-q", "7", "--noreplaygain", "-t", raw, mp3}
	shown := slices.Clone(args)
	shown[len(shown)-2], shown[len(shown)-1] = "speech.raw", "lame.mp3"
	r.LameCommand = "lame " + joinArgs(shown)

	var ivrdOut []byte
	var bestI, bestL, cpuI, cpuL time.Duration
	for i := range runs {
		out, wall, cpu, err := encodeIvrd(pcm, kbps)
		if err != nil {
			return r, err
		}
		if i == 0 || wall < bestI {
			bestI, cpuI, ivrdOut = wall, cpu, out
		}
		os.Remove(mp3)
		cmd := exec.Command("lame", args...)
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return r, fmt.Errorf("lame: %v: %s", err, out)
		}
		lw := time.Since(t0)
		ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		var lc time.Duration
		if ru != nil {
			lc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		if i == 0 || lw < bestL {
			bestL, cpuL = lw, lc
		}
	}
	lameOut, err := os.ReadFile(mp3)
	if err != nil {
		return r, err
	}
	r.IvrdBestS, r.IvrdCPUS, r.LameBestS, r.LameCPUS = bestI.Seconds(), cpuI.Seconds(), bestL.Seconds(), cpuL.Seconds()
	r.IvrdXRealtime, r.LameXRealtime = r.AudioSeconds/r.IvrdBestS, r.AudioSeconds/r.LameBestS
	r.Ratio = r.LameBestS / r.IvrdBestS
	if r.IvrdCPUS > 0 {
		r.CPURatio = r.LameCPUS / r.IvrdCPUS
	}
	r.IvrdBytes, r.LameBytes = len(ivrdOut), len(lameOut)
	r.SameBytes = bytes.Equal(ivrdOut, lameOut)
	dI, rateI, errI := audio.DecodeMP3(ivrdOut)
	_, rateL, errL := audio.DecodeMP3(lameOut)
	r.BothDecodeOK = errI == nil && errL == nil && rateI == audio.Rate && rateL == audio.Rate
	r.IvrdDecodedSec = audio.Duration(len(dI)).Seconds()
	log.Printf("encoder: %.0f s of speech: ivrd %.3f s (%.0fx realtime), lame %.3f s (%.0fx); ratio %.2f; identical output %v",
		r.AudioSeconds, r.IvrdBestS, r.IvrdXRealtime, r.LameBestS, r.LameXRealtime, r.Ratio, r.SameBytes)
	return r, nil
}

func joinArgs(a []string) string {
	var b bytes.Buffer
	for i, s := range a {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}
