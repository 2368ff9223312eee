package prompt

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/ivrd/ivrd/internal/audio"
)

// maxDecodedSamples bounds a decoded file at 8 kHz (2 hours, 115 MB of PCM): a 10 MB MP3
// at a very low bitrate could otherwise expand to far more.
const maxDecodedSamples = 2 * 3600 * audio.Rate

// DecodeFile decodes an audio file the way <url> prompts are decoded, by the type its name's
// extension says (.mp3, .wav, .gsm; any case), and returns 8 kHz mono PCM.
func DecodeFile(b []byte, name string) ([]int16, error) {
	return decodeFile(b, strings.ToLower(path.Ext(name)))
}

// decodeFile decodes a downloaded file as the type its extension claims and returns 8 kHz
// mono PCM. Content that is recognisably something else (HTML, a WAV named .mp3, ...) or that
// does not decode is an error.
func decodeFile(b []byte, ext string) ([]int16, error) {
	if got := sniff(b); got != "" && got != ext {
		return nil, fmt.Errorf("content is %s, not %s", sniffName[got], ext)
	}
	var (
		pcm  []int16
		rate int
		err  error
	)
	switch ext {
	case ".mp3":
		pcm, rate, err = audio.DecodeMP3(b)
	case ".wav":
		var info audio.WAVInfo
		pcm, info, err = audio.DecodeWAV(b)
		rate = info.Rate
	case ".gsm":
		pcm, err = audio.DecodeGSM(b)
		rate = audio.Rate
	default:
		err = fmt.Errorf("unsupported extension %q", ext)
	}
	if err != nil {
		return nil, err
	}
	if rate <= 0 {
		return nil, errors.New("no sample rate")
	}
	if int64(len(pcm))*audio.Rate/int64(rate) > maxDecodedSamples {
		return nil, errors.New("audio longer than 2 hours")
	}
	return audio.Resample(pcm, rate, audio.Rate)
}

var sniffName = map[string]string{".mp3": "MP3", ".wav": "WAV", ".gsm": "GSM", "text": "text/HTML"}

// sniff identifies content by its first bytes: ".wav", ".mp3", "text" (HTML, XML, JSON or
// plain text, as error pages are), or "" when it cannot tell. GSM has no header, so it is
// never claimed here; DecodeGSM checks every frame's magic.
func sniff(b []byte) string {
	switch {
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return ".wav"
	case bytes.HasPrefix(b, []byte("ID3")):
		return ".mp3"
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0:
		return ".mp3"
	}
	t := bytes.TrimLeft(b, "\xef\xbb\xbf \t\r\n")
	if len(t) > 0 && (t[0] == '<' || t[0] == '{') {
		return "text"
	}
	return ""
}
