package prompt

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ivrd/ivrd/internal/audio"
)

// samples is a sentence in each listed language's own script.
var samples = map[string]string{
	"en":    "Hello, welcome to our service.",
	"en-US": "Hello, welcome to our service.",
	"en-GB": "Hello, welcome to our service.",
	"zh-HK": "歡迎致電我們的客戶服務熱線。",
	"zh-CN": "欢迎致电我们的客户服务热线。",
	"zh-TW": "歡迎致電我們的客戶服務熱線。",
	"ms":    "Selamat datang ke perkhidmatan kami.",
	"id":    "Selamat datang di layanan kami.",
	"th":    "ยินดีต้อนรับสู่บริการของเรา",
	"vi":    "Chào mừng bạn đến với dịch vụ của chúng tôi.",
	"ko":    "저희 서비스에 오신 것을 환영합니다.",
	"ta":    "எங்கள் சேவைக்கு வரவேற்கிறோம்.",
	"hi":    "हमारी सेवा में आपका स्वागत है।",
	"fr":    "Bienvenue dans notre service.",
	"de":    "Willkommen bei unserem Service.",
	"es":    "Bienvenido a nuestro servicio.",
	"it":    "Benvenuto nel nostro servizio.",
	"pt":    "Bem-vindo ao nosso serviço.",
	"pt-BR": "Bem-vindo ao nosso serviço.",
	"ja":    "こんにちは、ようこそ。",
}

func TestEveryLanguageSpeaks(t *testing.T) {
	needEspeak(t)
	p := newTestPrompter(t, Options{})
	for _, l := range Languages() {
		text, ok := samples[l.Code]
		if !ok {
			t.Errorf("no sample sentence for %s", l.Code)
			continue
		}
		for _, g := range Genders {
			t.Run(l.Code+"/"+g, func(t *testing.T) {
				pcm := prepare(t, p, `<speech language="`+l.Code+`" gender="`+g+`">`+text+`</speech>`)
				d := audio.Duration(len(pcm))
				if d < 700*time.Millisecond || d > 8*time.Second {
					t.Errorf("duration %v", d)
				}
				if rms := audio.RMS(pcm); rms < 400 {
					t.Errorf("RMS %.0f: silent", rms)
				}
			})
		}
	}
}

// f0 estimates the median fundamental frequency of voiced 40 ms frames of 8 kHz speech by
// normalised autocorrelation over 60..400 Hz.
func f0(pcm []int16) float64 {
	const frame = 320
	var pitches []float64
	for start := 0; start+frame+134 <= len(pcm); start += frame {
		x := pcm[start : start+frame+134]
		if audio.RMS(x[:frame]) < 800 {
			continue
		}
		best, bestLag := 0.0, 0
		for lag := 20; lag <= 133; lag++ {
			var num, e0, e1 float64
			for i := range frame {
				a, b := float64(x[i]), float64(x[i+lag])
				num += a * b
				e0 += a * a
				e1 += b * b
			}
			if c := num / math.Sqrt(e0*e1+1); c > best {
				best, bestLag = c, lag
			}
		}
		if best > 0.6 {
			pitches = append(pitches, 8000/float64(bestLag))
		}
	}
	if len(pitches) == 0 {
		return 0
	}
	sort.Float64s(pitches)
	return pitches[len(pitches)/2]
}

func TestGenderVoicesDifferInPitch(t *testing.T) {
	needEspeak(t)
	p := newTestPrompter(t, Options{})
	for _, l := range Languages() {
		code := l.Code
		t.Run(code, func(t *testing.T) {
			text := samples[code]
			female := f0(prepare(t, p, `<speech language="`+code+`">`+text+`</speech>`)) // default gender
			male := f0(prepare(t, p, `<speech language="`+code+`" gender="male">`+text+`</speech>`))
			t.Logf("%s: female F0 %.0f Hz, male F0 %.0f Hz", code, female, male)
			if male < 70 || male > 170 {
				t.Errorf("male F0 %.0f Hz, want 70..170", male)
			}
			if female < 1.3*male {
				t.Errorf("female F0 %.0f Hz is not clearly above male %.0f Hz", female, male)
			}
		})
	}
}

