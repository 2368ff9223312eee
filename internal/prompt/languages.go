package prompt

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Language is one entry of the text-to-speech language table.
type Language struct {
	Code   string `json:"code"`         // BCP-47 tag as listed; matching is case-insensitive
	Name   string `json:"name"`         // English name
	Female string `json:"female_voice"` // espeak-ng voice used for gender="female" (the default)
	Male   string `json:"male_voice"`   // espeak-ng voice used for gender="male"
	Notes  string `json:"notes,omitempty"`

	pinyin bool // convert hanzi to tone-numbered pinyin before speaking
}

// Voice variants: espeak-ng's base voices are male; +f3 and +m3 are its stock female and
// male variants (pitch and formants), available for every language. Trap: espeak-ng applies a
// variant only to a voice named by its file name ("en", "fr", "en-us"); with a language alias
// such as "en-gb" or "fr-fr" it silently ignores "+f3". TestGenderVoicesDifferInPitch checks
// every entry.
const (
	femaleVariant = "+f3"
	maleVariant   = "+m3"

	DefaultLanguage = "en"
	DefaultGender   = "female"
)

// Genders are the accepted values of the gender attribute (case-insensitive).
var Genders = []string{"female", "male"}

func lang(code, name, voice, notes string) Language {
	return Language{Code: code, Name: name, Female: voice + femaleVariant, Male: voice + maleVariant, Notes: notes}
}

var languages = []Language{
	lang("en", "English (default, US accent)", "en-us", ""),
	lang("en-US", "English (United States)", "en-us", ""),
	lang("en-GB", "English (United Kingdom)", "en", ""), // "en-gb+f3" silently ignores the variant
	lang("zh-HK", "Cantonese (Hong Kong)", "yue", "Reads Chinese characters (traditional or simplified) and digits in Cantonese; Latin-script words are read in English."),
	withPinyin(lang("zh-CN", "Mandarin (China)", "cmn-latn-pinyin", "Chinese characters are converted to tone-numbered pinyin (go-pinyin) first, then read by the pinyin voice; each character gets its most common reading, so some polyphonic characters are misread. Digits are read in Mandarin, Latin-script words in English.")),
	withPinyin(lang("zh-TW", "Mandarin (Taiwan)", "cmn-latn-pinyin", "As zh-CN (traditional characters are converted too); mainland pronunciation and voice.")),
	lang("ms", "Malay", "ms", ""),
	lang("id", "Indonesian", "id", ""),
	lang("th", "Thai", "th", ""),
	lang("vi", "Vietnamese", "vi", "Northern accent."),
	lang("ko", "Korean", "ko", "Hangul only: each hanja is read as \"Chinese letter\"."),
	lang("ta", "Tamil", "ta", ""),
	lang("hi", "Hindi", "hi", "Devanagari."),
	lang("fr", "French", "fr", ""), // "fr-fr+f3" silently ignores the variant
	lang("de", "German", "de", ""),
	lang("es", "Spanish (Spain)", "es", ""),
	lang("it", "Italian", "it", ""),
	lang("pt", "Portuguese (Portugal)", "pt", ""),
	lang("pt-BR", "Portuguese (Brazil)", "pt-br", ""),
	lang("ja", "Japanese", "ja", "Kana only: kanji are not read (each is skipped or read as \"Chinese letter\"), so write Japanese in hiragana or katakana."),
}

// aliases are extra tags accepted for table entries (lower case).
var aliases = map[string]string{
	"zh":      "zh-cn",
	"zh-hans": "zh-cn",
	"zh-sg":   "zh-cn",
	"cmn":     "zh-cn",
	"zh-hant": "zh-tw",
	"yue":     "zh-hk",
	"zh-yue":  "zh-hk",
	"zh-mo":   "zh-hk",
}

func withPinyin(l Language) Language { l.pinyin = true; return l }

var byCode = func() map[string]*Language {
	m := make(map[string]*Language, len(languages))
	for i := range languages {
		m[strings.ToLower(languages[i].Code)] = &languages[i]
	}
	return m
}()

// Languages returns a copy of the language table.
func Languages() []Language { return append([]Language(nil), languages...) }

// lookupLanguage resolves a language attribute: case-insensitive, '_' accepted for '-',
// and, as in RFC 4647 lookup, subtags are dropped from the right until a listed tag matches
// (en-AU → en, fr-CA → fr). "" is the default language.
func lookupLanguage(tag string) (*Language, bool) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	if t == "" {
		t = DefaultLanguage
	}
	for sub := range strings.SplitSeq(t, "-") {
		if len(sub) < 1 || len(sub) > 8 || strings.Trim(sub, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return nil, false
		}
	}
	for t != "" {
		if a, ok := aliases[t]; ok {
			t = a
		}
		if l, ok := byCode[t]; ok {
			return l, true
		}
		i := strings.LastIndexByte(t, '-')
		if i < 0 {
			break
		}
		t = t[:i]
	}
	return nil, false
}

// voice is what a text segment is spoken with.
type voice struct {
	Name   string // espeak-ng -v argument
	Pinyin bool
}

// resolveVoice maps language and gender attributes to a voice, or fails with the API status.
func resolveVoice(language, gender string) (voice, error) {
	l, ok := lookupLanguage(language)
	if !ok {
		return voice{}, fail(StatusInvalidLanguage, fmt.Errorf("language %q is not supported", language))
	}
	switch strings.ToLower(strings.TrimSpace(gender)) {
	case "", "female":
		return voice{Name: l.Female, Pinyin: l.pinyin}, nil
	case "male":
		return voice{Name: l.Male, Pinyin: l.pinyin}, nil
	}
	return voice{}, fail(StatusInvalidGender, fmt.Errorf("gender %q is not male or female", gender))
}

// languagesDoc is the JSON body of LanguagesHandler.
type languagesDoc struct {
	DefaultLanguage string     `json:"default_language"`
	DefaultGender   string     `json:"default_gender"`
	Genders         []string   `json:"genders"`
	Languages       []Language `json:"languages"`
}

// LanguagesHandler serves the language table as JSON (GET or HEAD):
// {"default_language":"en","default_gender":"female","genders":[...],"languages":[{code,name,female_voice,male_voice,notes}...]}.
func LanguagesHandler() http.Handler {
	body, err := json.MarshalIndent(languagesDoc{DefaultLanguage, DefaultGender, Genders, languages}, "", "  ")
	if err != nil {
		panic(err) // static data
	}
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	})
}
