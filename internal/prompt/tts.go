package prompt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"unicode"

	"github.com/ivrd/ivrd/internal/audio"
	"github.com/mozillazg/go-pinyin"
)

// Synthesis settings. They are part of the cache key (ttsKeyVersion), so changing them
// invalidates cached speech.
const (
	ttsWordsPerMinute = 150      // espeak-ng's default 175 is hurried over a phone line
	ttsMaxWAVBytes    = 64 << 20 // a 1000-character msg is far below this
	ttsKeyVersion     = "espeak1|s150"
	silentPeak        = 200 // below this peak, synthesized audio is "nothing was spoken"
)

// synthesize speaks text with espeak-ng and returns 8 kHz PCM.
func (p *Prompter) synthesize(ctx context.Context, text string, v voice) ([]int16, error) {
	input := text
	if v.Pinyin {
		input = toPinyin(text)
	}
	input = cleanText(input)
	if strings.TrimSpace(input) == "" {
		return []int16{}, nil
	}
	if err := p.espeakSem.acquire(ctx); err != nil {
		return nil, err
	}
	defer p.espeakSem.release()

	cmd := exec.CommandContext(ctx, p.espeak, "--stdout", "-b", "1",
		"-s", strconv.Itoa(ttsWordsPerMinute), "-v", v.Name)
	cmd.Stdin = strings.NewReader(input) // stdin, not argv: text starting with '-' is not an option
	var stdout limitedBuffer
	stdout.max = ttsMaxWAVBytes
	var stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("espeak-ng -v %s: %w: %s", v.Name, err, firstLine(stderr.String()))
	}
	if stdout.Len() == 0 {
		// espeak-ng exits 0 and writes nothing when the voice does not exist.
		return nil, fmt.Errorf("espeak-ng -v %s: no audio: %s", v.Name, firstLine(stderr.String()))
	}
	pcm, info, err := audio.DecodeWAV(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("espeak-ng output: %w", err)
	}
	if hasWords(text) && peak(pcm) < silentPeak {
		return nil, errors.New("espeak-ng produced silence: the text is not readable in this language")
	}
	return audio.Resample(pcm, info.Rate, audio.Rate)
}

// toPinyin rewrites every run of Chinese characters as tone-numbered pinyin syllables
// ("你好" → "ni3 hao3"), which espeak-ng's cmn-latn-pinyin voice reads with Mandarin tones.
// Other characters pass through; Chinese punctuation becomes ASCII so pauses survive.
func toPinyin(s string) string {
	args := pinyin.NewArgs()
	args.Style = pinyin.Tone3
	args.Fallback = func(r rune, _ pinyin.Args) []string { return []string{string(r)} }
	var b strings.Builder
	prevHan := false
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			syl := pinyin.LazyPinyin(string(r), args)
			if len(syl) > 0 {
				if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") {
					b.WriteByte(' ')
				}
				b.WriteString(syl[0])
				prevHan = true
				continue
			}
		}
		if p, ok := cjkPunct[r]; ok {
			b.WriteString(p)
			prevHan = false
			continue
		}
		if prevHan && !unicode.IsSpace(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
		prevHan = false
	}
	return b.String()
}

var cjkPunct = map[rune]string{
	'，': ", ", '。': ". ", '？': "? ", '！': "! ", '、': ", ", '；': "; ", '：': ": ",
	'（': " (", '）': ") ", '「': " ", '」': " ", '『': " ", '』': " ", '“': " ", '”': " ", '…': "... ",
}

// cleanText replaces control characters (other than newlines and tabs) with spaces.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
}

// hasWords reports whether s contains anything meant to be pronounced.
func hasWords(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			return true
		}
	}
	return false
}

func peak(pcm []int16) int {
	m := 0
	for _, s := range pcm {
		v := int(s)
		if v < 0 {
			v = -v
		}
		m = max(m, v)
	}
	return m
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// limitedBuffer is a bytes.Buffer that fails writes beyond max bytes.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errors.New("output too large")
	}
	return b.Buffer.Write(p)
}

// semaphore bounds concurrent espeak-ng processes.
type semaphore chan struct{}

func (s semaphore) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s semaphore) release() { <-s }