func TestChineseVoices(t *testing.T) {
	needEspeak(t)
	p := newTestPrompter(t, Options{})
	const hanzi = "你好世界"
	english := prepare(t, p, hanzi)
	mandarin := prepare(t, p, `<speech language="zh-CN">`+hanzi+`</speech>`)
	taiwan := prepare(t, p, `<speech language="zh-tw">`+hanzi+`</speech>`)
	cantonese := prepare(t, p, `<speech language="zh-HK">`+hanzi+`</speech>`)
	for name, pcm := range map[string][]int16{"english": english, "mandarin": mandarin, "cantonese": cantonese} {
		if audio.RMS(pcm) < 400 {
			t.Errorf("%s is silent", name)
		}
	}
	if equal16(mandarin, english) || equal16(cantonese, english) || equal16(mandarin, cantonese) {
		t.Fatal("Mandarin, Cantonese and English audio must differ")
	}
	if !equal16(mandarin, taiwan) {
		t.Error("zh-CN and zh-TW should speak the same Mandarin")
	}
	// Mandarin is exactly espeak's pinyin voice reading the tone-numbered pinyin.
	want, err := audio.Resample(espeakRaw(t, "cmn-latn-pinyin+f3", "ni3 hao3 shi4 jie4"), 22050, audio.Rate)
	if err != nil {
		t.Fatal(err)
	}
	if !equal16(mandarin, want) {
		t.Errorf("Mandarin audio (%d samples) is not the pinyin reading (%d samples)", len(mandarin), len(want))
	}
	// English reads each character as "Chinese letter": far longer than Mandarin's 4 syllables.
	if len(english) < len(mandarin)*3/2 {
		t.Errorf("English %v vs Mandarin %v: expected English to spell out letters",
			audio.Duration(len(english)), audio.Duration(len(mandarin)))
	}
}

func TestToPinyin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"你好", "ni3 hao3"},
		{"歡迎", "huan1 ying2"},
		{"你好，世界。", "ni3 hao3, shi4 jie4. "},
		{"按1号键", "an4 1 hao4 jian4"},
		{"ABC中文", "ABC zhong1 wen2"},
		{"hello", "hello"},
	}
	for _, tc := range tests {
		if got := toPinyin(tc.in); got != tc.want {
			t.Errorf("toPinyin(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResolveVoice(t *testing.T) {
	tests := []struct {
		lang, gender string
		want         string // voice name, or a status
	}{
		{"", "", "en-us+f3"},
		{"en", "female", "en-us+f3"},
		{"EN-us", "MALE", "en-us+m3"},
		{"en_GB", "", "en+f3"},
		{"en-AU", "", "en-us+f3"},
		{"fr-CA", "male", "fr+m3"},
		{"zh-HK", "", "yue+f3"},
		{"zh-hk", "male", "yue+m3"},
		{"yue", "", "yue+f3"},
		{"zh", "", "cmn-latn-pinyin+f3"},
		{"zh-Hant-TW", "", "cmn-latn-pinyin+f3"},
		{"pt-br", "", "pt-br+f3"},
		{"pt-PT", "", "pt+f3"},
		{" ja ", " female ", "ja+f3"},
		{"xx", "", StatusInvalidLanguage},
		{"english", "", StatusInvalidLanguage},
		{"en-", "", StatusInvalidLanguage},
		{"-", "", StatusInvalidLanguage},
		{"xx", "robot", StatusInvalidLanguage}, // language is checked first
		{"en", "robot", StatusInvalidGender},
		{"en", "f", StatusInvalidGender},
		{"en", "neutral", StatusInvalidGender},
	}
	for _, tc := range tests {
		v, err := resolveVoice(tc.lang, tc.gender)
		got := v.Name
		if err != nil {
			got = StatusOf(err)
		}
		if got != tc.want {
			t.Errorf("resolveVoice(%q, %q) = %q, want %q", tc.lang, tc.gender, got, tc.want)
		}
	}
}

func TestLanguagesHandler(t *testing.T) {
	srv := httptest.NewServer(LanguagesHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var doc languagesDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.DefaultLanguage != "en" || doc.DefaultGender != "female" || len(doc.Genders) != 2 {
		t.Errorf("doc = %+v", doc)
	}
	codes := map[string]bool{}
	for _, l := range doc.Languages {
		codes[l.Code] = true
		if l.Female == "" || l.Male == "" || l.Name == "" {
			t.Errorf("incomplete entry %+v", l)
		}
	}
	for _, c := range []string{"en", "en-US", "en-GB", "zh-HK", "zh-CN", "zh-TW", "ms", "id", "th", "vi", "ko", "ta", "hi", "fr", "de", "es", "it", "pt", "ja"} {
		if !codes[c] {
			t.Errorf("language %s missing from the endpoint", c)
		}
	}
	post, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d", post.StatusCode)
	}
}

// languagesTable renders the Markdown table LANGUAGES.md carries.
func languagesTable() string {
	var b strings.Builder
	b.WriteString("| `language` | Language | espeak-ng voice (female / male) | Notes |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, l := range Languages() {
		b.WriteString("| `" + l.Code + "` | " + l.Name + " | `" + l.Female + "` / `" + l.Male + "` | " + l.Notes + " |\n")
	}
	return b.String()
}

func TestLanguagesDocInSync(t *testing.T) {
	doc, err := os.ReadFile("LANGUAGES.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := languagesTable(); !strings.Contains(string(doc), want) {
		t.Fatalf("LANGUAGES.md is out of date; its table must be:\n%s", want)
	}
}
